"""The workflow planner: proposes a workflow for a request, then edits it from metrics.

It never writes YAML text: every change is a mutation-API op (`eigenlang.mutate`), checked
by the compiler, and a refused op is recorded with its diagnostics instead of applied. The
offline planner follows fixed rules; the model planner asks the model for ops and keeps only
those the compiler accepts. A model's ops have origin "model" (eigenlang.oplimits): they name
no file and keep the domain. Whatever the model answers — prose, a tool call, JSON nested
ten thousand levels deep — `revise` returns ops or a recorded refusal, never an exception.

Offline rules for `revise` (each names the metric that triggered it in its reason):
- an agent whose outputs break their contract (schema findings, failed tool calls) in at
  least 20% of the batch gets a lower sampling temperature (−0.3, floor 0.0);
- dialogues cut short by the turn limit in at least 20% of the batch get 10 more turns
  (up to 60).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eigenlang.mutate import ProgramVersion, apply, op_json_schema
from eigenlang.oplimits import Origin, value_problem

from .critique import Critique

REFERENCE = Path(__file__).resolve().parents[2] / "workflows" / "eigendata.yaml"
DEFAULT_TEMPERATURE = 1.0  # what OpenAI-compatible servers sample at when none is sent
CONTRACT_CODES = ("schema", "tool_validity")
TURN_LIMIT_WORDS = ("turn limit", "max_turns", "ran out of turns")
MAX_MODEL_OPS = 3  # ops taken from one model answer
RECORDED_OP_CHARS = 2000  # an op larger than this is recorded as a description


class PlanEdit(dict):
    """{op, reason, hash | null, refused: [diagnostic text]}: one line of the planner's record."""


def recorded(op: Any) -> dict:
    """An op as the evolution log keeps it: the op itself when it is small JSON data, else a
    short description (a model's op may be anything, and the log must stay writable)."""
    if op is None:
        return {"op": "?", "given": "no usable answer"}
    if isinstance(op, dict) and value_problem(op) is None:
        try:
            if len(json.dumps(op, sort_keys=True)) <= RECORDED_OP_CHARS:
                return op
        except (TypeError, ValueError):
            pass
    kind = op.get("op") if isinstance(op, dict) else None
    size = f" of {len(op)} entries" if isinstance(op, (dict, list)) else ""
    return {"op": kind if isinstance(kind, str) and len(kind) <= 40 else "?",
            "given": f"a {type(op).__name__}{size}, not shown"}


def _agent_settings(version: ProgramVersion, agent: str) -> dict:
    prog = version.program
    decl = prog.agents.get(agent) if prog is not None else None
    return decl.model_dump(exclude_none=True) if decl is not None else {}


class OfflinePlanner:
    """Fixed rules, written here: its ops are the program author's (origin "author")."""

    name = "offline-planner"
    origin: Origin = "author"

    def __init__(self, allow: Sequence[str | Path] = ()) -> None:
        self.allow = tuple(str(a) for a in allow)  # --allow-path folders (eigenlang.paths)

    def propose(self, out_dir: Path, *, domain: str, request: str, targets: dict) -> tuple[ProgramVersion, list[PlanEdit]]:
        """A workflow for `request` in `out_dir` (the reference program and its prompts,
        adapted to the targets through the mutation API). A `domain` folder is the caller's
        choice: it is allowed as --allow-path folders are."""
        out_dir.mkdir(parents=True, exist_ok=True)
        if not (out_dir / "prompts").exists():
            shutil.copytree(REFERENCE.parent / "prompts", out_dir / "prompts")
        if Path(domain).exists():
            found_domain = Path(domain).resolve()
            self.allow += (str(found_domain if found_domain.is_dir() else found_domain.parent),)
        target = out_dir / "workflow.yaml"
        target.write_text(REFERENCE.read_text(encoding="utf-8"), encoding="utf-8")
        found = ProgramVersion.load(target, self.allow)
        ops: list[tuple[dict, str]] = [
            ({"op": "set_param", "path": "domain", "value": domain}, "the requested domain"),
            ({"op": "set_param", "path": "description", "value": request}, "the request, in the user's words")]
        if targets.get("diversity"):
            ops.append(({"op": "set_param", "path": "evolution.prompt_sets", "value": int(targets["diversity"])},
                        f"diversity target: {targets['diversity']} prompt sets"))
        if targets.get("size"):
            batch = max(5, min(20, int(targets["size"]) // 100 or 5))
            ops.append(({"op": "set_param", "path": "evolution.pilot.batch", "value": batch},
                        f"size {targets['size']}: pilot batches of {batch} (the paper's 5–20)"))
        if targets.get("difficulty"):
            ops.append(({"op": "set_param", "path": "agents.UserIntent.params.difficulty",
                         "value": str(targets["difficulty"])}, f"difficulty target: {targets['difficulty']}"))
        version, record = self._apply_all(found, ops)
        target.write_text(version.text, encoding="utf-8")
        return version, record

    def revise(self, version: ProgramVersion, metrics: dict[str, float],
               critiques: Sequence[Critique]) -> list[tuple[dict, str]]:
        n = max(1, len(critiques))
        ops: list[tuple[dict, str]] = []
        broken: dict[str, int] = {}
        for c in critiques:
            for agent in {f.key.split(".")[0] for f in c.findings if f.key and f.code in CONTRACT_CODES}:
                broken[agent] = broken.get(agent, 0) + 1
        for agent, count in sorted(broken.items()):
            params = _agent_settings(version, agent).get("params") or {}
            current = params.get("temperature", DEFAULT_TEMPERATURE)
            if count / n >= 0.2 and isinstance(current, int | float) and current > 0:
                new = round(max(0.0, current - 0.3), 2)
                ops.append(({"op": "set_param", "path": f"agents.{agent}.params.temperature", "value": new},
                            f"{agent} broke its output contract in {count}/{n} instances: "
                            f"temperature {current} → {new}"))
        cut = sum(1 for c in critiques if any(w in r for r in c.reasons for w in TURN_LIMIT_WORDS))
        turns = _agent_settings(version, "DialogSynthesis").get("max_turns", 30)
        if cut / n >= 0.2 and isinstance(turns, int) and turns < 60:
            ops.append(({"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": min(60, turns + 10)},
                        f"{cut}/{n} dialogues hit the turn limit: max_turns {turns} → {min(60, turns + 10)}"))
        return ops

    def _apply_all(self, version: ProgramVersion, ops: Sequence[tuple[dict, str]]) -> tuple[ProgramVersion, list[PlanEdit]]:
        """Apply each op on the result of the last accepted one; refused ops are recorded."""
        record: list[PlanEdit] = []
        cur = version
        for op, reason in ops:
            if op is None:  # the model's answer itself was refused: `reason` says why
                record.append(PlanEdit(op=recorded(None), reason=reason, hash=None, refused=[reason]))
                continue
            result = apply(cur, op, reason, origin=self.origin, allow=self.allow)
            if isinstance(result, list):
                record.append(PlanEdit(op=recorded(op), reason=reason, hash=None,
                                       refused=[d.render() for d in result][:5]))
            else:
                cur = result
                record.append(PlanEdit(op=recorded(op), reason=reason, hash=result.hash, refused=[]))
        return cur, record

    def apply(self, version: ProgramVersion, ops: Sequence[tuple[Any, str]]) -> tuple[ProgramVersion, list[PlanEdit]]:
        """The ops applied in order (refused ones recorded), as one step of the program's
        lineage: the result's parent is `version` (the intermediate versions of a round are
        in the record's hashes, not in the lineage)."""
        new, record = self._apply_all(version, ops)
        done = [e["op"] for e in record if e["hash"]]
        if len(done) > 1:
            new = new.model_copy(update={"parent": version.hash, "op": {"op": "batch", "ops": done}})
        return new, record


class ModelPlanner(OfflinePlanner):
    """Asks the model for mutation ops (`{"ops": [...], "reason": "..."}`). Its ops have origin
    "model"; each is checked and applied or refused, and recorded either way. An answer that
    cannot be used is recorded as refused (op None) and the offline rules apply instead."""

    name = "model-planner"
    origin: Origin = "model"

    def __init__(self, ask: Any, allow: Sequence[str | Path] = ()) -> None:
        super().__init__(allow)
        self.ask = ask

    def revise(self, version, metrics, critiques):
        fallback = super().revise(version, metrics, critiques)
        summary = json.dumps({k: round(v, 3) for k, v in sorted(metrics.items())})
        system = ("You are the workflow planner of a synthetic-data workflow. You change the program only "
                  "through mutation operations; this JSON Schema lists them:\n"
                  + json.dumps(op_json_schema()) + "\n\nYou cannot name files or change the domain: a new "
                  "agent's prompt may only be a template the program already uses.\n\nThe program:\n"
                  + version.text)
        user = (f"Metrics of the last pilot batch: {summary}\nPropose at most {MAX_MODEL_OPS} operations that "
                "would raise acceptance and quality, or none. Its shape: {\"ops\": [...], \"reason\": \"...\"}. "
                "Answer with the WorkflowEdit JSON object only.")
        c = self.ask([{"role": "system", "content": system}, {"role": "user", "content": user}])
        if not c.ok:
            return fallback
        answer, why = read_answer(c.content)
        if answer is None:
            return [(None, f"the model planner's answer was not used: {why}; the offline rules apply")] + fallback
        ops = answer.get("ops")
        if not isinstance(ops, list):
            return [(None, "the model planner's answer has no 'ops' list; the offline rules apply")] + fallback
        reason = answer.get("reason")
        reason = " ".join(reason.split())[:300] if isinstance(reason, str) and reason.strip() else "model planner"
        return [(op, reason) for op in ops[:MAX_MODEL_OPS]]


def read_answer(content: Any) -> tuple[dict | None, str]:
    """(the JSON object in a model's answer, "") or (None, why); never raises."""
    from runtime.workers.llm.parse import ParseError, extract_object

    try:
        return extract_object(content or ""), ""
    except ParseError as exc:
        return None, str(exc)[:300]
    except (RecursionError, MemoryError, ValueError) as exc:  # a pathological answer
        return None, f"the answer could not be read ({type(exc).__name__})"
