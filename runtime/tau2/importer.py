"""`eigen import tau2`: τ²-bench tasks as a run directory (docs/CONTRACTS.md §10), so that
`eigen verify`, `export`, `report`, `eval --tasks` and the trainer read them like any run.

    result = import_tau2("~/tau2/data/airline", "airline", "runs/tau2-airline", split="test")

One record per selected task, in tasks.json order (record layout: runtime/tau2/records.py).
A task whose set-up or gold path this domain cannot run (an unknown tool or action, a set-up
action that fails, an env assertion the gold path does not meet, τ²-bench's
`initialization_data` / `message_history`, which this import does not support) becomes a
rejected record with the reason, and the others are imported. The run directory is written
through the ordinary run store: one writer (its lock), records sealed with their integrity
hash, a manifest whose identity is the import's inputs (the hashes of every file read, the
split), so importing the same inputs again into the same folder finishes or leaves it as it
is, and different inputs are refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import Task, Tau2Data, Tau2DataError, agent_system_prompt, read_data, scenario_text
from .records import (
    FILES_DIR,
    SOURCE,
    build_verifier,
    demonstration,
    file_ref,
    gold_calls,
    init_actions,
    needs_judge,
    replay_gold,
)

WORKFLOW = "tau2-import"
BACKEND = "tau2"
FORMAT = 1  # of what an imported record holds; part of the import's identity


@dataclass
class ImportResult:
    out: Path
    domain: str
    split: str | None
    imported: int = 0  # accepted records now in the run directory
    rejected: list[str] = field(default_factory=list)  # "task <id>: why"
    notes: list[str] = field(default_factory=list)
    resumed: int = 0  # records that were already there


def import_tau2(data_dir: Path | str, domain: str, out: Path | str, split: str | None = None) -> ImportResult:
    """Import τ²-bench's tasks of `data_dir` (a split of them, or all) for `domain` (a
    built-in name or a domain folder) into the run directory `out`. Raises Tau2DataError for
    a folder that cannot be imported, StoreError / RunLocked for a run directory that cannot
    take it."""
    from eigenlang.domain import load_domain
    from eigenlang.emit import domain_hash
    from runtime.env import Environment
    from runtime.store.run_store import RunStore

    spec, diags = load_domain(domain)
    if spec is None:
        raise Tau2DataError([diags.render() or f"domain not found: {domain}"])
    data = read_data(data_dir, spec.name, user_side=spec.user_schema is not None)
    tasks, notes = data.select(split)
    try:
        base = Environment.from_data(spec, data.db.path, data.user_db.path if data.user_db else None)
    except Exception as exc:  # noqa: BLE001  # StateLoadError (located), or a domain that cannot be built
        raise Tau2DataError([f"cannot load τ²-bench's database: {exc}"]) from None
    digest = domain_hash(spec)
    refs = {"db": file_ref("db", data.db.path, data.db.data),
            "user_db": file_ref("user_db", data.user_db.path, data.user_db.data) if data.user_db else None}
    identity = {"workflow_hash": _import_hash(data, split), "domain_hash": digest, "backend": BACKEND,
                "model": None, "seed": 0, "size": None}
    extra = {"workflow": WORKFLOW, "domain": spec.name, "domain_dir": str(Path(spec.root).resolve()),
             "prompts": {}, "n": len(tasks), "max_attempts": len(tasks),
             "tau2": {"data_dir": str(Path(data_dir).resolve()), "split": split, "task_ids": [t.id for t in tasks],
                      "files": data.files, "notes": notes}}
    store = RunStore(out, identity, extra)
    result = ImportResult(Path(out), spec.name, split, notes=list(notes), resumed=store.next_index)
    status = "failed"
    try:
        _copy_files(Path(out), data, refs)
        system = {"role": "system", "content": agent_system_prompt(data.policy)}
        provenance = {"workflow": WORKFLOW, "workflow_hash": identity["workflow_hash"], "prompts": {},
                      "backend": BACKEND, "model": None, "source": "τ²-bench", "split": split}
        context = _Context(spec, digest, base, refs, system, provenance, data)
        for index in range(store.next_index, len(tasks)):
            store.commit(context.record(index, tasks[index]))
        status = "complete"
    finally:
        store.close(status, None if status == "complete" else "the import stopped on an error")
    result.imported, result.rejected = _summary(Path(out))
    return result


def _import_hash(data: Tau2Data, split: str | None) -> str:
    text = json.dumps({"format": FORMAT, "files": data.files, "split": split}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _copy_files(out: Path, data: Tau2Data, refs: dict) -> None:
    """τ²-bench's database files into `out/tau2/`, byte for byte (data, never code)."""
    (out / FILES_DIR).mkdir(exist_ok=True)
    for ref, source in ((refs["db"], data.db), (refs["user_db"], data.user_db)):
        if ref is None:
            continue
        path = out / ref["file"]
        if path.is_symlink():
            path.unlink()
        if not path.is_file() or path.read_bytes() != source.data:
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(source.data)
            tmp.replace(path)


def _summary(out: Path) -> tuple[int, list[str]]:
    from runtime.store.verify import INSTANCES, REJECTED, read_records

    accepted, _ = read_records(out / INSTANCES, accepted=True)
    rejected, _ = read_records(out / REJECTED, accepted=False)
    return len(accepted), [f"task {(r.get('tau2') or {}).get('task_id', r.get('id'))}: "
                           + "; ".join(r.get("reasons", [])) for r in rejected]


@dataclass
class _Context:
    spec: Any
    digest: str
    base: Any  # the loaded database, before any task's set-up
    refs: dict
    system: dict
    provenance: dict
    data: Tau2Data

    def record(self, index: int, task: Task) -> dict:
        """The task's record: accepted, or rejected with the reasons (never an exception: a
        domain that fails on a task rejects that task, in words)."""
        rid = f"{self.spec.name}-tau2-{task.id}"
        block = {"task_id": task.id, "split": self.provenance["split"], "splits": self.data.splits_of(task.id),
                 "needs_judge": needs_judge(task), "task": self.data.raw[task.id]}
        provenance = {**self.provenance, "task_id": task.id}
        head = {"index": index, "id": rid, "seed": index, "domain": self.spec.name, "tau2": block,
                "provenance": provenance, "trace": [WORKFLOW], "validation": []}
        try:
            return self._build(head, task)
        except Exception as exc:  # noqa: BLE001  # a bug of the domain's code on this task
            return self._rejected(head, [f"cannot import: {type(exc).__name__}: {exc}"])

    def _build(self, head: dict, task: Task) -> dict:
        from runtime.env.rules import dialog_of, state_diff

        from .replay import replay

        state = task.initial_state
        if state is not None and (state.initialization_data is not None or state.message_history):
            which = "initialization_data" if state.initialization_data is not None else "message_history"
            return self._rejected(head, [f"initial_state.{which}: not supported by the import (only "
                                         "initialization_actions are)"])
        setup = init_actions(task)
        started = replay(self.base, [], init_actions=setup)
        failed = [f"initialization action {s.name} fails here: {s.error}" for s in started.init if not s.ok]
        if failed:
            return self._rejected(head, failed)
        start = started.start
        gold = gold_calls(task)
        final, results = replay_gold(start, gold)
        broken = [f"gold action {i} {c['name']} cannot run in domain {self.spec.name}: {r.content}"
                  for i, (c, r) in enumerate(zip(gold, results)) if r.error in ("unknown_tool", "crash")]
        criteria = task.evaluation_criteria
        verifier = build_verifier(start, final, criteria)
        silent = verifier.model_copy(update={"communicate": []})
        broken += [f"the gold path does not pass its own verifier: {f}"
                   for f in silent.check(start, final, []).failures]
        if broken:
            return self._rejected(head, broken)
        messages = [self.system, *demonstration(gold, results)]
        dialog = dialog_of(messages, self.spec, start)
        tools = [t.openai_schema() for t in self.spec.tools.values()]
        user_tools = [t.openai_schema() for t in self.spec.user_tools.values()]
        instructions = scenario_text(task.user_scenario)
        inst = task.user_scenario.instructions
        objective = inst if isinstance(inst, str) else inst.reason_for_call
        n_calls = len(gold)
        difficulty = {"level": "easy" if n_calls <= 2 else "medium" if n_calls <= 5 else "hard",
                      "tool_calls": n_calls, "branching": 0, "ambiguity": 0.0, "error_prone": []}
        spec_task = {"intent": SOURCE, "objective": objective, "persona": None, "difficulty": difficulty,
                     "context": {"tau2_task_id": task.id}, "known": {}, "alternatives": {}, "say": {},
                     "inform": list(criteria.communicate_info or []) if criteria else [],
                     "must": [], "must_not": [], "subgoals": [], "user_instructions": instructions,
                     "gold_calls": gold, "expect_feasible": True}
        return {**head, "accepted": True, "task": spec_task,
                "scenario": {"intent": SOURCE, "context": {"tau2_task_id": task.id}, "persona": None,
                             "difficulty": difficulty},
                "persona": None, "difficulty": difficulty, "user_instructions": instructions,
                "gold_calls": gold, "messages": messages, "calls": dialog["calls"], "turns": dialog["turns"],
                "tools": tools, "user_tools": user_tools,
                "initial_state": {"source": SOURCE, "domain": self.spec.name, "domain_hash": self.digest,
                                  "hash": start.hash(), "db": self.refs["db"], "user_db": self.refs["user_db"],
                                  "init_actions": setup},
                "final_state": {"initial_hash": start.hash(), "hash": final.hash(), "diff": state_diff(start, final)},
                "verifier": verifier.model_dump(mode="json"),
                "feasibility": {"feasible": True, "reasons": [], "path": [
                    {"name": c["name"], "side": c["side"], "ok": r.ok, "error": r.error}
                    for c, r in zip(gold, results)]}}

    def _rejected(self, head: dict, reasons: list[str]) -> dict:
        return {**head, "accepted": False, "stage": WORKFLOW, "reasons": reasons, "artifacts": {}}
