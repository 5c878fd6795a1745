"""LLM workers: the answer parser on messy text, and whole runs through a real
OpenAI-compatible HTTP server (tests/llm_server) answering as a competent model, with and
without injected faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.workers.llm.parse import ParseError, extract_object, parse_artifact
from tests.helpers import eigen
from tests.llm_server.policies import CompetentPolicy
from tests.llm_server.server import FAULTS, Faults, serve

FEAS = {"feasible": True, "reasons": [], "path": []}


@pytest.mark.parametrize("text", [
    '{"feasible": true, "reasons": [], "path": []}',
    'Sure! Here it is:\n```json\n{"feasible": true, "reasons": [], "path": []}\n```\nHope that helps.',
    '```\n{"feasible": true, "reasons": [], "path": [],}\n```',
    '{"feasible": true, "reasons": [], "path": []} I checked every tool call.',
    "{'feasible': True, 'reasons': [], 'path': [],}",
    "Answer: {'feasible': true, \"reasons\": [], 'path': []}",
])
def test_parser_accepts_messy_answers(text):
    assert parse_artifact(text, "Feasibility") == FEAS


def test_parser_fills_forces_and_drops():
    got = parse_artifact('{"feasible": false, "reasons": ["x"], "extra": 1}', "Feasibility",
                         defaults={"path": []}, forced={"reasons": ["forced"]})
    assert got == {"feasible": False, "reasons": ["forced"], "path": []}


@pytest.mark.parametrize("text, needle", [
    ("", "no text"),
    ("I cannot help with that.", "no JSON object"),
    ('{"persona": {"name": "Mia", "tone": "polite"', "never close"),
    ("[1, 2, 3]", "not an object"),
    ('{"feasible": "yes", "reasons": []}', "Feasibility: feasible"),
    ('{"reasons": []}', "'feasible' is missing"),
])
def test_parser_says_what_is_wrong(text, needle):
    with pytest.raises(ParseError) as info:
        parse_artifact(text, "Feasibility")
    assert needle in str(info.value)


def test_parser_never_evaluates_code():
    with pytest.raises(ParseError):
        extract_object("{'a': __import__('os').getcwd()}")


def _run(tmp_path: Path, name: str, faults: Faults | None = None, n: int = 3) -> tuple[int, str, Path, list]:
    out = tmp_path / name
    policy = CompetentPolicy("retail", 0, 0.1)
    with serve(policy, faults=faults or Faults()) as srv:
        r = eigen("run", "workflows/eigendata.yaml", "--backend", "openai", "--base-url", srv.base_url,
                  "--model", "scripted", "--n", str(n), "--size", "0.1", "--domain", "retail", "--out", str(out),
                  "-q", "--request-timeout", "1", "--max-retries", "3", "--max-attempts", "30")
        faults_seen = [q["fault"] for q in srv.requests]
    return r.returncode, r.stderr, out, faults_seen


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_run_through_openai_endpoint_verifies(tmp_path):
    rc, err, out, _ = _run(tmp_path, "clean")
    assert rc == 0, err
    assert "backend: openai, model scripted" in err
    accepted = _records(out / "instances.jsonl")
    assert len(accepted) == 3
    for r in accepted:
        assert r["provenance"]["backend"] == "openai" and r["provenance"]["model"] == "scripted"
        tokens = r["provenance"]["tokens"]
        assert tokens["calls"] >= 5 and tokens["total_tokens"] > 0 and tokens["failed"] == 0
        roles = [m["role"] for m in r["messages"]]
        assert roles[0] == "system" and "customer-service agent" in r["messages"][0]["content"]
        assert "tool" in roles and r["turns"] >= 2
        assert [c["name"] for c in r["calls"] if c["ok"]] == [c["name"] for c in r["gold_calls"]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"] == "openai" and manifest["model"] == "scripted"
    v = eigen("verify", str(out))
    assert v.returncode == 0, v.stdout + v.stderr


def test_fault_run_loses_and_duplicates_nothing(tmp_path):
    # every kind at least once (the plan, one fault every third request), then 20% drawn
    plan = [x for f in FAULTS for x in (f, None, None)]
    faults = Faults(rates={f: 0.2 / len(FAULTS) for f in FAULTS}, plan=plan, seed=1, hang_s=5.0)
    rc, err, out, seen = _run(tmp_path, "faults", faults)
    assert rc == 0, err
    assert {f for f in seen if f} == set(FAULTS)
    accepted, rejected = _records(out / "instances.jsonl"), _records(out / "rejected.jsonl")
    assert len(accepted) == 3
    indices = sorted(r["index"] for r in accepted + rejected)
    assert indices == list(range(len(indices)))  # every index tried exactly once
    for r in rejected:
        assert r["reasons"] and all(isinstance(x, str) and x for x in r["reasons"]), r
        assert r["stage"] in r["trace"]
    absorbed = sum(r["provenance"]["tokens"]["attempts"] - r["provenance"]["tokens"]["calls"]
                   for r in accepted + rejected)
    assert absorbed > 0  # retries absorbed some 5xx / 429 / hangs
    v = eigen("verify", str(out))
    assert v.returncode == 0, v.stdout + v.stderr


# ---------------------------------------------------------------- re-asking an unparseable answer

SEED_JSON = json.dumps({"persona": {"name": "Mia", "tone": "polite", "expertise": "novice", "constraints": []},
                        "context": {"user_id": "u1"}, "intent": "cancel_order",
                        "difficulty": {"level": "easy", "tool_calls": 2, "branching": 0, "ambiguity": 0.0,
                                       "error_prone": []}})


class Scripted:
    """A backend answering from a list, recording what it was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers, self.requests = list(answers), []

    async def complete(self, messages, tools=None, **kw):
        from runtime.backends import Completion

        self.requests.append({"messages": json.loads(json.dumps(messages)), **kw})
        return Completion({"role": "assistant", "content": self.answers.pop(0)})


@pytest.fixture(scope="module")
def offline_runner():
    from runtime.exec.engine import Runner, RunSpec
    from tests.helpers import ROOT

    return Runner(RunSpec(str(ROOT / "workflows" / "eigendata.yaml"), "retail", 0, 0.1))


def _pool(runner, backend, rng_seed: int = 7):
    import random

    from runtime.exec.engine import _prompt_dirs
    from runtime.workers.base import WorkerContext
    from runtime.workers.llm.workers import LLMRandomPool

    text = runner.plan.data["prompts"]["RandomPool.prompt"]["text"]
    ctx = WorkerContext(runner.domain, runner.env, runner.world, random.Random(rng_seed), "RandomPool",
                        "RandomPool", 0, {}, {"prompt": text}, "openai")
    return LLMRandomPool(backend, _prompt_dirs(runner.spec, runner.plan)), ctx


def test_an_unparseable_answer_is_re_asked_once(offline_runner):
    backend = Scripted('{"persona": {"name": "Mia", "tone"', SEED_JSON)
    worker, ctx = _pool(offline_runner, backend)
    got = worker.run(ctx, {})["ScenarioSeed"]
    assert got["intent"] == "cancel_order" and got["context"] == {"user_id": "u1"}
    assert worker.reasks == 1 and worker.reasks_failed == 0
    first, second = backend.requests
    # the re-ask continues the conversation: the bad answer, then what was wrong with it
    assert second["messages"][:2] == first["messages"]
    assert second["messages"][2] == {"role": "assistant", "content": '{"persona": {"name": "Mia", "tone"'}
    followup = second["messages"][3]
    assert followup["role"] == "user" and "could not be used" in followup["content"]
    assert "never close" in followup["content"]  # the ParseError's own words
    assert followup["content"].endswith("Answer with the ScenarioSeed JSON object only.")
    assert second["response_format"] == {"type": "json_object"}
    # the re-ask's sampling seed comes from ctx.rng: the same rng gives the same requests
    again = Scripted('{"persona": {"name": "Mia", "tone"', SEED_JSON)
    worker2, ctx2 = _pool(offline_runner, again)
    worker2.run(ctx2, {})
    assert [r["seed"] for r in again.requests] == [r["seed"] for r in backend.requests]
    assert first["seed"] != second["seed"]


def test_a_second_unparseable_answer_names_both_failures(offline_runner):
    from runtime.workers.base import WorkerError

    backend = Scripted("I would rather not.", '{"intent": "x"}')
    worker, ctx = _pool(offline_runner, backend)
    with pytest.raises(WorkerError) as info:
        worker.run(ctx, {})
    text = str(info.value)
    assert "unparseable ScenarioSeed" in text and "re-ask" in text
    assert "no JSON object" in text  # the first answer's problem
    assert "'persona' is missing" in text  # the second's
    assert len(backend.requests) == 2 and worker.reasks == 1 and worker.reasks_failed == 1


def test_re_asks_are_written_into_the_record(offline_runner):
    from runtime.exec.engine import _prompt_dirs
    from runtime.workers.llm.workers import LLMRandomPool

    runner, real = offline_runner, offline_runner.workers["RandomPool"]
    dirs = _prompt_dirs(runner.spec, runner.plan)
    try:
        runner.workers["RandomPool"] = LLMRandomPool(Scripted('{"persona": {"name": "Mia", "tone"', SEED_JSON), dirs)
        assert runner.run(0)["provenance"]["reasks"] == {"RandomPool": {"asked": 1, "failed": 0}}
        runner.workers["RandomPool"] = LLMRandomPool(Scripted("I would rather not.", "No."), dirs)
        record = runner.run(1)
        assert not record["accepted"] and record["stage"] == "RandomPool" and "crash" not in record
        assert record["provenance"]["reasks"] == {"RandomPool": {"asked": 1, "failed": 1}}
        runner.workers["RandomPool"] = LLMRandomPool(Scripted(SEED_JSON), dirs)
        assert "reasks" not in runner.run(2)["provenance"]  # nothing re-asked: nothing written
    finally:
        runner.workers["RandomPool"] = real


def test_a_good_first_answer_is_not_re_asked(offline_runner):
    backend = Scripted(SEED_JSON)
    worker, ctx = _pool(offline_runner, backend)
    worker.run(ctx, {})
    assert len(backend.requests) == 1 and worker.reasks == 0


def test_a_truncated_answer_over_http_is_re_asked(offline_runner):
    # a real endpoint: the first answer comes back cut in half, the re-ask gets a whole seed
    from runtime.workers.llm.workers import llm_workers

    with serve(CompetentPolicy("retail", 0, 0.1), faults=Faults(plan=["truncated"])) as srv:
        local, ctx = _pool(offline_runner, None)
        pool = llm_workers("openai", base_url=srv.base_url, model="scripted", max_retries=0,
                           prompt_dirs=local.dirs)["RandomPool"]
        seed = pool.run(ctx, {})["ScenarioSeed"]
        requests = [q["body"] for q in srv.requests]
    assert [q["fault"] for q in srv.requests] == ["truncated", None]
    assert seed["intent"] and seed["context"] and pool.reasks == 1
    followup = requests[1]["messages"][-1]["content"]
    assert "could not be used" in followup and "ScenarioSeed" in followup
    assert requests[1]["messages"][:2] == requests[0]["messages"]
