"""The workflow planner: proposes a workflow for a request, then edits it from metrics.

It never writes YAML text: every change is a mutation-API op (`eigenlang.mutate`), checked
by the compiler, and a refused op is recorded with its diagnostics instead of applied. The
offline planner follows fixed rules; the model planner asks the model for ops and keeps only
those the compiler accepts.

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

from .critique import Critique

REFERENCE = Path(__file__).resolve().parents[2] / "workflows" / "eigendata.yaml"
DEFAULT_TEMPERATURE = 1.0  # what OpenAI-compatible servers sample at when none is sent
CONTRACT_CODES = ("schema", "tool_validity")
TURN_LIMIT_WORDS = ("turn limit", "max_turns", "ran out of turns")


class PlanEdit(dict):
    """{op, reason, hash | null, refused: [diagnostic text]}: one line of the planner's record."""


def _agent_settings(version: ProgramVersion, agent: str) -> dict:
    prog = version.program
    decl = prog.agents.get(agent) if prog is not None else None
    return decl.model_dump(exclude_none=True) if decl is not None else {}


class OfflinePlanner:
    name = "offline-planner"

    def propose(self, out_dir: Path, *, domain: str, request: str, targets: dict) -> tuple[ProgramVersion, list[PlanEdit]]:
        """A workflow for `request` in `out_dir` (the reference program and its prompts,
        adapted to the targets through the mutation API)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        if not (out_dir / "prompts").exists():
            shutil.copytree(REFERENCE.parent / "prompts", out_dir / "prompts")
        target = out_dir / "workflow.yaml"
        target.write_text(REFERENCE.read_text(encoding="utf-8"), encoding="utf-8")
        found = ProgramVersion.load(target)
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
            result = apply(cur, op, reason)
            if isinstance(result, list):
                record.append(PlanEdit(op=op, reason=reason, hash=None,
                                       refused=[d.render() for d in result][:5]))
            else:
                cur = result
                record.append(PlanEdit(op=op, reason=reason, hash=result.hash, refused=[]))
        return cur, record

    def apply(self, version: ProgramVersion, ops: Sequence[tuple[dict, str]]) -> tuple[ProgramVersion, list[PlanEdit]]:
        return self._apply_all(version, ops)


class ModelPlanner(OfflinePlanner):
    """Asks the model for mutation ops (`{"ops": [...], "reason": "..."}`); refused ops are
    recorded. An unreadable answer falls back to the offline rules."""

    name = "model-planner"

    def __init__(self, ask: Any) -> None:
        self.ask = ask

    def revise(self, version, metrics, critiques):
        fallback = super().revise(version, metrics, critiques)
        summary = json.dumps({k: round(v, 3) for k, v in sorted(metrics.items())})
        system = ("You are the workflow planner of a synthetic-data workflow. You change the program only "
                  "through mutation operations; this JSON Schema lists them:\n"
                  + json.dumps(op_json_schema()) + "\n\nThe program:\n" + version.text)
        user = (f"Metrics of the last pilot batch: {summary}\nPropose at most 3 operations that would raise "
                "acceptance and quality, or none. Its shape: {\"ops\": [...], \"reason\": \"...\"}. "
                "Answer with the WorkflowEdit JSON object only.")
        c = self.ask([{"role": "system", "content": system}, {"role": "user", "content": user}])
        if not c.ok:
            return fallback
        from runtime.workers.llm.parse import ParseError, extract_object

        try:
            answer = extract_object(c.content or "")
        except ParseError:
            return fallback
        ops = answer.get("ops")
        if not isinstance(ops, list):
            return fallback
        reason = str(answer.get("reason") or "model planner")[:300]
        return [(op, reason) for op in ops[:3] if isinstance(op, dict)]
