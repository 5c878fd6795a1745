"""The prompt engineer: a new version of one agent's prompt from a batch's critiques.

As the paper has it (section 4.3): add *constraints* when a failure is systematic, *negative
examples* when a hallucination pattern recurs, *style controls* for realism. The offline
engineer does this from a fixed table keyed by the finding codes (deterministic); the model
engineer asks the model for the additions and falls back to the table when its answer cannot
be read. Either way the additions are literal text appended to the author's template
(prompts.compose): a model never writes or rewrites template source. Either returns None when it has nothing new to add: the loop then knows that more
iterations with the same critiques would change nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from .critique import Critique, Finding
from .prompts import PromptVersion, derive

# code → (kind of addition, text). Codes without an entry (endpoint) are no prompt's fault.
RULES: dict[str, tuple[str, str]] = {
    "infeasible": ("constraints", "Plan only tasks the current database allows: before choosing a write, "
                   "check its preconditions (status, dates, balances, seats, eligibility) against the records."),
    "schema": ("constraints", "Answer with exactly one JSON object with the requested fields: no prose, "
               "no code fences, no missing or extra keys."),
    "tool_validity": ("constraints", "Use only the listed tools, with exactly the argument names and types "
                      "of their schemas; never invent or rename an argument."),
    "grounding": ("constraints", "State ids, amounts and dates only as they appear in tool outputs or in "
                  "the user's words."),
    "compliance": ("constraints", "Before any call that changes the database, list the action's details "
                   "and get an explicit yes from the user in a separate turn."),
    "goal_completion": ("constraints", "Complete the user's whole request: make every change the task "
                        "needs, on the entities the user named, then confirm what was done."),
    "realism": ("style", "Keep replies short and natural, never repeat a message, and answer every tool "
                "call before speaking to the user."),
    "realism_user": ("style", "Speak as the customer, in your own words; never paste your instructions; "
                     "give details when asked for them."),
    "repair": ("constraints", "Repair only the faulty span; keep the rest of the dialogue unchanged."),
    "rejected": ("constraints", "Follow this step's output contract exactly."),
}
NEGATIVE = ("grounding", "tool_validity", "infeasible")  # recurring hallucinations: quote one
MAX_EXAMPLES = 3


def systematic(findings: Sequence[Finding], batch: int) -> list[tuple[str, list[Finding]]]:
    """Codes seen in at least two instances of the batch (one, in a batch of five or fewer),
    most frequent first."""
    by_code: dict[str, list[Finding]] = {}
    for f in findings:
        code = "realism_user" if f.code == "realism" and f.key and f.key.endswith(".user") else f.code
        if code in RULES:
            by_code.setdefault(code, []).append(f)
    need = 1 if batch <= 5 else 2
    return sorted(((c, fs) for c, fs in by_code.items() if len(fs) >= need), key=lambda kv: (-len(kv[1]), kv[0]))


def _findings_for(key: str, critiques: Sequence[Critique]) -> list[Finding]:
    # one finding per (instance, code): a dialogue with five bad calls is one instance's failure
    out = []
    for c in critiques:
        seen: set[str] = set()
        for f in c.findings:
            if f.key == key and f.code not in seen:
                seen.add(f.code)
                out.append(f)
    return out


def _example(f: Finding) -> str:
    return f"Wrong ({f.code}): {f.message[:200]}"


def scores_of(metrics: dict[str, float], axes: Sequence[str]) -> dict[str, float]:
    keep = ("judge_score", "acceptance_rate", *axes)
    return {k: metrics[k] for k in keep if k in metrics}


class OfflineEngineer:
    name = "offline-engineer"

    def revise(self, version: PromptVersion, base: str, file: str, critiques: Sequence[Critique],
               metrics: dict[str, float], axes: Sequence[str], *, phase: int, iteration: int) -> PromptVersion | None:
        found = systematic(_findings_for(version.key, critiques), len(critiques))
        additions: dict[str, list[str]] = {"constraints": [], "examples": [], "style": []}
        for code, fs in found:
            kind, text = RULES[code]
            additions[kind].append(text)
            if code in NEGATIVE:
                additions["examples"].append(_example(fs[0]))
        return self._child(version, base, file, additions, found, metrics, axes, phase, iteration, self.name)

    @staticmethod
    def _child(version, base, file, additions, found, metrics, axes, phase, iteration, author):
        new = {k: tuple(dict.fromkeys(getattr(version, k) + tuple(x for x in v if x not in getattr(version, k))))
               for k, v in additions.items()}
        new["examples"] = new["examples"][-MAX_EXAMPLES:]
        if all(new[k] == getattr(version, k) for k in new):
            return None
        notes = tuple(f"{code} ×{len(fs)}: {fs[0].message[:160]}" for code, fs in found)
        return derive(version, base, file, **new, critiques=notes, scores_before=scores_of(metrics, axes),
                      author=author, phase=phase, iteration=iteration)


class ModelEngineer(OfflineEngineer):
    """Asks the model (`ask(messages) -> Completion`) for the additions as
    {"constraints": [...], "examples": [...], "style": [...]}."""

    name = "model-engineer"

    def __init__(self, ask: Any) -> None:
        self.ask = ask

    def revise(self, version, base, file, critiques, metrics, axes, *, phase, iteration):
        fallback = super().revise(version, base, file, critiques, metrics, axes, phase=phase, iteration=iteration)
        found = systematic(_findings_for(version.key, critiques), len(critiques))
        if not found:
            return None
        lines = "\n".join(f"- {code} in {len(fs)} of {len(critiques)} instances, e.g. {fs[0].message[:240]}"
                          for code, fs in found)
        system = (f"You are the prompt engineer of a synthetic-data workflow. You revise the prompt of "
                  f"{version.key}.\n\nIts current template:\n{version.text}\n")
        user = (f"Systematic failures in the last batch:\n{lines}\n\nPropose additions to the prompt: "
                "constraints for systematic failures, negative examples for recurring hallucinations, "
                "style controls for realism. Its shape: {\"constraints\": [\"...\"], \"examples\": [\"...\"], "
                "\"style\": [\"...\"]}. Answer with the PromptRevision JSON object only.")
        c = self.ask([{"role": "system", "content": system}, {"role": "user", "content": user}])
        answer = _read(c)
        if answer is None:
            return fallback if fallback is None else _relabel(fallback, "offline-engineer (model fell back)")
        additions = {k: [_clip(x) for x in answer.get(k) or [] if isinstance(x, str) and x.strip()][:8]
                     for k in ("constraints", "examples", "style")}
        return self._child(version, base, file, additions, found, metrics, axes, phase, iteration, self.name)


def _read(completion: Any) -> dict | None:
    if not completion.ok:
        return None
    from runtime.workers.llm.parse import ParseError, extract_object

    try:
        return extract_object(completion.content or "")
    except (ParseError, RecursionError, MemoryError):  # any answer is data: never a crash
        return None


def _clip(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _relabel(v: PromptVersion, author: str) -> PromptVersion:
    from dataclasses import replace

    return replace(v, author=author)


def top_codes(critiques: Sequence[Critique]) -> list[tuple[str, int]]:
    return Counter(f.code for c in critiques for f in c.findings).most_common()
