"""The workflow planner is untrusted (issue 16): a model's ops name no file, keep the domain, and
whatever the endpoint answers, the run goes on with the refusals recorded. Ends with the whole
attack chain against `eigen evolve --planner model` and a hostile OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from eigenlang.mutate import ProgramVersion, SetParam, apply
from runtime.evolve.planner import ModelPlanner, recorded
from tests.helpers import ROOT, eigen
from tests.llm_server.policies import LearnerPolicy
from tests.llm_server.server import serve

DEEP = "[" * 100_000 + "]" * 100_000  # deeper than any parser's recursion


def _answer(text: str):
    return lambda messages: SimpleNamespace(ok=True, content=text)


def _nested(levels: int, leaf=1):
    for _ in range(levels):
        leaf = [leaf]
    return leaf


# ---------------------------------------------------------------- the model planner alone


@pytest.mark.parametrize("text", [
    '{"ops": ' + DEEP + "}",
    DEEP,
    '{"ops": [{"op": "set_param", "path": "agents.UserIntent.params.x", "value": ' + json.dumps(_nested(500)) + "}]}",
    '{"ops": [' + json.dumps(_nested(200)) + ', 7, "x", null], "reason": ' + json.dumps(_nested(300)) + "}",
    "no JSON at all",
])
def test_no_answer_makes_the_planner_raise(wf, text):
    v0 = ProgramVersion.load(wf)
    planner = ModelPlanner(_answer(text))
    ops = planner.revise(v0, {"acceptance_rate": 0.5}, [])
    new, edits = planner.apply(v0, ops)
    assert new.hash == v0.hash  # nothing applied
    assert edits and all(e["hash"] is None and e["refused"] for e in edits)
    json.dumps(edits)  # the record stays writable: no op nested past the limit is kept whole
    assert all(len(json.dumps(e["op"])) < 2100 for e in edits)


def test_model_ops_name_no_file_and_keep_the_domain(wf, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("API_KEY=sk-very-secret\n")
    (wf.parent / "prompts" / "extra.j2").write_text("Seed {{ seed }}\n")  # inside the folder, unused
    ops = [{"op": "set_prompt", "agent": "UserIntent", "role": "prompt", "path": str(secret)},
           {"op": "set_prompt", "agent": "UserIntent", "role": "prompt", "path": "prompts/extra.j2"},
           {"op": "set_param", "path": "domain", "value": "retail"},
           {"op": "set_param", "path": "agents.UserIntent.prompt", "value": "prompts/extra.j2"},
           {"op": "set_param", "path": "judge", "value": {"prompt": "prompts/extra.j2", "axes": {"executability": 1.0}}},
           {"op": "add_agent", "name": "Probe", "after": "RandomPool", "before": "UserIntent",
            "agent": {"worker": "RandomPool", "prompt": "prompts/extra.j2", "out": "ScenarioSeed"}},
           {"op": "replace_agent", "name": "RandomPool",
            "agent": {"prompt": "prompts/extra.j2", "out": "ScenarioSeed"}}]
    v0 = ProgramVersion.load(wf)
    for op in ops:
        got = apply(v0, op, "model", origin="model")
        assert isinstance(got, list) and {d.code for d in got} == {"E602"}, (op, got)
    # the same ops from a person: files inside the folder are fine, the secret outside is not
    assert [d.code for d in apply(v0, ops[0], "author")] == ["E109"]
    for op in ops[1:]:
        assert isinstance(apply(v0, op, "author"), ProgramVersion), op
    # a model may edit the flow and settings, and reuse a template the program already has
    fine = [{"op": "set_param", "path": "agents.UserIntent.params.temperature", "value": 0.5},
            {"op": "add_agent", "name": "Probe", "after": "RandomPool", "before": "UserIntent",
             "agent": {"worker": "RandomPool", "prompt": "prompts/random_pool.j2", "out": "ScenarioSeed"}}]
    for op in fine:
        assert isinstance(apply(v0, op, "model", origin="model"), ProgramVersion), op
    planner = ModelPlanner(_answer(json.dumps({"ops": ops[:2] + fine[:1], "reason": "better data"})))
    new, edits = planner.apply(v0, planner.revise(v0, {}, []))
    assert [bool(e["hash"]) for e in edits] == [False, False, True]
    assert "E602" in edits[0]["refused"][0] and new.program.agents["UserIntent"].prompt == "prompts/user_intent.j2"


@pytest.mark.parametrize("value", [
    _nested(200), {"a": _nested(40)}, float("nan"), float("inf"), {1: 2}, {(1, 2): 3}, {1, 2}, b"bytes",
    object(), 10**100, "\ud800", [float("-inf")], {"k": Path("/etc/passwd")},
])
def test_apply_never_raises_on_odd_values(wf, value):
    v0 = ProgramVersion.load(wf)
    for op in ({"op": "set_param", "path": "agents.UserIntent.params.x", "value": value},
               SetParam(path="agents.UserIntent.params.x", value=value),
               {"op": "add_agent", "name": "X", "agent": {"worker": "RandomPool", "params": {"v": value}}}):
        got = apply(v0, op, "odd")
        assert isinstance(got, list) and got and all(d.code == "E601" for d in got), (value, got)
        assert isinstance(apply(v0, op, "odd", origin="model"), list)


def test_recorded_ops_stay_small():
    assert recorded({"op": "set_param", "path": "a", "value": 1}) == {"op": "set_param", "path": "a", "value": 1}
    assert recorded({"op": "set_param", "value": _nested(100)})["op"] == "set_param"
    assert recorded(_nested(5000)) == {"op": "?", "given": "a list of 1 entries, not shown"}
    assert recorded({"op": "x" * 100, "v": "y" * 5000})["op"] == "?"


# ---------------------------------------------------------------- `eigen mutate` writes last


@pytest.mark.parametrize("bad", ["malformed", "other_program", "directory", "missing_folder"])
def test_mutate_checks_the_lineage_before_writing(wf, tmp_path, bad, cli):
    lineage = tmp_path / "lineage.jsonl"
    if bad == "malformed":
        lineage.write_text('{"text": "x"}\nnot json at all\n')
    elif bad == "other_program":
        other = ProgramVersion(text="x", hash="f" * 64, path="other.yaml")
        lineage.write_text(other.model_dump_json() + "\n" + other.model_copy(update={"hash": "e" * 64,
                                                                                      "parent": "f" * 64}).model_dump_json() + "\n")
    elif bad == "directory":
        lineage.mkdir()
    else:
        lineage = tmp_path / "no" / "such" / "lineage.jsonl"
    before = wf.read_bytes()
    r = cli("mutate", str(wf), "-w", "--lineage", str(lineage),
              "--op", '{"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": 12}')
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr and "lineage" in r.stderr
    assert wf.read_bytes() == before  # nothing was written


def test_mutate_writes_program_and_lineage_when_all_is_well(wf, tmp_path, cli):
    lineage = tmp_path / "lineage.jsonl"
    r = cli("mutate", str(wf), "-w", "--lineage", str(lineage),
              "--op", '{"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": 12}')
    assert r.returncode == 0, r.stdout + r.stderr
    assert "max_turns: 12" in wf.read_text() and len(lineage.read_text().splitlines()) == 2


# ---------------------------------------------------------------- the whole chain, end to end

PAYLOAD = "{{{{ lipsum.__globals__.os.system('touch {marker}') }}}} {{{{ cycler.__init__.__globals__.os.system('touch {marker}') }}}}"


class HostilePolicy(LearnerPolicy):
    """The learner, turned hostile: its tasks and its judge's reasons carry template code (kept
    in evolution/critiques.jsonl), and as the workflow planner it tries every way from there to
    a shell, a secret file and foreign Python, then answers with JSON nested 100 000 deep."""

    def __init__(self, payload: str, attacks: list[list], **kw) -> None:
        super().__init__("retail", 0, 0.1)
        self.payload, self.attacks, self.planner_calls = payload, attacks, 0

    def artifact(self, kind, system, rng):
        out = super().artifact(kind, system, rng)
        if kind == "TaskSpec":
            out = dict(out, user_instructions=f"{out.get('user_instructions', '')} {self.payload}")
        return out

    def critique(self, system, ask):
        out = super().critique(system, ask)
        return dict(out, reasons=out["reasons"] + [self.payload])

    def __call__(self, request):
        last = str((request.get("messages") or [{}])[-1].get("content") or "")
        if "WorkflowEdit JSON" not in last:
            return super().__call__(request)
        with self.lock:
            i, self.planner_calls = self.planner_calls, self.planner_calls + 1
        if i < len(self.attacks):
            return {"role": "assistant", "content": json.dumps({"ops": self.attacks[i], "reason": self.payload})}
        return {"role": "assistant", "content": '{"ops": ' + DEEP + "}"}


def test_evolve_with_a_hostile_endpoint_runs_no_command_and_leaks_nothing(tmp_path):
    marker, dmarker = tmp_path / "PWNED", tmp_path / "PWNED_DOMAIN"
    wf_dir = tmp_path / "wf"
    shutil.copytree(ROOT / "workflows", wf_dir)
    out = wf_dir / "run"  # the run directory inside the workflow's folder: the hardest case
    critiques = "run/evolution/critiques.jsonl"
    secret = tmp_path / "secret.txt"
    secret.write_text("API_KEY=sk-SECRET-4242\n")
    evil = tmp_path / "evil"  # a domain whose Python leaves a mark when imported
    shutil.copytree(ROOT / "tests" / "fixtures" / "mini", evil, ignore=shutil.ignore_patterns("__pycache__"))
    with (evil / "tools.py").open("a") as fh:
        fh.write(f"\nopen({str(dmarker)!r}, 'w').write('imported')\n")
    probe = {"worker": "RandomPool", "prompt": critiques, "out": "ScenarioSeed"}
    def harmless(t: float) -> dict:  # applied: keeps the pilot from stopping for lack of edits
        return {"op": "set_param", "path": "agents.UserIntent.params.temperature", "value": t}

    attacks = [
        [{"op": "set_param", "path": "domain", "value": str(evil)},
         {"op": "add_agent", "name": "Leak", "after": "RandomPool", "before": "UserIntent",
          "agent": dict(probe, prompt=str(secret))}, harmless(0.5)],
        # from the second answer on, critiques.jsonl exists, with the bait in it
        [{"op": "add_agent", "name": "Probe", "after": "RandomPool", "before": "UserIntent", "agent": probe},
         {"op": "set_param", "path": "judge.prompt", "value": str(wf_dir / critiques)}, harmless(0.4)],
        [{"op": "add_agent", "name": "Probe2", "after": "RandomPool", "before": "UserIntent",
          "agent": dict(probe, prompt=f"../{wf_dir.name}/{critiques}")},
         {"op": "replace_agent", "name": "RandomPool", "agent": {"prompt": "/etc/passwd", "out": "ScenarioSeed"}},
         harmless(0.3)],
    ]  # then an answer nested 100 000 levels deep
    wf = wf_dir / "eigendata.yaml"  # never stop early: every answer above is asked for
    wf.write_text(wf.read_text().replace('stop_when: "infeasible_rate < 0.05 and tool_validity >= 0.98"',
                                         'stop_when: "acceptance_rate > 1.0"'))
    policy = HostilePolicy(PAYLOAD.format(marker=marker), attacks)
    with serve(policy, model="scripted") as srv:
        r = eigen("evolve", str(wf), "--domain", "retail", "--size", "0.1", "--n", "2",
                  "--sets", "1", "--batch", "4", "--max-iterations", "5", "--out", str(out), "-q",
                  "--backend", "openai", "--base-url", srv.base_url, "--model", "scripted", "--planner", "model")
        sent = json.dumps([q["body"] for q in srv.requests])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stdout + r.stderr
    assert not marker.exists() and not dmarker.exists()  # no command ran, no foreign Python was imported
    assert "sk-SECRET-4242" not in sent and "root:x:0:0" not in sent  # no file left the machine
    assert "lipsum.__globals__" in (out / "evolution" / "critiques.jsonl").read_text()  # the bait was there
    assert policy.planner_calls == len(attacks) + 1
    log = [json.loads(x) for x in (out / "evolution" / "log.jsonl").read_text().splitlines()]
    edits = [w for e in log if e["event"] == "iteration" for w in e["workflow_edits"]]
    refused = [w for w in edits if w["hash"] is None]
    assert refused and all(w["refused"] for w in refused)  # every refusal says why
    said = json.dumps(refused)
    assert "E602" in said and "may not name files" in said and "may not change the domain" in said
    assert [w["op"] for w in edits if w["hash"]] == [harmless(t) for t in (0.5, 0.4, 0.3)]  # nothing else got in
    assert any("nested too deeply" in w["reason"] or "levels deep" in w["reason"] for w in refused)
    text = (out / "evolution" / "workflow.jsonl").read_text()
    assert str(secret) not in text and "critiques.jsonl" not in text and str(evil) not in text
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_a_round_of_several_applied_ops_is_one_lineage_step(wf):
    from eigenlang.mutate import Lineage

    v0 = ProgramVersion.load(wf)
    ops = [({"op": "set_param", "path": "agents.UserIntent.params.temperature", "value": 0.5}, "a"),
           ({"op": "set_prompt", "agent": "UserIntent", "role": "prompt", "path": "/etc/passwd"}, "b"),
           ({"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": 12}, "c")]
    new, edits = ModelPlanner(_answer("{}")).apply(v0, ops)
    assert [bool(e["hash"]) for e in edits] == [True, False, True]
    lineage = Lineage([v0])
    lineage.append(new)  # its parent is the round's starting version
    assert new.parent == v0.hash and new.op["op"] == "batch" and len(new.op["ops"]) == 2
