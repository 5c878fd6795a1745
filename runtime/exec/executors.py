"""Executors: where instances run. Both yield records in index order, so what the run store
commits does not depend on the executor (records are pure functions of spec and index).

- local: in this process, one instance after another (small runs, tests, debugging);
- ray: K actors, each holding its own `Runner` (compiled plan, generated world, workers), fed
  chunks of indices; results are re-ordered before they are yielded.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

from .engine import Runner, RunSpec


def local_records(spec: RunSpec, start: int, runner: Runner | None = None) -> Iterator[dict]:
    runner = runner or Runner(spec)
    for index in count(start):
        yield runner.run(index)


class _RunnerActor:  # made a Ray actor class on first use (ray is imported lazily)
    def __init__(self, spec: RunSpec) -> None:
        self.runner = Runner(spec)

    def ready(self) -> bool:
        return True

    def run_many(self, indices: list[int]) -> list[dict]:
        return [self.runner.run(i) for i in indices]


def ray_records(spec: RunSpec, start: int, workers: int, address: str | None = None,
                chunk: int = 4) -> Iterator[dict]:
    """Instances from `start` on, computed by `workers` Ray actors, yielded in index order.
    Each actor has two chunks in flight so it never waits for the driver."""
    import os

    import ray

    if not ray.is_initialized():
        # Ray starts workers at nice 15 by default; on a machine where anything else runs,
        # that starves the actors doing the run's real work. A cluster we start is ours.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address=address, num_cpus=None if address else max(workers, os.cpu_count() or 1),
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    actor_cls = ray.remote(num_cpus=1)(_RunnerActor)
    actors = [actor_cls.remote(spec) for _ in range(workers)]
    try:
        ray.get([a.ready.remote() for a in actors])  # a setup error surfaces here, once
        pending: dict = {}  # object ref → actor
        next_index, want, buffer = start, start, {}

        def submit(actor) -> None:
            nonlocal next_index
            pending[actor.run_many.remote(list(range(next_index, next_index + chunk)))] = actor
            next_index += chunk

        for a in actors:
            submit(a)
            submit(a)
        while True:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                actor = pending.pop(ref)
                for record in ray.get(ref):
                    buffer[record["index"]] = record
                submit(actor)
            while want in buffer:
                yield buffer.pop(want)
                want += 1
    finally:
        for a in actors:
            ray.kill(a)
