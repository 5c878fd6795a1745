"""LLM call throughput of the openai backend against the test server at a fixed latency:
achieved calls/s vs the ideal (concurrency ÷ latency), at several concurrency limits
(goal: ratio ≥ 0.9 at 64 on a 2-core machine).

    python bench/saturation.py [--latency 0.2] [--levels 16,64,256] [--rounds 10] [--in-process]

The server runs as its own process (`python -m tests.llm_server.server`) so that client and
server do not share one interpreter lock, as with a real endpoint; `--in-process` runs it on a
thread instead. Each level: one warm-up wave (opens the connections), then `rounds × C`
calls handed to the backend at once, which lets C be in flight. CPU ms/call is the client
process's CPU time per call.

The reference, measured in the same run: the same calls through a bare aiohttp client (no
openai SDK, no retries, no accounting) under the same semaphore. It shows what the server and
the event loop allow. At a fixed latency L the calls move in waves, and each wave also waits
for the client's CPU work on the whole wave, so ratio ≈ L / (L + C × CPU per call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.backends import make_backend  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are a helpful airline agent."},
            {"role": "user", "content": "I would like to cancel my reservation ZFA04Y, please."}]


async def level(base_url: str, concurrency: int, latency: float, rounds: int) -> dict:
    backend = make_backend("openai", base_url=base_url, model="test-model", concurrency=concurrency,
                           request_timeout=30.0, max_retries=0)
    try:
        await asyncio.gather(*(backend.complete(MESSAGES) for _ in range(concurrency)))  # warm-up
        n = rounds * concurrency
        cpu0, t0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*(backend.complete(MESSAGES, agent="bench") for _ in range(n)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await backend.aclose()
    achieved, ideal = n / wall, concurrency / latency
    return {"concurrency": concurrency, "calls": n, "seconds": wall, "achieved": achieved, "ideal": ideal,
            "ratio": achieved / ideal, "failed": sum(not c.ok for c in results), "cpu_ms": 1000 * cpu / n}


async def reference(base_url: str, concurrency: int, latency: float, rounds: int) -> dict:
    import aiohttp

    body = json.dumps({"model": "test-model", "messages": MESSAGES}).encode()
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 8)) as session:
        async def one() -> bool:
            async with sem, session.post(f"{base_url}/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"}) as r:
                return bool((await r.json())["choices"][0]["message"])

        await asyncio.gather(*(one() for _ in range(concurrency)))
        n = rounds * concurrency
        cpu0, t0 = time.process_time(), time.perf_counter()
        ok = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"concurrency": concurrency, "calls": n, "seconds": wall, "achieved": n / wall,
            "ideal": concurrency / latency, "ratio": n / wall / (concurrency / latency),
            "failed": sum(x is not True for x in ok), "cpu_ms": 1000 * cpu / n}


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.llm_server.server", "--port", "0",
                             "--latency", str(latency)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"the test server did not start: {line!r}")
    return proc, line.split()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--levels", default="16,64,256")
    ap.add_argument("--rounds", type=int, default=10, help="waves of calls per level")
    ap.add_argument("--in-process", action="store_true", help="serve from a thread of this process")
    ap.add_argument("--no-reference", action="store_true", help="skip the bare-aiohttp reference")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    if args.in_process:
        from tests.llm_server import LLMServer

        server = LLMServer(latency=args.latency).start()
        base_url, stop = server.base_url, server.stop
    else:
        proc, base_url = start_server(args.latency)

        def stop() -> None:
            proc.terminate()
            proc.wait(timeout=10)

    try:
        rows = [("openai backend", asyncio.run(level(base_url, c, args.latency, args.rounds))) for c in levels]
        if not args.no_reference:
            rows += [("bare aiohttp (ref)", asyncio.run(reference(base_url, c, args.latency, args.rounds)))
                     for c in levels]
    finally:
        stop()

    print(f"test server ({'in-process' if args.in_process else 'separate process'}), latency {args.latency:g}s, "
          f"{args.rounds} waves per level")
    print(f"{'client':<19} {'concurrency':>11} {'calls':>6} {'seconds':>8} {'calls/s':>9} {'ideal':>8} "
          f"{'ratio':>6} {'failed':>6} {'CPU ms/call':>11}")
    for who, r in rows:
        print(f"{who:<19} {r['concurrency']:>11} {r['calls']:>6} {r['seconds']:>8.2f} {r['achieved']:>9.1f} "
              f"{r['ideal']:>8.1f} {r['ratio']:>6.2f} {r['failed']:>6} {r['cpu_ms']:>11.2f}")
    at64 = [r["ratio"] for who, r in rows if who == "openai backend" and r["concurrency"] == 64]
    if at64:
        print(f"goal ratio >= 0.9 at concurrency 64: {'met' if at64[0] >= 0.9 else 'NOT met'} ({at64[0]:.2f})")


if __name__ == "__main__":
    main()
