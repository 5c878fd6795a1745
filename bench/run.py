"""Throughput of `eigen run` on the offline backend, and its scaling over Ray workers.

    python bench/run.py [--domain airline] [--instances 120] [--size 1.0]

Measures steady-state instances per second (start-up — compiling, generating the world,
starting actors — excluded: the clock starts at the first record) for:

- the local executor (one process, the reference),
- the Ray executor with 1 worker and with 2 workers.

Prints accepted instances/s and the speed-up of 2 Ray workers over 1 (goal ≥ 1.7×; it needs
2 free cores). All three produce the same records, which the bench checks too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.exec.engine import Runner, RunSpec  # noqa: E402
from runtime.exec.executors import local_records, ray_records  # noqa: E402


def measure(records, count: int) -> tuple[float, list[dict]]:
    """Seconds for records 2..count (the first one absorbs start-up), and all records."""
    got = [next(records)]
    t0 = time.perf_counter()
    while len(got) < count:
        got.append(next(records))
    seconds = time.perf_counter() - t0
    records.close()
    return seconds, got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domain", default="airline")
    ap.add_argument("--instances", type=int, default=120)
    ap.add_argument("--size", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import os

    import ray

    os.environ.setdefault("RAY_worker_niceness", "0")  # as runtime.exec.executors does

    spec = RunSpec(str(ROOT / "workflows" / "eigendata.yaml"), args.domain, args.seed, args.size)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    rows = []
    t_local, ref = measure(local_records(spec, 0, Runner(spec)), args.instances)
    rows.append(("local (reference)", t_local, ref))
    for k in (1, 2):
        t, got = measure(ray_records(spec, 0, k), args.instances)
        assert got == ref, f"ray with {k} workers wrote different records"
        rows.append((f"ray, {k} worker{'s' * (k > 1)}", t, got))
    ray.shutdown()

    timed = args.instances - 1
    accepted = sum(r["accepted"] for r in ref[1:])
    print(f"domain {args.domain}, size {args.size}, {args.instances} instances "
          f"({accepted}/{timed} accepted in the timed part)")
    print(f"{'executor':<20}{'instances/s':>12}{'accepted/s':>12}{'vs local':>10}")
    for name, t, _ in rows:
        print(f"{name:<20}{timed / t:>12.1f}{accepted / t:>12.1f}{t_local / t:>9.2f}×")
    speedup = rows[1][1] / rows[2][1]
    print(f"speed-up 1 → 2 Ray workers: {speedup:.2f}× (goal ≥ 1.7×)")


if __name__ == "__main__":
    main()
