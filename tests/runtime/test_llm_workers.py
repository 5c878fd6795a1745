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
