"""Executors: where instances run. Both yield records in index order, so what the run store
commits does not depend on the executor, on how many instances run at once, or on which
endpoint answered (records are pure functions of spec and index).

- local: in this process. With the openai backend, `spec.concurrency` instances run at once
  on threads: an instance makes one model call at a time, so C instances keep C requests in
  flight, which is what `--concurrency` promises (one instance after another would keep one).
  Offline and in-process model backends (hf) run one instance after another: their work is
  this process's CPU, which threads would not add to.
- ray: K actors, each holding its own `Runner` (compiled plan, generated world, workers).
  The concurrency budget is split across them, not multiplied: actor i gets `split(C, K)[i]`
  instances at once (a threaded actor) and a backend that lets that many requests be in
  flight, so the endpoints see at most C requests from the whole run (at least one per actor:
  a C below K is raised to K). Results are re-ordered before they are yielded.

A process that generates through the openai backend settles its heap first
(`runtime.backends.settle_heap`: why, and what it costs, is said there).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import count

from .engine import Runner, RunSpec


def instance_slots(spec: RunSpec) -> int:
    """How many instances one process runs at once for this spec (see the module's doc)."""
    return max(1, spec.concurrency) if spec.backend == "openai" else 1


def split(total: int, parts: int) -> list[int]:
    """`total` split into `parts` shares as even as can be (the first `total % parts` get one
    more), each at least 1."""
    base, extra = divmod(max(0, total), parts)
    return [max(1, base + (i < extra)) for i in range(parts)]


def prepare_process(spec: RunSpec) -> None:
    """What a process does once before it generates: for the openai backend, settle the heap."""
    if spec.backend == "openai":
        from runtime.backends import settle_heap
        from runtime.backends.openai_backend import IMPORTS

        settle_heap(IMPORTS)


def local_records(spec: RunSpec, start: int, runner: Runner | None = None) -> Iterator[dict]:
    runner = runner or Runner(spec)
    slots = instance_slots(spec)
    if slots == 1:
        yield from map(runner.run, count(start))
        return
    prepare_process(spec)
    yield from in_order(runner.run, start, slots)


def in_order(run: Callable[[int], dict], start: int, slots: int) -> Iterator[dict]:
    """`run(i)` for i = start, start + 1, ... on `slots` threads, yielded in index order.

    At most 2 × slots instances are started and not yet yielded (the look-ahead that keeps the
    threads busy while an earlier, longer instance finishes). Closing the generator cancels
    the instances not started and waits for the running ones (their records are dropped, as
    a Ray executor's look-ahead is): at most one instance's time."""
    pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="eigen-instance")
    pending: deque[Future] = deque()
    indices = count(start)
    try:
        while True:
            while len(pending) < 2 * slots:
                pending.append(pool.submit(run, next(indices)))
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)


class _RunnerActor:  # made a Ray actor class on first use (ray is imported lazily)
    def __init__(self, spec: RunSpec) -> None:
        # A setup error (a backend that does not build, a crashing generator) is raised by
        # ready(): Ray keeps a task's exception as its `cause`, but not an actor creation's.
        self.error: Exception | None = None
        try:
            self.runner = Runner(spec)
        except Exception as exc:  # noqa: BLE001
            self.error = exc
            return
        prepare_process(spec)

    def ready(self) -> bool:
        if self.error is not None:
            raise self.error
        return True

    def run_many(self, indices: list[int]) -> list[dict]:
        return [self.runner.run(i) for i in indices]


def ray_records(spec: RunSpec, start: int, workers: int, address: str | None = None,
                chunk: int = 4) -> Iterator[dict]:
    """Instances from `start` on, computed by `workers` Ray actors, yielded in index order.
    An actor running one instance at a time gets chunks of `chunk` indices, two in flight so
    it never waits for the driver; an actor running s at once (the openai backend) gets
    single indices, 2 × s in flight, so that a long instance never holds back a chunk."""
    import os

    import ray

    if not ray.is_initialized():
        # Ray starts workers at nice 15 by default; on a machine where anything else runs,
        # that starves the actors doing the run's real work. A cluster we start is ours.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address=address, num_cpus=None if address else max(workers, os.cpu_count() or 1),
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    threaded = instance_slots(spec) > 1
    slots = split(spec.concurrency, workers) if threaded else [1] * workers
    actor_cls = ray.remote(num_cpus=1)(_RunnerActor)
    specs = [dataclasses.replace(spec, concurrency=s) if threaded else spec for s in slots]
    actors = [actor_cls.options(max_concurrency=s).remote(sp) for s, sp in zip(slots, specs)]
    try:
        ray.get([a.ready.remote() for a in actors])  # a setup error surfaces here, once
        pending: dict = {}  # object ref → actor number
        next_index, want, buffer = start, start, {}

        def submit(k: int) -> None:
            nonlocal next_index
            size = chunk if slots[k] == 1 else 1
            pending[actors[k].run_many.remote(list(range(next_index, next_index + size)))] = k
            next_index += size

        for k, s in enumerate(slots):
            for _ in range(2 * s):
                submit(k)
        while True:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                k = pending.pop(ref)
                for record in ray.get(ref):
                    buffer[record["index"]] = record
                submit(k)
            while want in buffer:
                yield buffer.pop(want)
                want += 1
    finally:
        for a in actors:
            ray.kill(a)
