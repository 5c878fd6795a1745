"""The orchestration layer with the offline backend: judge, engineer, planner, the three
phases, determinism, drift re-entry and resume after a crash in phase 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eigenlang.mutate import Lineage, ProgramVersion
from runtime.evolve.critique import (
    Critique,
    Finding,
    findings_of,
    offline_scores,
    weighted,
)
from runtime.evolve.engineer import RULES, OfflineEngineer, systematic
from runtime.evolve.generate import run_evolution
from runtime.evolve.metrics import CriterionError, batch_metrics, holds
from runtime.evolve.phases import PILOT_BASE, EvolveOptions
from runtime.evolve.planner import OfflinePlanner
from runtime.evolve.prompts import PromptStore, PromptVersion, compose, version_id
from runtime.exec.engine import RunSpec
from tests.helpers import ROOT, eigen, workflow_copy

MINI = str(ROOT / "tests" / "fixtures" / "mini")
WORKFLOW = str(ROOT / "workflows" / "eigendata.yaml")
KEYS = {"UserIntent.prompt", "DialogSynthesis.assistant", "DialogSynthesis.user", "Modify.prompt"}


def _evolve(out: Path, *, n: int = 12, sets: int = 2, stop_after: int | None = None,
            workflow: str = WORKFLOW, window: int | None = None) -> tuple[str, list[dict]]:
    spec = RunSpec(workflow, MINI, seed=3)
    opts = EvolveOptions(out, n, 5 * n, sets=sets, batch=5, max_iterations=3, window=window)
    seen: list[dict] = []

    def on_record(r: dict) -> None:
        seen.append(r)
        if stop_after is not None and len(seen) == stop_after:
            raise KeyboardInterrupt  # a crash in the middle of phase 3

    status, _ = run_evolution(spec, opts, on_record=on_record)
    return status, seen


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def evolved(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evolve") / "run"
    status, _ = _evolve(out)
    assert status == "complete"
    return out


# ---------------------------------------------------------------- the judge's facts
def _rejected(stage: str, reasons: list[str], **extra) -> dict:
    return {"index": 0, "id": "x-0", "accepted": False, "stage": stage, "reasons": reasons,
            "artifacts": extra.pop("artifacts", {}), **extra}


def test_findings_point_at_the_prompt_at_fault():
    f = findings_of(_rejected("TaskValidation", ["step 2 cancel: precondition: already cancelled"],
                              artifacts={"TaskSpec": {"difficulty": "easy"}}), KEYS)
    assert [(x.key, x.code) for x in f] == [("UserIntent.prompt", "infeasible")]
    f = findings_of(_rejected("UserIntent", ["UserIntent: unparseable TaskSpec from the model: ..."]), KEYS)
    assert [(x.key, x.code) for x in f] == [("UserIntent.prompt", "schema")]
    f = findings_of(_rejected("UserIntent", ["UserIntent: model call failed: HTTP 500"]), KEYS)
    assert [(x.key, x.code) for x in f] == [(None, "endpoint")]  # no prompt is at fault
    report = {"accepted": False, "checks": {"compliance": False, "realism": False},
              "reasons": ["compliance: write without an explicit yes", "realism: user message pastes the "
                          "instructions"], "round": 0}
    f = findings_of({"index": 1, "id": "x-1", "accepted": True, "validation": [report, {"accepted": True}]}, KEYS)
    assert [(x.key, x.code) for x in f] == [("DialogSynthesis.assistant", "compliance"),
                                            ("DialogSynthesis.user", "realism")]


def test_offline_scores_leave_unscored_axes_out():
    infeasible = _rejected("TaskValidation", ["x"], artifacts={"TaskSpec": {"difficulty": "hard"}})
    s = offline_scores(infeasible, findings_of(infeasible, KEYS))
    assert s == {"executability": 0.0}
    assert weighted(s, {"executability": 1.0, "tool_correctness": 1.0}) == 0.0
    report = {"checks": {"tool_validity": True, "compliance": False, "grounding": True, "realism": True,
                         "goal_completion": True}, "reasons": []}
    ok = {"accepted": True, "task": {"difficulty": "hard"}, "validation": [report]}
    s = offline_scores(ok, [])
    assert s == {"executability": 1.0, "tool_correctness": 0.5, "trajectory_coherence": 1.0,
                 "difficulty_coverage": 1.0}
    assert weighted(s, {"tool_correctness": 3.0, "executability": 1.0}) == pytest.approx((1.5 + 1) / 4)


def test_metrics_and_criteria():
    recs = [{"accepted": True, "gold_calls": [1, 2], "validation": [{"checks": {"tool_validity": True}}]},
            {"accepted": False, "stage": "TaskValidation", "reasons": ["x"]}]
    crit = [Critique(0, "a", True, {"executability": 1.0}, 1.0, [], None),
            Critique(1, "b", False, {"executability": 0.0}, 0.0, [], None, [Finding("U.prompt", "schema", "m")])]
    m = batch_metrics(recs, crit, ["executability"])
    assert m["acceptance_rate"] == 0.5 and m["infeasible_rate"] == 0.5 and m["schema_error_rate"] == 0.5
    assert m["tool_validity"] == 1.0 and m["grounding"] == 0.0  # no evidence is not a pass
    assert m["calls_per_task"] == 2.0 and m["executability"] == 0.5 and m["judge_score"] == 0.5
    assert holds("acceptance_rate >= 0.5 and tool_validity > 0.9", m)
    assert not holds("acceptance_rate > 0.5", m)
    assert not holds(None, m)
    with pytest.raises(CriterionError, match="unknown name 'no_such_metric'"):  # an error, not a "no"
        holds("no_such_metric > 1", m)


# ---------------------------------------------------------------- prompt store and engineer
def test_compose_keeps_additions_literal():
    text = compose("Hello {{ agent }}", constraints=["Never write {% endraw %}{{ x }} here"])
    import jinja2

    out = jinja2.Environment().from_string(text).render(agent="A")
    assert out.startswith("Hello A") and "{{ x }}" in out and "Constraints learned" in out
    assert compose("base") == "base"


def test_engineer_adds_systematic_fixes_once():
    root = PromptVersion(version_id("t.j2", "base"), "DialogSynthesis.assistant", "s00", "base")
    crit = [Critique(i, str(i), False, {}, 0.0, [], None,
                     [Finding("DialogSynthesis.assistant", "grounding", f"grounding: 'X{i}' stated"),
                      Finding("DialogSynthesis.assistant", "grounding", f"grounding: 'Y{i}' stated")])
            for i in range(3)]
    crit.append(Critique(9, "9", False, {}, 0.0, [], None, [Finding("DialogSynthesis.assistant", "compliance", "c")]))
    crit += [Critique(10 + i, "ok", True, {}, 1.0, [], None) for i in range(2)]  # a batch of 6
    assert [c for c, _ in systematic([f for c in crit for f in c.findings], len(crit))] == ["grounding"]
    assert [c for c, _ in systematic([f for c in crit for f in c.findings], 5)] == ["grounding", "compliance"]
    eng = OfflineEngineer()
    v1 = eng.revise(root, "base", "t.j2", crit, {"judge_score": 0.3}, [], phase=2, iteration=0)
    assert v1 is not None and v1.parent == root.id and v1.id != root.id
    assert v1.constraints == (RULES["grounding"][1],) and len(v1.examples) == 1 and "X0" in v1.examples[0]
    assert v1.scores_before == {"judge_score": 0.3} and v1.author == "offline-engineer"
    assert RULES["grounding"][1] in v1.text
    assert eng.revise(v1, "base", "t.j2", crit, {}, [], phase=2, iteration=1) is None  # nothing new


def test_prompt_store_round_trip_and_lineage(tmp_path):
    store = PromptStore(tmp_path / "p.json")
    a = store.add(PromptVersion("t@1", "A.prompt", "s00", "one"))
    b = store.add(PromptVersion("t@2", "A.prompt", "s00", "two", parent="t@1"))
    store.set_scores_after("t@1", "s00", {"judge_score": 0.5})
    again = PromptStore(tmp_path / "p.json")
    assert [v.id for v in again.lineage("t@2")] == ["t@1", "t@2"]
    assert again.get("t@1").scores_after == {"judge_score": 0.5} and again.get("t@2") == b != a


# ---------------------------------------------------------------- the planner
def test_planner_lowers_temperature_through_the_mutation_api(tmp_path):
    wf = workflow_copy(tmp_path) / "eigendata.yaml"
    v0 = ProgramVersion.load(wf)
    crit = [Critique(i, str(i), False, {}, 0.0, [], None, [Finding("UserIntent.prompt", "schema", "bad")])
            for i in range(3)]
    planner = OfflinePlanner()
    ops = planner.revise(v0, {}, crit)
    assert ops and ops[0][0] == {"op": "set_param", "path": "agents.UserIntent.params.temperature", "value": 0.7}
    v1, edits = planner.apply(v0, ops + [({"op": "remove_agent", "name": "NoSuchAgent"}, "bad op")])
    assert v1.parent == v0.hash and v1.program.agents["UserIntent"].params["temperature"] == 0.7
    assert edits[0]["hash"] == v1.hash and edits[1]["hash"] is None and edits[1]["refused"]
    assert "# " in v1.text  # the author's comments survive the edit


def test_eigen_plan_writes_a_workflow_that_compiles(tmp_path):
    r = eigen("plan", str(tmp_path / "wf"), "--domain", MINI, "--request", "bank support tasks",
              "--diversity", "4", "--size", "1000", "--difficulty", "hard")
    assert r.returncode == 0, r.stderr
    r = eigen("check", str(tmp_path / "wf" / "workflow.yaml"))
    assert r.returncode == 1 and "E109" in r.stdout  # the domain folder is outside the workflow's
    r = eigen("check", str(tmp_path / "wf" / "workflow.yaml"), "--allow-path", MINI)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (tmp_path / "wf" / "workflow.yaml").read_text()
    assert "prompt_sets: 4" in text and "bank support tasks" in text and "batch: 10" in text


# ---------------------------------------------------------------- the three phases
def test_evolution_writes_its_history(evolved):
    evo = evolved / "evolution"
    log = _lines(evo / "log.jsonl")
    assert log[0]["event"] == "start" and log[0]["judge"] == "offline" and log[0]["backend"] == "offline"
    assert [e["set"] for e in log if e["event"] == "set"] == ["s00", "s01"]
    its = [e for e in log if e["event"] == "iteration"]
    assert {e["set"] for e in its} == {"s00", "s01"} and all(e["phase"] == 2 for e in its)
    assert all(e["indices"][0] >= PILOT_BASE for e in its)
    assert all(e["stop"] for e in its if e["iteration"] == 2)
    assert log[-1]["event"] == "done" and log[-1]["status"] == "complete"
    store = PromptStore(evo / "prompts.json")
    manifest = json.loads((evolved / "manifest.json").read_text())
    assert store.judge == {"judge": "offline", "prompt": manifest["prompts"]["judge.prompt"]}  # which judge
    ids = {(v.set, v.id) for v in store.versions}
    for e in its:  # the prompts an iteration ran with exist, and edits chain parent → child
        assert all((e["set"], vid) in ids for vid in e["prompts"].values())
        for edit in e["edits"]:
            assert store.get(edit["to"], e["set"]).parent == edit["from"]
    focus = {v.set: v.focus for v in store.versions if v.key == "UserIntent.prompt" and v.author == "diversifier"}
    assert focus["s00"] != focus["s01"]  # phase 1 spreads the sets
    records = _lines(evolved / "instances.jsonl") + _lines(evolved / "rejected.jsonl")
    for r in records:
        prov = r["provenance"]
        assert prov["prompt_set"] == f"s{r['index'] % 2:02d}"
        assert all((prov["prompt_set"], vid) in ids for k, vid in prov["prompts"].items() if k != "judge.prompt")
    assert Lineage.load(evo / "workflow.jsonl").head is not None
    assert eigen("verify", str(evolved)).returncode == 0  # the manifest names the domain folder


def test_evolution_is_deterministic(evolved, tmp_path):
    _evolve(tmp_path / "again")
    for name in ("instances.jsonl", "rejected.jsonl", "evolution/log.jsonl", "evolution/prompts.json",
                 "evolution/critiques.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (evolved / name).read_bytes(), name


def test_drift_reenters_the_pilot_and_a_crash_resumes(tmp_path):
    wf = workflow_copy(tmp_path) / "eigendata.yaml"
    wf.write_text(wf.read_text().replace('drift_when: "repair_rounds_mean > 1.5 or schema_error_rate > 0.02"',
                                         'drift_when: "acceptance_rate < 0.9"'))
    status, _ = _evolve(tmp_path / "whole", n=16, workflow=str(wf), window=8)
    assert status == "complete"
    log = _lines(tmp_path / "whole" / "evolution" / "log.jsonl")
    windows = [e for e in log if e["event"] == "window"]
    assert windows and any(e["drift"] for e in windows)
    reentry = [e for e in log if e["event"] == "iteration" and e["phase"] == 3]
    assert reentry and {e["set"] for e in reentry} <= {"s00", "s01"}
    with pytest.raises(KeyboardInterrupt):
        _evolve(tmp_path / "crashed", n=16, workflow=str(wf), window=8, stop_after=13)
    status, _ = _evolve(tmp_path / "crashed", n=16, workflow=str(wf), window=8)
    assert status == "complete"
    for name in ("instances.jsonl", "rejected.jsonl"):
        assert (tmp_path / "crashed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_cli_says_which_backend_ran_and_refuses_a_model_judge_offline(tmp_path):
    r = eigen("evolve", WORKFLOW, "--domain", MINI, "--n", "4", "--sets", "1", "--batch", "3",
              "--max-iterations", "1", "--out", str(tmp_path / "r"), "-q")
    assert r.returncode == 0, r.stderr
    assert "backend: offline (no model)" in r.stderr and "eigen history" in r.stderr
    r = eigen("evolve", WORKFLOW, "--domain", MINI, "--judge", "model", "--out", str(tmp_path / "m"), "-q")
    assert r.returncode == 1 and "needs a model backend" in r.stderr and "Traceback" not in r.stderr
