"""A run: pull records from an executor, commit them in order, stop at N accepted.

The driver is the only writer of the run directory. It stops pulling once N instances are
accepted (or `max_attempts` instances were tried), so an executor's look-ahead costs a little
wasted work but never changes what is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.store.run_store import CRASHES, RunLock, RunStore

from .engine import GeneratorCrash, Runner, RunSetupError, RunSpec, prepare


@dataclass
class RunOptions:
    out: Path
    n: int
    max_attempts: int
    executor: str = "local"  # local | ray
    workers: int = 1
    ray_address: str | None = None


def open_run(spec: RunSpec, opts: RunOptions, plan: object = None,
             lock: RunLock | None = None) -> tuple[object, RunStore]:
    """Compile (unless given the plan), then open or resume the run store for this run
    (taking the directory's lock, unless the caller holds it: `lock`)."""
    plan = plan or prepare(spec)
    identity = {"workflow_hash": plan.hash, "domain_hash": plan.data["domain"]["hash"],
                "backend": spec.backend, "model": spec.model, "seed": spec.seed, "size": spec.size}
    extra = {"workflow": plan.data["workflow"], "workflow_path": str(Path(spec.workflow)),
             "domain": plan.domain.name, "domain_dir": str(Path(plan.domain.root).resolve()),
             "n": opts.n, "max_attempts": opts.max_attempts,
             "prompts": {k: v["id"] for k, v in sorted(plan.data["prompts"].items())}}
    return plan, RunStore(opts.out, identity, extra, lock=lock)


def execute(spec: RunSpec, plan: object, store: RunStore, opts: RunOptions,
            on_record: Callable[[dict], None] = lambda r: None) -> str:
    """Run until done; returns the final status: complete | exhausted. When the run cannot go
    on (the workers cannot be made: a backend that does not build, ...) the store is closed
    `failed` with the reason, and the error is raised again for the caller to report."""
    def done() -> bool:
        return store.counts.accepted >= opts.n or store.counts.attempted >= opts.max_attempts

    try:
        if not done():
            _drive(spec, plan, store, opts, on_record, done)
    except Exception as exc:
        crash = generator_crash(exc)
        if crash is not None:
            store.write_crash_file(f"{CRASHES}/generator.txt", crash.traceback)
        store.close("failed", failure_reason(exc))
        raise
    status = "complete" if store.counts.accepted >= opts.n else "exhausted"
    store.close(status)
    return status


def _drive(spec: RunSpec, plan: object, store: RunStore, opts: RunOptions,
           on_record: Callable[[dict], None], done: Callable[[], bool]) -> None:
    if opts.executor == "ray":
        from .executors import ray_records

        records = ray_records(spec, store.next_index, opts.workers, opts.ray_address)
    else:
        from .executors import local_records

        records = local_records(spec, store.next_index, Runner(spec, plan))
    try:
        for record in records:
            store.commit(record)
            on_record(record)
            if done():
                break
    finally:
        records.close()  # stops the executor (kills Ray actors)


def generator_crash(exc: BaseException) -> GeneratorCrash | None:
    """The GeneratorCrash behind `exc` (raised here, or in a Ray actor and wrapped by Ray)."""
    for e in (getattr(exc, "cause", None), exc):
        if isinstance(e, GeneratorCrash):
            return e
    return None


def failure_reason(exc: BaseException) -> str:
    """One line for the manifest: a setup error's own words (also when a Ray actor raised it
    and Ray wrapped it), else the exception's type and message."""
    cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError keeps the original
    if isinstance(cause, RunSetupError):  # (and may itself be one: its text is Ray's, though)
        text = str(cause)
    elif isinstance(exc, RunSetupError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__
