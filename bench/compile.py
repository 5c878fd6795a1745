"""Compiler speed: check+compile of the reference workflow, and compile time of generated
workflows of 10 … 10,000 agents, with time per agent relative to the 10-agent program
(measured in the same run; goal: linear, i.e. ratios near 1, and 10,000 agents under 5 s).

    python bench/compile.py [--max 10000] [--profile 25]

`--profile N` adds the N most expensive functions (cProfile) of one compile of the largest
program, by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eigenlang.compiler import check_file, compile_workflow  # noqa: E402


def generated(n: int, domain: Path) -> str:
    """A RandomPool start feeding a binary tree of n-1 UserIntent/TaskValidation stages."""
    lines = ["eigenlang: 1", f"workflow: gen{n}", f"domain: {domain}", "agents:",
             "  A0: {worker: RandomPool}"]
    flow = []
    for i in range(1, n):
        kind = "UserIntent" if i % 2 else "TaskValidation"
        extra = ", in: ScenarioSeed, out: TaskSpec" if kind == "TaskValidation" else ""
        lines.append(f"  A{i}: {{worker: {kind}{extra}}}")
        flow.append(f"  A{(i - 1) // 2} -> A{i}")
    lines.append("flow: |")
    lines += flow or ["  A0"]
    return "\n".join(lines) + "\n"


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=10_000)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print the top N functions of one compile of the largest program")
    args = ap.parse_args()
    ref = ROOT / "workflows" / "eigendata.yaml"
    compile_workflow(ref)  # warm caches (grammars, domain files)
    t_check = timed(lambda: check_file(ref), 3)
    t_compile = timed(lambda: compile_workflow(ref), 3)
    print(f"reference workflow: check {t_check * 1000:.0f} ms, check+compile {t_compile * 1000:.0f} ms")

    mini = ROOT / "tests" / "fixtures" / "mini"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [n for n in (10, 100, 1_000, 10_000) if n <= args.max]
        for n in sizes:
            f = Path(tmp) / f"gen{n}.yaml"
            f.write_text(generated(n, mini))
            plan, diags = compile_workflow(f, allow=[mini])  # the fixture domain lies outside tmp
            assert plan is not None, diags.render()[:2000]
            t = timed(lambda f=f: compile_workflow(f, allow=[mini]), 3 if n <= 1000 else 1)
            rows.append((n, t))
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(compile_workflow, f, allow=[mini])
    base = rows[0][1] / rows[0][0]
    print(f"{'agents':>8} {'compile s':>10} {'ms/agent':>9} {'ratio vs 10':>12}")
    for n, t in rows:
        print(f"{n:>8} {t:>10.3f} {t / n * 1000:>9.3f} {t / n / base:>12.2f}")
    big = dict(rows).get(10_000)
    if big is not None:
        print(f"10,000 agents: {big:.2f} s (goal < 5 s: {'met' if big < 5 else 'NOT met'})")
    if args.profile:
        print(f"\nprofile of one compile of {rows[-1][0]} agents:")
        for order in ("cumulative", "tottime"):
            pstats.Stats(prof, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(args.profile)


if __name__ == "__main__":
    main()
