"""LLM call throughput of the openai backend against the test server at a fixed latency:
achieved calls/s vs the ideal (concurrency ÷ latency), at several concurrency limits
(goals: ratio ≥ 0.95 at 64 and ≥ 0.90 at 256 on a 2-core machine, with the bare-aiohttp
reference of the same run as the yardstick of what the machine allowed).

    python bench/saturation.py [--latency 0.2] [--levels 16,64,256] [--rounds 10] [--repeat 3]
                               [--send http[,sdk]] [--in-process] [--no-reference]

The server runs as its own process (`python -m tests.llm_server.server`) so that client and
server do not share one interpreter lock, as with a real endpoint; `--in-process` runs it on a
thread instead. Each level: one warm-up wave (opens the connections), then `rounds × C`
calls handed to the backend at once, which lets C be in flight. CPU ms/call is the client
process's CPU time per call; server ms/call the server process's (read from /proc, so Linux
only; "-" elsewhere and in-process). `--send` picks the backend's send mode(s) (see
runtime/backends/openai_backend.py): "http" (the default), "sdk" (the SDK's whole pipeline).

The reference, measured in the same run right after the backend at each level (so both see
the same machine load): the same calls through a bare aiohttp client (no openai SDK, no
retries, no accounting) under the same semaphore, with its body encoded once for all calls. It shows what the server and the event loop
allow. At a fixed latency L the calls move in waves, and each wave also waits for the CPU work
of the whole wave, client's and server's, so ratio ≈ L / (L + C × CPU per call): on 2 cores
the server's CPU counts as well as the client's. The load average before and after is
printed: with other work on the machine the ratios mean little on their own, so every level
is repeated (`--repeat`), the table gives each run and the summary the medians, and "vs ref"
is the backend's median ratio over the reference's.

The process settles its heap first (`runtime.backends.settle_heap`: openai and aiohttp
imported, then gc.freeze), as every process that generates through the openai backend does
(runtime/exec/executors.py); both clients run in this one process, so both get it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.backends import make_backend, settle_heap  # noqa: E402
from runtime.backends.openai_backend import IMPORTS  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are a helpful airline agent."},
            {"role": "user", "content": "I would like to cancel my reservation ZFA04Y, please."}]


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process has used so far, or None where unknown."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def measure(calls, concurrency: int, latency: float, rounds: int, server_pid: int | None) -> dict:
    """Warm-up wave, then `rounds × concurrency` calls at once; `calls(n)` makes and awaits n
    calls and returns how many failed."""
    await calls(concurrency)  # opens the connections
    n = rounds * concurrency
    server0 = process_cpu(server_pid)
    cpu0, t0 = time.process_time(), time.perf_counter()
    failed = await calls(n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server1 = process_cpu(server_pid)
    server_ms = 1000 * (server1 - server0) / n if server0 is not None and server1 is not None else None
    achieved, ideal = n / wall, concurrency / latency
    return {"concurrency": concurrency, "calls": n, "seconds": wall, "achieved": achieved, "ideal": ideal,
            "ratio": achieved / ideal, "failed": failed, "cpu_ms": 1000 * cpu / n, "server_ms": server_ms}


async def level(base_url: str, concurrency: int, latency: float, rounds: int, send: str = "http",
                server_pid: int | None = None) -> dict:
    backend = make_backend("openai", base_url=base_url, model="test-model", concurrency=concurrency,
                           request_timeout=30.0, max_retries=0, send=send)

    async def calls(n: int) -> int:
        results = await asyncio.gather(*(backend.complete(MESSAGES, agent="bench") for _ in range(n)))
        return sum(not c.ok for c in results)

    try:
        row = await measure(calls, concurrency, latency, rounds, server_pid)
    finally:
        await backend.aclose()
    row["send"] = backend.send  # what was used ("sdk" where the SDK build leaves no choice)
    return row


async def reference(base_url: str, concurrency: int, latency: float, rounds: int,
                    server_pid: int | None = None) -> dict:
    import aiohttp

    body = json.dumps({"model": "test-model", "messages": MESSAGES}).encode()
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 8)) as session:
        async def one() -> bool:
            async with sem, session.post(f"{base_url}/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"}) as r:
                return bool((await r.json())["choices"][0]["message"])

        async def calls(n: int) -> int:
            ok = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
            return sum(x is not True for x in ok)

        return await measure(calls, concurrency, latency, rounds, server_pid)


def _backend_row(base_url: str, c: int, args: argparse.Namespace, send: str, pid: int | None) -> tuple[str, dict]:
    r = asyncio.run(level(base_url, c, args.latency, args.rounds, send, pid))
    return f"openai backend ({r['send']})", r


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.llm_server.server", "--port", "0",
                             "--latency", str(latency)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"the test server did not start: {line!r}")
    return proc, line.split()[-1]


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--levels", default="16,64,256")
    ap.add_argument("--rounds", type=int, default=10, help="waves of calls per level")
    ap.add_argument("--repeat", type=int, default=3, help="run every level this many times")
    ap.add_argument("--send", default="http", help="the backend's send mode(s), comma-separated: http, sdk")
    ap.add_argument("--in-process", action="store_true", help="serve from a thread of this process")
    ap.add_argument("--no-reference", action="store_true", help="skip the bare-aiohttp reference")
    args = ap.parse_args()
    try:
        levels = [int(x) for x in args.levels.split(",")]
    except ValueError:
        ap.error(f"--levels {args.levels!r}: expected comma-separated integers")
    sends = [s.strip() for s in args.send.split(",") if s.strip()]

    if args.in_process:
        from tests.llm_server import LLMServer

        server = LLMServer(latency=args.latency, record=False).start()
        base_url, stop, pid = server.base_url, server.stop, None
    else:
        proc, base_url = start_server(args.latency)
        pid = proc.pid

        def stop() -> None:
            proc.terminate()
            proc.wait(timeout=10)

    settle_heap(IMPORTS)
    load_before = load()
    rows: list[tuple[str, dict]] = []
    try:
        for rep in range(args.repeat):
            for c in levels:  # each level's clients back to back: they see the same machine load
                runs = [lambda send=send: _backend_row(base_url, c, args, send, pid) for send in sends]
                if not args.no_reference:
                    runs.append(lambda: ("bare aiohttp (ref)",
                                         asyncio.run(reference(base_url, c, args.latency, args.rounds, pid))))
                for run in runs if rep % 2 == 0 else runs[::-1]:  # alternate who goes first
                    rows.append(run())
    finally:
        stop()

    print(f"test server ({'in-process' if args.in_process else 'separate process'}), latency {args.latency:g}s, "
          f"{args.rounds} waves per level; load average before {load_before}, after {load()}")
    print(f"{'client':<22} {'concurrency':>11} {'calls':>6} {'seconds':>8} {'calls/s':>9} {'ideal':>8} "
          f"{'ratio':>6} {'failed':>6} {'CPU ms/call':>11} {'server ms/call':>14}")
    order = {who: i for i, who in enumerate(dict.fromkeys(who for who, _ in rows))}
    for who, r in sorted(rows, key=lambda wr: (order[wr[0]], wr[1]["concurrency"])):  # stable: runs in order
        server = f"{r['server_ms']:.2f}" if r["server_ms"] is not None else "-"
        print(f"{who:<22} {r['concurrency']:>11} {r['calls']:>6} {r['seconds']:>8.2f} {r['achieved']:>9.1f} "
              f"{r['ideal']:>8.1f} {r['ratio']:>6.2f} {r['failed']:>6} {r['cpu_ms']:>11.2f} {server:>14}")
    summary(rows, order, levels)


GOALS = {64: 0.95, 256: 0.90}


def summary(rows: list[tuple[str, dict]], order: dict[str, int], levels: list[int]) -> None:
    """Median ratio per client and level, the backend's against the reference's, and the goals."""
    from statistics import median

    ref = {c: median(r["ratio"] for w, r in rows if w.startswith("bare") and r["concurrency"] == c)
           for c in levels if any(w.startswith("bare") and r["concurrency"] == c for w, r in rows)}
    print("medians:")
    for who in order:
        for c in levels:
            mine = [r for w, r in rows if w == who and r["concurrency"] == c]
            if not mine:
                continue
            m = median(r["ratio"] for r in mine)
            line = (f"  {who:<22} concurrency {c:>4}: ratio {m:.2f}, CPU {median(r['cpu_ms'] for r in mine):.2f} "
                    f"ms/call (of {len(mine)})")
            if who.startswith("openai backend"):
                if c in ref:
                    line += f", vs ref {m / ref[c]:.2f}"
                if c in GOALS:
                    line += f"; goal >= {GOALS[c]:.2f}: {'met' if m >= GOALS[c] else 'NOT met'}"
            print(line)

if __name__ == "__main__":
    main()
