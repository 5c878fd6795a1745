"""Several endpoints behind one openai backend (runtime/backends/endpoints.py): balancing by
requests in flight, the circuit breaker and its probe, failover of a request whose endpoint
went away; then whole runs: `eigen run` over three test servers (processes) with one killed
mid-run writes the same dataset as a run against one server, and under `--executor ray` the
concurrency budget is split across the workers, not multiplied."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from runtime.backends import make_backend, run_sync
from runtime.backends.endpoints import CONNECTION, REFUSED, SERVER_ERROR, TIMEOUT, EndpointPool
from runtime.exec.executors import split
from tests.helpers import ROOT
from tests.llm_server import Faults, serve

HELLO = [{"role": "user", "content": "hello there"}]


def free_port() -> int:
    """A port nothing listens on (free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend(urls, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("request_timeout", 5.0)
    return make_backend("openai", base_url=urls, model="test-model", **kw)


# ---------------------------------------------------------------- the pool alone


async def _never(ep):  # a probe that is never due in these tests
    raise AssertionError("no probe expected")


def test_least_in_flight_wins_and_ties_go_to_the_first():
    pool = EndpointPool(["a", "b", "c"], _never)
    a, b, c = pool.endpoints
    assert pool.pick() is a
    a.in_flight = 1
    assert pool.pick() is b
    b.in_flight = 1
    assert pool.pick() is c
    c.in_flight = 1
    assert pool.pick() is a  # all at 1: the first named
    assert pool.pick(avoid=a) is b  # a retry goes elsewhere when it can


def test_a_refused_connection_takes_an_endpoint_out_at_once_repeated_failures_after_three():
    pool = EndpointPool(["a", "b", "c"], _never, cooldown=60)
    a, b, c = pool.endpoints
    pool.failed(a, REFUSED)
    assert not a.up and pool.pick() is b and pool.others_up(b)
    for kind in (SERVER_ERROR, TIMEOUT):
        pool.failed(b, kind)
    assert b.up
    pool.answered(b)  # an answer resets the count
    for kind in (SERVER_ERROR, TIMEOUT, CONNECTION):
        pool.failed(b, kind)
    assert not b.up and pool.pick() is c and not pool.others_up(c)
    pool.failed(c, None)  # a failure that says nothing about health (a bad answer)
    assert c.up and c.failed == 1
    pool.failed(c, REFUSED)
    assert pool.pick() is a  # all out: the one due back first
    pool.answered(a)
    assert a.up and pool.pick() is a


def test_one_endpoint_is_never_taken_out():
    pool = EndpointPool(["a"], _never)
    for _ in range(5):
        pool.failed(pool.endpoints[0], REFUSED)
    assert pool.endpoints[0].up and pool.pick() is pool.endpoints[0]


def test_an_endpoint_out_is_probed_after_its_cool_down():
    answers = iter([False, True])

    async def probe(ep):
        if not next(answers):
            raise ConnectionRefusedError

    async def scenario():
        pool = EndpointPool(["a", "b"], probe, cooldown=0.05)
        a, b = pool.endpoints
        pool.failed(a, REFUSED)
        assert pool.pick() is b  # not due yet: no probe
        await asyncio.sleep(0.06)
        assert pool.pick() is b  # due: a probe starts, in the background
        await asyncio.sleep(0.01)
        assert not a.up and a.cooldown == 0.1  # it failed: twice the cool-down
        await asyncio.sleep(0.11)
        pool.pick()
        await asyncio.sleep(0.01)
        assert a.up and a.cooldown == 0.05 and pool.pick() is a
        await pool.aclose()

    asyncio.run(scenario())


def test_the_budget_is_split_not_multiplied():
    assert split(16, 4) == [4, 4, 4, 4] and split(7, 3) == [3, 2, 2] and sum(split(64, 3)) == 64
    assert split(2, 3) == [1, 1, 1]  # at least one each


# ---------------------------------------------------------------- a backend over live servers


def test_requests_are_balanced_by_in_flight_load():
    with serve(latency=0.2) as a, serve(latency=0.2) as b:
        bk = backend([a.base_url, b.base_url], concurrency=8)

        async def many():
            return await asyncio.gather(*(bk.complete(HELLO) for _ in range(16)))

        assert all(c.ok for c in run_sync(many()))
        assert a.max_in_flight == b.max_in_flight == 4 and len(a.requests) == len(b.requests) == 8
        assert [s["answered"] for s in bk.endpoint_stats()] == [8, 8]


def test_a_retry_goes_to_another_endpoint_with_the_same_request():
    with serve(faults=Faults(plan=["500"])) as a, serve() as b:
        c = run_sync(backend([a.base_url, b.base_url]).complete(HELLO, temperature=1.0, seed=1234))
        assert c.ok and c.attempts == 2
        assert [r["status"] for r in a.requests] == [500] and [r["status"] for r in b.requests] == [200]
        assert a.requests[0]["body"] == b.requests[0]["body"] and b.requests[0]["body"]["seed"] == 1234


@pytest.mark.parametrize("send", ["http", "sdk"])
def test_a_dead_endpoint_is_failed_over_and_then_left_alone(send):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with serve() as live:
        bk = backend([dead, live.base_url], max_retries=0, send=send)  # a failover is not a retry
        first = run_sync(bk.complete(HELLO))
        assert first.ok and first.attempts == 2
        rest = [run_sync(bk.complete(HELLO)) for _ in range(5)]
        assert all(c.ok and c.attempts == 1 for c in rest) and len(live.requests) == 6
        dead_stats, live_stats = bk.endpoint_stats()
        assert not dead_stats["up"] and dead_stats["failed"] == 1 and dead_stats["taken_out"] == 1
        assert live_stats["answered"] == 6


def test_every_endpoint_dead_is_a_recorded_failure_soon():
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    t0 = time.perf_counter()
    c = run_sync(backend(urls, max_retries=2).complete(HELLO))
    assert not c.ok and c.error.startswith("connection error: ConnectionRefusedError")
    assert c.attempts == 4 and time.perf_counter() - t0 < 3  # one failover, then the retries


def test_an_endpoint_that_comes_back_gets_requests_again():
    port = free_port()
    with serve() as live:
        bk = backend([f"http://127.0.0.1:{port}/v1", live.base_url], cooldown=0.1)
        assert run_sync(bk.complete(HELLO)).ok and not bk.endpoint_stats()[0]["up"]
        from tests.llm_server import LLMServer

        back = LLMServer().start(port=port)
        try:
            deadline = time.monotonic() + 5
            while not back.requests and time.monotonic() < deadline:
                run_sync(bk.complete(HELLO))
                time.sleep(0.05)
            assert back.requests and bk.endpoint_stats()[0]["up"]
        finally:
            back.stop()


def test_the_cli_refuses_bad_or_repeated_endpoints(tmp_path):
    from typer.testing import CliRunner

    from runtime.cli.main import app

    wf = str(ROOT / "workflows" / "eigendata.yaml")
    for urls, why in ((["ftp://x/v1"], "not an http:// or https:// URL"),
                      (["http://a:1/v1", "http://a:1/v1"], "given twice")):
        args = ["run", wf, "--backend", "openai", "--out", str(tmp_path / "r")]
        res = CliRunner().invoke(app, args + [a for u in urls for a in ("--base-url", u)])
        assert res.exit_code == 2 and why in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- whole runs, servers as processes

RUN = ("run", "workflows/eigendata.yaml", "--backend", "openai", "--model", "scripted", "--domain", "retail",
       "--size", "0.1", "--n", "4", "-q", "--request-timeout", "5", "--max-retries", "2", "--max-attempts", "30",
       "--concurrency", "6")


class Servers:
    """Test servers as processes answering as the competent model, sharing one task folder."""

    def __init__(self, k: int, tasks: Path, latency: float = 0.05) -> None:
        tasks.mkdir(parents=True, exist_ok=True)
        self.procs = [subprocess.Popen(
            [sys.executable, "-m", "tests.llm_server.server", "--port", "0", "--latency", str(latency),
             "--policy", "competent:retail:0:0.1", "--tasks-dir", str(tasks), "--ids", "content"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(k)]
        self.urls = []
        for p in self.procs:
            line = p.stdout.readline()
            assert line.startswith("listening on "), line
            self.urls.append(line.split()[-1])

    def stats(self, i: int) -> dict:
        root = self.urls[i].rsplit("/v1", 1)[0]
        with urllib.request.urlopen(f"{root}/stats", timeout=5) as r:
            return json.loads(r.read())

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(timeout=10)


def _records(out: Path) -> list[dict]:
    rows = []
    for name in ("instances.jsonl", "rejected.jsonl"):
        path = out / name
        rows += [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return sorted(rows, key=lambda r: r["index"])


def _same_request_parts(record: dict) -> dict:
    """A record without what depends on how its requests travelled: the attempts its calls
    took, and the integrity hash, which covers the provenance and so those attempts."""
    tokens = {k: v for k, v in record["provenance"]["tokens"].items() if k != "attempts"}
    return {**{k: v for k, v in record.items() if k != "integrity"},
            "provenance": {**record["provenance"], "tokens": tokens}}


def _eigen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runtime.cli.main", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> tuple[Path, dict]:
    """The run against one server (whose in-flight high-water mark shows --concurrency)."""
    tmp = tmp_path_factory.mktemp("one-endpoint")
    servers = Servers(1, tmp / "tasks")
    try:
        run = _eigen(*RUN, "--base-url", servers.urls[0], "--out", str(tmp / "run"))
        _, err = run.communicate(timeout=240)
        assert run.returncode == 0, err
        return tmp / "run", servers.stats(0)
    finally:
        servers.close()


@pytest.mark.slow
def test_a_server_killed_mid_run_loses_and_duplicates_nothing(tmp_path, reference_run):
    reference, one = reference_run
    assert 1 < one["max_in_flight"] <= 6  # instances run at once, up to --concurrency
    servers = Servers(3, tmp_path / "tasks")
    try:
        urls = [a for u in servers.urls for a in ("--base-url", u)]
        run = _eigen(*RUN, *urls, "--out", str(tmp_path / "run"))
        victim, deadline = 1, time.monotonic() + 120
        while time.monotonic() < deadline:  # mid-run: it has answered, and is answering now
            s = servers.stats(victim)
            if s["served"] >= 10 and s["in_flight"] >= 1:
                break
            time.sleep(0.02)
        servers.procs[victim].kill()
        _, err = run.communicate(timeout=240)  # the run ends by itself
        survivors = [servers.stats(i) for i in (0, 2)]
    finally:
        servers.close()
    assert run.returncode == 0, err
    assert "at 3 endpoints" in err
    records = _records(tmp_path / "run")
    assert [r["index"] for r in records] == list(range(len(records)))  # each instance once, none lost
    assert sum(r["accepted"] for r in records) == 4
    for r in records:
        if not r["accepted"]:
            assert r["reasons"] and r["stage"] in r["trace"], r
    assert all(s["served"] > 0 for s in survivors)
    # the requests cut off by the kill were sent on: some call took more than one attempt ...
    tokens = [r["provenance"]["tokens"] for r in records]
    assert sum(t["attempts"] - t["calls"] for t in tokens) > 0 and sum(t["failed"] for t in tokens) == 0
    # ... and which endpoint answered changed nothing: the dataset of the one-endpoint run
    assert [_same_request_parts(r) for r in records] == [_same_request_parts(r) for r in _records(reference)]


# ---------------------------------------------------------------- the budget under Ray


@pytest.mark.ray
def test_ray_workers_split_the_concurrency_budget(tmp_path, ray_cluster):
    from runtime.exec.driver import RunOptions, execute, open_run
    from runtime.exec.engine import RunSpec
    from tests.llm_server.policies import CompetentPolicy

    with serve(CompetentPolicy("retail", 0, 0.1), latency=0.05, record=False) as srv:
        spec = RunSpec(str(ROOT / "workflows" / "eigendata.yaml"), "retail", 0, 0.1, "openai", "scripted",
                       srv.base_url, concurrency=6, request_timeout=5.0)
        opts = RunOptions(tmp_path / "run", 6, 60, "ray", 2)
        plan, store = open_run(spec, opts)
        assert execute(spec, plan, store, opts) == "complete"
        peak = srv.max_in_flight
    # 2 workers × 3: more than one request per worker in flight, never more than the budget of 6
    assert 2 < peak <= 6, peak
