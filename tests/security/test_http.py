"""The HTTP backend against an endpoint that does not play fair (issue 16, findings 7 and 8),
through the real test server (tests/llm_server): huge answers are cut at a size cap and
recorded as failures without being held in memory, a huge Retry-After is not waited for, one
request has a total deadline, and nesting or size in an answer never crashes a worker or
comes back in the re-ask."""

from __future__ import annotations

import json
import random
import time
import tracemalloc

import pytest

from runtime.backends import run_sync
from runtime.backends.openai_backend import MAX_RESPONSE_BYTES, OpenAIBackend
from tests.llm_server.server import Faults, ScriptedPolicy, serve

HI = [{"role": "user", "content": "hi"}]


def ask(backend: OpenAIBackend):
    return run_sync(backend.complete(HI))


def warm(backend: OpenAIBackend) -> None:
    """One good call first: imports, client and connection are made outside what is measured."""
    assert ask(backend).ok


def test_a_huge_answer_is_a_recorded_failure_read_only_up_to_the_cap():
    # 20 MB, chunked (no Content-Length): the client must stop reading at 8 MiB by itself
    with serve(faults=Faults(plan=[None, "huge_body", None]), model="m") as srv:
        backend = OpenAIBackend(base_url=srv.base_url, model="m", max_retries=3)
        warm(backend)
        tracemalloc.start()
        try:
            c = ask(backend)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert not c.ok and c.error.startswith("response too large") and c.attempts == 1, c.error
        assert f"{MAX_RESPONSE_BYTES}-byte cap" in c.error
        assert peak < 2 * MAX_RESPONSE_BYTES, f"peak {peak / 2**20:.1f} MiB for an answer cut at 8 MiB"
        assert ask(backend).ok  # the connection pool is still usable
        assert len(srv.requests) == 3  # never retried: the same request would get the same


def test_a_content_length_over_the_cap_is_refused_before_reading(monkeypatch):
    big = ScriptedPolicy([{"role": "assistant", "content": "x" * 5000}])
    monkeypatch.setenv("EIGEN_MAX_RESPONSE_BYTES", "4096")  # the cap is configurable
    with serve(big, model="m") as srv:
        backend = OpenAIBackend(base_url=srv.base_url, model="m")
        assert backend.max_response_bytes == 4096
        c = ask(backend)
        assert not c.ok and "over the 4096-byte cap" in c.error and c.attempts == 1, c.error
        assert OpenAIBackend(base_url=srv.base_url, model="m", max_response_bytes=10_000).max_response_bytes == 10_000
        assert ask(OpenAIBackend(base_url=srv.base_url, model="m", max_response_bytes=10_000)).ok


def test_a_huge_retry_after_is_not_waited_for():
    with serve(faults=Faults(plan=[None, "429"], retry_after=86400), model="m") as srv:
        backend = OpenAIBackend(base_url=srv.base_url, model="m", max_retries=3)
        warm(backend)
        c = ask(backend)
    assert not c.ok and c.attempts == 1 and c.latency_s < 5, (c.error, c.latency_s)
    assert "HTTP 429" in c.error and "Retry-After 86400s is over the 60s cap" in c.error


def test_a_retry_after_under_the_cap_is_honoured():
    with serve(faults=Faults(plan=["429", None], retry_after=0.5), model="m") as srv:
        backend = OpenAIBackend(base_url=srv.base_url, model="m", max_retries=3, backoff=0.01)
        c = ask(backend)
    assert c.ok and c.attempts == 2 and c.latency_s >= 0.5


@pytest.mark.parametrize("fault", ["500", "hang"])
def test_one_request_has_a_total_deadline(fault):
    # endless 5xx with many retries, or a hang under a long request timeout: the deadline ends it
    with serve(faults=Faults(plan=[None] + [fault] * 50, hang_s=60), model="m") as srv:
        backend = OpenAIBackend(base_url=srv.base_url, model="m", max_retries=50, backoff=0.2, max_backoff=0.2,
                                request_timeout=30, deadline=1.0)
        warm(backend)
        c = ask(backend)
    assert not c.ok and c.latency_s < 2.0, (c.error, c.latency_s)
    assert "deadline" in c.error or "timeout" in c.error, c.error


# ---------------------------------------------------------------- through an LLM worker


@pytest.fixture(scope="module")
def pool_ctx():
    """A RandomPool worker's context on the mini domain (world built once)."""
    from runtime.exec.engine import Runner, RunSpec, _prompt_dirs
    from runtime.workers.base import WorkerContext
    from tests.helpers import ROOT

    runner = Runner(RunSpec(str(ROOT / "workflows" / "eigendata.yaml"), str(ROOT / "tests" / "fixtures" / "mini"),
                            0, 0.25))
    text = runner.plan.data["prompts"]["RandomPool.prompt"]["text"]

    def make():
        return WorkerContext(runner.domain, runner.env, runner.world, random.Random(7), "RandomPool", "RandomPool",
                             0, {}, {"prompt": text}, "openai")
    return make, _prompt_dirs(runner.spec, runner.plan)


def _pool(srv, dirs):
    from runtime.workers.llm.workers import llm_workers

    return llm_workers("openai", base_url=srv.base_url, model="m", max_retries=0, prompt_dirs=dirs)["RandomPool"]


def test_deeply_nested_answers_are_parse_failures_not_crashes(pool_ctx):
    from runtime.workers.base import WorkerError

    make, dirs = pool_ctx
    deep = '{"persona": ' * 100_000 + "1" + "}" * 100_000
    brackets = "[" * 100_000 + "]" * 100_000
    policy = ScriptedPolicy([{"role": "assistant", "content": deep}, {"role": "assistant", "content": brackets}])
    with serve(policy, model="m") as srv:
        pool = _pool(srv, dirs)
        with pytest.raises(WorkerError) as info:
            pool.run(make(), {})
    text = str(info.value)
    assert "unparseable ScenarioSeed" in text and "nested" in text, text
    assert pool.reasks == 1 and pool.reasks_failed == 1


def test_the_re_ask_never_echoes_an_oversized_answer(pool_ctx):
    make, dirs = pool_ctx
    junk = "I refuse. " * 200_000  # 2 MB, no JSON
    seed = {"persona": {"name": "Mia", "tone": "polite", "expertise": "novice", "constraints": []},
            "context": {}, "intent": "check_balance",
            "difficulty": {"level": "easy", "tool_calls": 1, "branching": 0, "ambiguity": 0.0, "error_prone": []}}
    policy = ScriptedPolicy([{"role": "assistant", "content": junk},
                             {"role": "assistant", "content": json.dumps(seed)}])
    with serve(policy, model="m") as srv:
        pool = _pool(srv, dirs)
        got = pool.run(make(), {})["ScenarioSeed"]
        echoed = srv.requests[1]["body"]["messages"][2]
    assert got["intent"] == "check_balance" and pool.reasks == 1
    assert echoed["role"] == "assistant" and len(echoed["content"]) < 5000
    assert echoed["content"].startswith("I refuse.") and echoed["content"].endswith("more characters cut]")
