"""What the judge says about one instance, and the facts it starts from.

A `Finding` is a fact the validators established (a failed check, an infeasible task, an
unparseable answer), attributed to the prompt most likely at fault ("Agent.role"). The
offline judge turns findings into axis scores; a model judge scores the axes itself but
cannot remove a finding: the prompt engineer learns from facts, the scores rank prompt sets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The paper's four axes (section 4.1); a workflow may weight them or declare others.
AXES = ("executability", "tool_correctness", "trajectory_coherence", "difficulty_coverage")
DIFFICULTY_SCORE = {"easy": 1 / 3, "medium": 2 / 3, "hard": 1.0}

# Which prompt a failed validation check points at (the assistant makes the trajectory).
CHECK_OWNER = {"tool_validity": "DialogSynthesis.assistant", "grounding": "DialogSynthesis.assistant",
               "compliance": "DialogSynthesis.assistant", "goal_completion": "DialogSynthesis.assistant",
               "realism": "DialogSynthesis.assistant"}
_USER_REALISM = ("user message", "user turn", "instructions")  # realism faults of the user side


@dataclass(frozen=True)
class Finding:
    key: str | None  # "Agent.role" of the prompt at fault; None: not a prompt's fault (endpoint)
    code: str  # infeasible | schema | endpoint | crash | guard_error | rejected | <validation check>
    message: str


@dataclass
class Critique:
    index: int
    id: str
    accepted: bool
    scores: dict[str, float]
    judge_score: float
    reasons: list[str]
    at_fault: str | None
    findings: list[Finding] = field(default_factory=list)
    judge: str = "offline"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def agent_of(node: str) -> str:
    return node.split("#", 1)[0]


def _owner(agent: str, keys: set[str]) -> str | None:
    """The prompt key of an agent (its `prompt`, else its assistant role), if the plan has it."""
    for role in ("prompt", "assistant", "user"):
        if f"{agent}.{role}" in keys:
            return f"{agent}.{role}"
    return None


def _check_finding(reason: str, keys: set[str]) -> Finding | None:
    check, _, _ = reason.partition(":")
    owner = CHECK_OWNER.get(check)
    if owner is None:
        return None
    if check == "realism" and any(w in reason for w in _USER_REALISM) and "DialogSynthesis.user" in keys:
        owner = "DialogSynthesis.user"
    return Finding(owner if owner in keys else None, check, reason)


def findings_of(record: dict, keys: set[str]) -> list[Finding]:
    """The validators' facts about one record. `keys`: the plan's prompt keys ("Agent.role")."""
    out: list[Finding] = []
    reports = record.get("validation") or []
    if not record.get("accepted"):
        artifacts = record.get("artifacts") or {}
        report = artifacts.get("ValidationReport")
        if report and not reports:
            reports = [report]
    if reports:  # round 0 is what the generator made before any repair
        out += [f for r in reports[0].get("reasons") or [] if (f := _check_finding(str(r), keys))]
        if len(reports) > 1 and not reports[-1].get("accepted", True):
            out.append(Finding(_owner("Modify", keys), "repair",
                               f"{len(reports) - 1} repair round(s) left the dialogue failing"))
    if record.get("accepted"):
        return out
    stage = agent_of(str(record.get("stage") or ""))
    for reason in record.get("reasons") or []:
        text = str(reason)
        if text.startswith("crash: "):  # a bug in code (runtime.env.crashes): no prompt is at fault
            out.append(Finding(None, "crash", text))
        elif text.startswith("guard_error: "):  # a guard of the program raised: the author's bug
            out.append(Finding(None, "guard_error", text))
        elif "model call failed" in text:
            out.append(Finding(None, "endpoint", text))
        elif "unparseable" in text or "malformed" in text or "worker crashed" in text:
            out.append(Finding(_owner(stage, keys), "schema", text))
        elif stage == "TaskValidation":
            out.append(Finding(_owner("UserIntent", keys), "infeasible", text))
        elif stage in ("TrajectoryValidation", "Modify") and reports:
            continue  # the checks' own reasons are already findings
        else:
            out.append(Finding(_owner(stage, keys), "rejected", text))
    return out


def offline_scores(record: dict, findings: list[Finding]) -> dict[str, float]:
    """Axis scores from facts alone (an axis without evidence is left out, not guessed)."""
    codes = {f.code for f in findings}
    reports = record.get("validation") or []
    if not reports and (record.get("artifacts") or {}).get("ValidationReport"):
        reports = [record["artifacts"]["ValidationReport"]]
    task = record.get("task") or (record.get("artifacts") or {}).get("TaskSpec")
    scores: dict[str, float] = {}
    reached_task = task is not None
    if "infeasible" in codes or not reached_task:
        scores["executability"] = 0.0
    elif reached_task:
        scores["executability"] = 1.0
    if reports:
        checks = reports[0].get("checks") or {}
        def mean(names: tuple[str, ...]) -> float | None:
            vals = [1.0 if checks[n] else 0.0 for n in names if n in checks]
            return sum(vals) / len(vals) if vals else None
        for axis, names in (("tool_correctness", ("tool_validity", "compliance")),
                            ("trajectory_coherence", ("grounding", "realism", "goal_completion"))):
            v = mean(names)
            if v is not None:
                scores[axis] = v
    elif "schema" in codes and reached_task:
        scores["tool_correctness"] = 0.0
    if record.get("accepted") and isinstance(task, dict):
        scores["difficulty_coverage"] = DIFFICULTY_SCORE.get(str(task.get("difficulty")), 0.5)
    return scores


def weighted(scores: dict[str, float], weights: dict[str, float]) -> float:
    """The judge score: the weighted mean of the scored axes the workflow declares; an
    instance rejected before any axis could be scored counts 0."""
    pairs = [(scores[a], w) for a, w in weights.items() if a in scores and w > 0]
    total = sum(w for _, w in pairs)
    return round(sum(s * w for s, w in pairs) / total, 6) if total else 0.0


def most_at_fault(findings: list[Finding]) -> str | None:
    """The prompt with the most findings (ties: the first met), None when no prompt is at fault."""
    counts: dict[str, int] = {}
    for f in findings:
        if f.key is not None:
            counts[f.key] = counts.get(f.key, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None
