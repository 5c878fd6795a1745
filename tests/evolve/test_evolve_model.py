"""`eigen evolve` end to end against the OpenAI-compatible test server, answered by a scripted
model (tests/llm_server/policies.LearnerPolicy) that makes realistic mistakes until its prompts
carry the constraints the prompt engineer writes. The pilot's acceptance rate and judge score
must rise, the engineer's constraints must be in the prompt versions the dataset was made with,
and the dataset must name those versions and verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.evolve.engineer import RULES
from tests.helpers import ROOT, eigen
from tests.llm_server.policies import LESSONS, LearnerPolicy, knows
from tests.llm_server.server import serve

N = 6  # phase 3: accepted instances (3 per prompt set)
LEARNED_BY = {"argument_names": "DialogSynthesis.assistant", "whole_request": "DialogSynthesis.assistant",
              "confirmation": "DialogSynthesis.assistant", "preconditions": "UserIntent.prompt"}


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _evolve(out: Path, *extra: str) -> Path:
    with serve(LearnerPolicy("retail", 0, 0.1), model="scripted") as srv:
        r = eigen("evolve", "workflows/eigendata.yaml", "--domain", "retail", "--size", "0.1", "--n", str(N),
                  "--sets", "2", "--batch", "6", "--max-iterations", "4", "--out", str(out), "-q",
                  "--backend", "openai", "--base-url", srv.base_url, "--model", "scripted", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.fixture(scope="module")
def model_run(tmp_path_factory) -> Path:
    return _evolve(tmp_path_factory.mktemp("evolve-model") / "run")  # judge, engineer, planner: auto


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory) -> Path:
    return _evolve(tmp_path_factory.mktemp("evolve-offline") / "run", "--judge", "offline", "--engineer", "offline")


def _pilot(out: Path) -> dict[str, list[dict]]:
    """Phase-2 iteration events by set, in iteration order."""
    by_set: dict[str, list[dict]] = {}
    for e in _lines(out / "evolution" / "log.jsonl"):
        if e["event"] == "iteration" and e["phase"] == 2:
            by_set.setdefault(e["set"], []).append(e)
    return {s: sorted(es, key=lambda e: e["iteration"]) for s, es in sorted(by_set.items())}


def _versions(out: Path) -> dict[tuple[str, str], dict]:
    """(id, set) → prompt version."""
    data = json.loads((out / "evolution" / "prompts.json").read_text())
    return {(v["id"], v["set"]): v for v in data["versions"]}


# ---------------------------------------------------------------- the learner's premise


def test_lessons_come_from_the_engineer_rules_not_the_base_prompts():
    # the learner cannot know a lesson before an engineer writes it into its prompt
    base = "\n".join((ROOT / "workflows" / "prompts" / f).read_text()
                     for f in ("_domain.j2", "trajectory_agent.j2", "user_intent.j2"))
    base += (ROOT / "domains" / "retail" / "policy.md").read_text()
    for lesson, (code, _) in LESSONS.items():
        assert knows(RULES[code][1], lesson), lesson
        assert not knows(base, lesson), lesson


def _judge_ask(findings: list[str]) -> str:
    return ("Validator findings (facts, already checked by executing the tools):\n"
            + ("\n".join(findings) or "- none") + "\n\n"
            'Its shape: {"scores": {"executability": 0.0, "tool_correctness": 0.0, '
            '"trajectory_coherence": 0.0, "difficulty_coverage": 0.0}, "reasons": ["..."]}. '
            "Answer with the Critique JSON object only.")


def test_scripted_judge_marks_down_the_listed_findings():
    policy = LearnerPolicy.__new__(LearnerPolicy)  # the judge needs no world
    got = policy.critique("Task: x\nDialogue:\n[user] hi", _judge_ask([
        "- [compliance] DialogSynthesis.assistant: compliance: confirm_before_write: ...",
        "- [goal_completion] DialogSynthesis.assistant: goal_completion: another state"]))
    assert got["scores"] == {"executability": 1.0, "tool_correctness": 0.5, "trajectory_coherence": 0.5}
    assert got["at_fault"] == "DialogSynthesis.assistant"
    got = policy.critique("Task: x\n", _judge_ask(["- [infeasible] UserIntent.prompt: step 4 cancel: ..."]))
    assert got["scores"] == {"executability": 0.0} and got["at_fault"] == "UserIntent.prompt"
    clean = policy.critique("Task: x\nDialogue:\n[user] hi", _judge_ask([]))
    assert set(clean["scores"].values()) == {1.0} and clean["at_fault"] is None


# ---------------------------------------------------------------- the runs


def _assert_improves(out: Path) -> None:
    pilot = _pilot(out)
    assert sorted(pilot) == ["s00", "s01"]
    for name, events in pilot.items():
        assert 2 <= len(events) <= 4, name
        first, last = events[0]["metrics"], events[-1]["metrics"]
        assert first["acceptance_rate"] <= 0.2, (name, first)  # the learner starts bad
        assert last["acceptance_rate"] >= first["acceptance_rate"] + 0.5, (name, first, last)
        assert last["judge_score"] >= first["judge_score"] + 0.3, (name, first, last)
        assert events[-1]["stop"] == "stop_when holds", (name, events[-1]["stop"])
        assert events[0]["edits"], name  # the improvement came from prompt edits


def _assert_learned(out: Path, author: str) -> None:
    versions = _versions(out)
    pilot = _pilot(out)
    for name, events in pilot.items():
        used_first, used_last = events[0]["prompts"], events[-1]["prompts"]
        for lesson, key in LEARNED_BY.items():
            before, after = versions[(used_first[key], name)], versions[(used_last[key], name)]
            assert not knows(before["text"], lesson), (name, lesson)
            assert knows(after["text"], lesson), (name, lesson)
            # the lesson was added by the engineer under test, with the rule's own text
            taught = after  # walk back to the first version that knows it
            while taught["parent"] and knows(versions[(taught["parent"], name)]["text"], lesson):
                taught = versions[(taught["parent"], name)]
            assert taught["author"] == author and taught["phase"] == 2, (name, lesson, taught["author"])
            assert RULES[LESSONS[lesson][0]][1] in taught["constraints"], (name, lesson)
    edits = [e for es in pilot.values() for ev in es for e in ev["edits"]]
    assert edits and all(any(v["author"] == author for (vid, _), v in versions.items() if vid == e["to"])
                         for e in edits)


def _assert_dataset(out: Path) -> None:
    versions = _versions(out)
    state = json.loads((out / "evolution" / "state.json").read_text())
    records = _lines(out / "instances.jsonl") + _lines(out / "rejected.jsonl")
    assert len(_lines(out / "instances.jsonl")) == N
    for r in records:
        prov = r["provenance"]
        name = prov["prompt_set"]
        assert name in state["sets"], name
        for key, vid in prov["prompts"].items():
            if key == "judge.prompt":  # judges the data, does not make it: not a versioned prompt
                continue
            assert (vid, name) in versions, (r["index"], key, vid)
            assert state["sets"][name][key] == vid, (r["index"], key)  # the evolved prompts made it
    assert {r["provenance"]["prompt_set"] for r in records} == {"s00", "s01"}
    v = eigen("verify", str(out))
    assert v.returncode == 0, v.stdout + v.stderr


def test_model_judge_and_engineer_make_the_learner_better(model_run):
    start = _lines(model_run / "evolution" / "log.jsonl")[0]
    assert start["event"] == "start"
    assert all(start[r].startswith("model") for r in ("judge", "engineer", "planner")), start
    critiques = [c for c in _lines(model_run / "evolution" / "critiques.jsonl") if c["phase"] == 2]
    assert critiques and all(c["judge"] == "model" for c in critiques)  # answers read, no fallback
    judge = json.loads((model_run / "evolution" / "prompts.json").read_text())["judge"]
    manifest = json.loads((model_run / "manifest.json").read_text())
    assert judge == {"judge": "model", "prompt": manifest["prompts"]["judge.prompt"]} and judge["prompt"]
    _assert_improves(model_run)
    _assert_learned(model_run, "model-engineer")
    focus = [v for v in _versions(model_run).values() if v["phase"] == 1]
    assert focus and all(v["author"] == "model-diversifier" for v in focus)
    _assert_dataset(model_run)


def test_offline_judge_and_engineer_make_the_learner_better(offline_run):
    start = _lines(offline_run / "evolution" / "log.jsonl")[0]
    assert start["judge"].startswith("offline") and start["engineer"].startswith("offline"), start
    critiques = [c for c in _lines(offline_run / "evolution" / "critiques.jsonl") if c["phase"] == 2]
    assert critiques and all(c["judge"] == "offline" for c in critiques)
    _assert_improves(offline_run)
    _assert_learned(offline_run, "offline-engineer")
    _assert_dataset(offline_run)
