"""Phase 3 and the whole run: large-scale generation with online monitoring.

The dataset is written by the ordinary run store and executors, with every prompt set in the
spec (instance i by set i mod K). After each window of committed instances the monitor
critiques them (every record from the validators' facts; a sample, chosen by instance seed
at the workflow's `audit_rate`, by the model judge when there is one), computes each set's
window metrics and checks `drift_when`. A drifting set re-enters the pilot loop alone; the
executor is restarted from the next index with the new prompts, so which prompts made an
instance depends only on the committed history, never on timing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from eigenlang.mutate import Lineage, ProgramVersion
from runtime.exec.engine import RunSpec, instance_seed
from runtime.store.run_store import RunLock, RunStore
from runtime.store.verify import read_records

from .judge import OfflineJudge
from .metrics import CriterionError, batch_metrics, holds, summary_line
from .phases import Evolution, EvolveOptions
from .prompts import PromptStore, PromptVersion


def _audited(seed: int, index: int, rate: float) -> bool:
    return instance_seed(seed, index) % 10_000 < rate * 10_000


def run_evolution(spec: RunSpec, opts: EvolveOptions, say: Callable[[str], None] = lambda s: None,
                  on_record: Callable[[dict], None] = lambda r: None) -> tuple[str, RunStore]:
    """All three phases (phase 3 resumes after a crash); returns (status, store). The run
    directory's lock is held throughout (RunLocked when another run writes it): phases 1–2
    rewrite `evolution/` before the store is opened."""
    lock = RunLock(opts.out)
    try:
        return _evolve(Evolution(spec, opts, say), spec, opts, say, on_record, lock)
    finally:
        lock.release()


def _evolve(ev: Evolution, spec: RunSpec, opts: EvolveOptions, say: Callable[[str], None],
            on_record: Callable[[dict], None], lock: RunLock) -> tuple[str, RunStore]:
    ev.state = None
    ev.dir.mkdir(parents=True, exist_ok=True)
    state_file = ev.dir / "state.json"
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else None
    ev.store = PromptStore(ev.dir / "prompts.json")
    if state is not None and state.get("phase") == "generate":
        ev.state = state
        ev.lineage = Lineage.load(ev.dir / "workflow.jsonl")
        ev.version = ev.lineage.get(state["workflow_hash"]) or ev.lineage.head
        sets = {name: {k: ev.store.get(vid, name) for k, vid in keys.items()} for name, keys in state["sets"].items()}
        say(f"resuming phase 3 of {opts.out} ({len(sets)} prompt sets)")
    else:  # phases 1–2 never half-count: start them again from nothing
        for name in ("log.jsonl", "critiques.jsonl", "prompts.json", "workflow.jsonl", "state.json"):
            (ev.dir / name).unlink(missing_ok=True)
        ev.store = PromptStore(ev.dir / "prompts.json")
        ev.store.set_judge(ev.roles["judge"], (ev.plan.data["prompts"].get("judge.prompt") or {}).get("id"))
        ev.version = ProgramVersion.load(spec.workflow, spec.allow_paths) if spec.workflow_text is None else \
            ProgramVersion(text=spec.workflow_text, hash=ev.plan.hash, path=spec.workflow)
        ev.lineage = Lineage([ev.version])
        ev.lineage.save(ev.dir / "workflow.jsonl")
        ev._log({"event": "start", "backend": spec.backend, "model": spec.model, "sets": ev.k,
                 "batch": ev.batch, "max_iterations": ev.max_iterations, "workflow_hash": ev.plan.hash,
                 **{r: f"{v} {('(' + spec.backend + ')') if v == 'model' else ''}".strip() for r, v in ev.roles.items()}})
        say(f"phase 1: {ev.k} prompt set(s)")
        sets = ev.diversify()
        say(f"phase 2: pilot batches of {ev.batch}, up to {ev.max_iterations} iterations")
        sets = ev.pilot(sets)
        ev._save_state("generate", _ids(sets), [])
    return _generate(ev, sets, say, on_record, lock)


def _ids(sets: dict[str, dict[str, PromptVersion]]) -> dict[str, dict[str, str]]:
    return {name: {k: v.id for k, v in sorted(keys.items())} for name, keys in sorted(sets.items())}


def _spec_for(ev: Evolution, sets: dict[str, dict[str, PromptVersion]]) -> RunSpec:
    return dataclasses.replace(ev.spec, workflow_text=ev.version.text, prompt_sets=tuple(
        (name, tuple((k, v.id, v.text) for k, v in sorted(keys.items()))) for name, keys in sorted(sets.items())))


def _generate(ev: Evolution, sets, say, on_record, lock: RunLock) -> tuple[str, RunStore]:
    from runtime.exec.driver import RunOptions, open_run

    opts = ev.opts
    spec = _spec_for(ev, sets)
    run_opts = RunOptions(Path(opts.out), opts.n, opts.max_attempts, opts.executor, opts.workers, opts.ray_address)
    # identity: the program, not the prompts
    _, store = open_run(dataclasses.replace(spec, prompt_sets=()), run_opts, lock=lock)
    say(f"phase 3: generating {opts.n} accepted instances with {len(sets)} prompt set(s), "
        f"audit rate {ev.audit_rate:g}, window {ev.window}")
    offline_judge = OfflineJudge(ev.weights, ev.keys)
    judge = ev._judge() if ev.roles["judge"] == "model" else offline_judge
    names = sorted(sets)
    reentries = 0

    def done() -> bool:
        return store.counts.accepted >= opts.n or store.counts.attempted >= opts.max_attempts

    # Records committed after the last audited window (a crash between audits): they belong
    # to the window in progress, so the monitor sees the same windows as an uninterrupted run.
    audited_to = ev.state.get("window_end", 0) if ev.state else 0
    window = sorted((r for f in ("instances.jsonl", "rejected.jsonl")
                     for r in read_records(Path(opts.out) / f)[0] if r["index"] >= audited_to),
                    key=lambda r: r["index"])

    def boundary(index: int) -> bool:
        return (index + 1) % ev.window == 0 or done()

    def audit() -> list[str]:
        nonlocal window, reentries
        drifted = _audit(ev, window, names, judge, offline_judge, say)
        end = window[-1]["index"] + 1
        window = []
        for name in drifted:
            reentries += 1
            say(f"drift in set {name}: re-entering phase 2")
            sets[name] = ev.pilot({name: sets[name]}, phase=3, reentry=end)[name]
        ev._save_state("generate", _ids(sets), [], window_end=end)
        return drifted

    try:
        if window and boundary(window[-1]["index"]):
            audit()
        while not done():
            records = _records(_spec_for(ev, sets), store.next_index, opts, ev)
            try:
                for record in records:
                    store.commit(record)
                    on_record(record)
                    window.append(record)
                    if boundary(record["index"]) and audit():
                        break  # new prompts: restart the executor from the next index
                    if done():
                        break
            finally:
                records.close()
    except Exception as exc:  # the manifest says why, as `eigen run`'s does
        from runtime.exec.driver import failure_reason

        store.close("failed", failure_reason(exc))
        raise
    status = "complete" if store.counts.accepted >= opts.n else "exhausted"
    store.close(status)
    ev._log({"event": "done", "status": status, "accepted": store.counts.accepted,
             "attempted": store.counts.attempted, "reentries": reentries,
             "orchestration_tokens": {a: t.to_json() for a, t in ev.ledger.by_agent().items()} if ev.ledger else {}})
    return status, store


def _records(spec: RunSpec, start: int, opts: EvolveOptions, ev: Evolution):
    if opts.executor == "ray":
        from runtime.exec.executors import ray_records

        return ray_records(spec, start, opts.workers, opts.ray_address)

    def local():
        runner = ev._runner()
        for index in range(start, 2**62):
            yield runner.run(index, spec.prompt_sets[index % len(spec.prompt_sets)])
    return local()


def _audit(ev: Evolution, window: list[dict], names: list[str], judge, offline_judge, say) -> list[str]:
    """Critique a window, log its metrics per set; the sets whose metrics drift."""
    per_set: dict[str, list] = {n: [] for n in names}
    for r in window:
        name = (r.get("provenance") or {}).get("prompt_set") or names[r["index"] % len(names)]
        c = judge.critique(r) if _audited(ev.spec.seed, r["index"], ev.audit_rate) else offline_judge.critique(r)
        per_set.setdefault(name, []).append((r, c))
    metrics, drift, errors = {}, [], {}
    for name in names:
        pairs = per_set.get(name) or []
        if not pairs:
            continue
        m = batch_metrics([r for r, _ in pairs], [c for _, c in pairs], ev.axes)
        metrics[name] = m
        try:
            if holds(ev.drift_when, m):
                drift.append(name)
        except CriterionError as exc:  # recorded in the window's event, not read as "no drift"
            errors[name] = f"drift_when failed: {exc}"
    audited = [c for pairs in per_set.values() for r, c in pairs if _audited(ev.spec.seed, r["index"], ev.audit_rate)]
    ev._critiques_out(audited, phase=3, iteration=-1)
    ev._log({"event": "window", "phase": 3, "start": window[0]["index"], "end": window[-1]["index"] + 1,
             "sets": metrics, "drift": drift, **({"errors": errors} if errors else {})})
    say(f"phase 3 · instances {window[0]['index']}–{window[-1]['index']}: " +
        "; ".join(f"{n} {summary_line(m)}" for n, m in metrics.items()) + (f" · drift: {drift}" if drift else "")
        + "".join(f" · {n}: {e}" for n, e in errors.items()))
    return drift
