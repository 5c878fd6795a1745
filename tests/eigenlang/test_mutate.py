"""The mutation API: typed edits → a new checked version, or diagnostics and nothing changed."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import jsonschema
import pytest

from eigenlang.diagnostics import Diagnostic
from eigenlang.mutate import (
    OP_NAMES,
    AddEdge,
    InvalidProgram,
    Lineage,
    OpError,
    ProgramVersion,
    RemoveAgent,
    apply,
    apply_many,
    op_dict,
    op_json_schema,
    parse_op,
    write_back,
)
from eigenlang.parse import parse_program

ROOT = Path(__file__).resolve().parents[2]

EDITS = [
    {"op": "guard_edge", "src": "TaskValidation", "dst": "DialogSynthesis",
     "guard": "feasible and len(reasons) == 0"},
    {"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": 12},
    {"op": "set_param", "path": "evolution.pilot.batch", "value": 4},
    {"op": "add_agent", "name": "Audit", "after": "DialogSynthesis", "before": "TrajectoryValidation",
     "agent": {"worker": "TrajectoryValidation", "prompt": "prompts/trajectory_validation.j2",
               "checks": ["realism"], "out": "ValidationReport"}},
    {"op": "rewire_edge", "src": "Audit", "dst": "TrajectoryValidation",
     "new_dst": "VerificationFunction"},
    {"op": "rewire_edge", "src": "Audit", "dst": "VerificationFunction",
     "new_dst": "TrajectoryValidation"},
    {"op": "guard_edge", "src": "Audit", "dst": "TrajectoryValidation", "guard": "accepted"},
    {"op": "replace_agent", "name": "RandomPool",
     "agent": {"prompt": "prompts/random_pool.j2", "out": "ScenarioSeed", "params": {"temperature": 0.9}}},
    {"op": "set_prompt", "agent": "Modify", "role": "prompt", "path": "prompts/modify_v2.j2"},
    {"op": "set_prompt", "agent": "Modify", "role": "prompt", "path": "prompts/modify.j2"},
]


def comments(text: str) -> list[str]:
    return [m.group(0).strip() for m in re.finditer(r"#[^\n]*", text)]


def errors(result) -> list[Diagnostic]:
    assert isinstance(result, list), "the edit should have been refused"
    assert result and all(isinstance(d, Diagnostic) for d in result)
    return result


@pytest.fixture
def v0(workflow_dir: Path) -> ProgramVersion:
    return ProgramVersion.load(workflow_dir / "eigendata.yaml")


def test_sequence_round_trips_through_yaml(v0: ProgramVersion, tmp_path: Path) -> None:
    prompts = Path(v0.path).parent / "prompts"
    (prompts / "modify_v2.j2").write_text((prompts / "modify.j2").read_text() + "\nBe brief.\n")
    lineage = Lineage([v0])
    for i, op in enumerate(EDITS):
        v = apply(lineage.head, op, reason=f"critique {i}")
        assert isinstance(v, ProgramVersion), [d.render() for d in v]
        lineage.append(v)
    head = lineage.head
    prog = head.program
    assert prog.agents["DialogSynthesis"].max_turns == 12
    assert prog.evolution.pilot.batch == 4
    assert prog.agents["RandomPool"].params == {"temperature": 0.9}
    assert list(prog.agents)[4] == "Audit"  # declared right after DialogSynthesis
    assert "DialogSynthesis -> Audit\nAudit -> TrajectoryValidation when accepted" in prog.flow
    assert "TaskValidation -> DialogSynthesis when feasible and len(reasons) == 0" in prog.flow
    # the human's comments survive every edit
    assert comments(v0.text) and set(comments(v0.text)) <= set(comments(head.text))
    # written and read back: the same program
    out = write_back(head, Path(head.path).with_name("edited.yaml"))
    assert parse_program(out).program == parse_program(head.path, head.text).program
    assert ProgramVersion.load(out).hash == head.hash
    # the lineage records parents and reasons, and survives JSONL
    for parent, child in itertools.pairwise(lineage):
        assert child.parent == parent.hash
    assert [v.reason for v in lineage] == [None] + [f"critique {i}" for i in range(len(EDITS))]
    assert [v.op for v in lineage[1:]] == EDITS
    lineage.save(tmp_path / "lineage.jsonl")
    again = Lineage.load(tmp_path / "lineage.jsonl")
    assert again == lineage and again.head.hash == head.hash
    assert again.ancestry() == lineage and again.ancestry(head.hash) == lineage
    assert again.ancestry(lineage[2].hash) == lineage[:3]
    # an edit and its inverse give back the same semantic hash (set_prompt there and back,
    # rewire_edge there and back)
    assert lineage[-1].hash == lineage[-3].hash != lineage[-2].hash
    assert lineage[6].hash == lineage[4].hash != lineage[5].hash


def test_insert_and_remove_with_reconnect_restores_the_program(v0: ProgramVersion) -> None:
    op = {"op": "add_agent", "name": "Audit", "after": "DialogSynthesis", "before": "TrajectoryValidation",
          "agent": {"worker": "TrajectoryValidation", "prompt": "prompts/trajectory_validation.j2"}}
    v1 = apply(v0, op, "insert")
    assert isinstance(v1, ProgramVersion) and v1.hash != v0.hash
    v2 = apply(v1, RemoveAgent(name="Audit", reconnect=True), "undo")
    assert isinstance(v2, ProgramVersion), v2
    assert v2.hash == v0.hash
    assert v2.program == v0.program


def test_remove_agent_drops_its_loop_and_edges(v0: ProgramVersion) -> None:
    v = apply(v0, {"op": "remove_agent", "name": "Modify"}, "no repair")
    assert isinstance(v, ProgramVersion), v
    assert "Modify" not in v.program.agents and "loop" not in v.program.flow
    assert "# a tool-grounded feasibility probe" in v.text  # other comments stay
    v = apply(v0, {"op": "remove_edge", "src": "Modify", "dst": "TrajectoryValidation"}, "no loop")
    assert isinstance(v, ProgramVersion) and "loop" not in v.program.flow


@pytest.mark.parametrize("op,code,text", [
    ({"op": "add_edge", "src": "UserIntnet", "dst": "Modify"}, "E601", "did you mean 'UserIntent'"),
    ({"op": "remove_agent", "name": "Judge"}, "E601", "unknown agent 'Judge'"),
    ({"op": "set_prompt", "agent": "Modfy", "role": "prompt", "path": "p.j2"}, "E601", "'Modify'"),
    ({"op": "add_edge", "src": "VerificationFunction", "dst": "UserIntent"}, "E401", "unbounded cycle"),
    ({"op": "remove_agent", "name": "UserIntent", "reconnect": True}, "E302", "not produced upstream"),
    ({"op": "guard_edge", "src": "TaskValidation", "dst": "DialogSynthesis", "guard": "feasible and"},
     "E002", ""),
    ({"op": "guard_edge", "src": "TaskValidation", "dst": "DialogSynthesis", "guard": "feasibel"},
     "E205", "did you mean 'feasible'"),
    ({"op": "remove_edge", "src": "TaskValidation", "dst": "Modify"}, "E601", "no edge"),
    ({"op": "add_edge", "src": "RandomPool", "dst": "UserIntent"}, "E601", "exists already"),
    ({"op": "add_agent", "name": "Modify", "agent": {}}, "E601", "already exists"),
    ({"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": 0}, "E105", ""),
    ({"op": "set_param", "path": "evolutoin.pilot.batch", "value": 3}, "E601", "'evolution'"),
    ({"op": "set_param", "path": "evolution.pilot.batch.x", "value": 3}, "E601", "not a mapping"),
    ({"op": "set_prompt", "agent": "Modify", "role": "prompt", "path": "prompts/none.j2"}, "E107", ""),
    ({"op": "set_prompt", "agent": "Modify", "role": "user", "path": "prompts/modify.j2"}, "E103", ""),
    ({"op": "rewire_edge", "src": "RandomPool", "dst": "UserIntent", "new_src": "UserIntent",
      "new_dst": "TaskValidation"},
     "E601", "exists already"),
])
def test_invalid_edits_are_refused(v0: ProgramVersion, op: dict, code: str, text: str) -> None:
    before = (v0.text, v0.hash, Path(v0.path).read_text())
    diags = errors(apply(v0, op, "bad idea"))
    assert code in {d.code for d in diags}, [d.render() for d in diags]
    assert any(text in d.render() for d in diags if d.code == code)
    assert (v0.text, v0.hash, Path(v0.path).read_text()) == before


@pytest.mark.parametrize("raw,text", [
    ("not json", "not valid JSON"),
    ([1, 2], "JSON object"),
    ({"src": "A"}, "missing 'op'"),
    ({"op": "add_edgee"}, "did you mean 'add_edge'"),
    ({"op": "add_edge", "src": "A"}, "dst: Field required"),
    ({"op": "add_edge", "src": "A", "dst": "B", "colour": "red"}, "colour"),
    ({"op": "add_edge", "src": "A -> C", "dst": "B"}, "src"),
    ({"op": "add_edge", "src": "A", "dst": "B", "guard": "x\ny"}, "one-line"),
    ({"op": "rewire_edge", "src": "A", "dst": "B"}, "new_src, new_dst"),
    ({"op": "set_prompt", "agent": "A", "role": "system", "path": "x"}, "role"),
    ({"name": "add_edge", "arguments": "{oops"}, "not valid JSON"),
])
def test_malformed_ops_are_e601(v0: ProgramVersion, raw, text: str) -> None:
    with pytest.raises(OpError) as info:
        parse_op(raw)
    assert isinstance(info.value, ValueError) and text in str(info.value)
    diags = errors(apply(v0, raw, "malformed"))  # apply answers with the same diagnostics
    assert all(d.code == "E601" for d in diags)
    assert any(text in d.render() for d in diags), [d.render() for d in diags]


def test_parse_op_accepts_json_dicts_and_tool_calls() -> None:
    edge = AddEdge(src="A", dst="B", guard="ok")
    assert parse_op(json.dumps(op_dict(edge))) == edge
    assert parse_op({"name": "add_edge", "arguments": '{"src": "A", "dst": "B", "guard": "ok"}'}) == edge
    assert parse_op({"type": "function", "function": {"name": "add_edge",
                                                      "arguments": {"src": "A", "dst": "B", "guard": "ok"}}}) == edge
    assert op_dict(parse_op({"op": "guard_edge", "src": "A", "dst": "B", "guard": None})) == \
        {"op": "guard_edge", "src": "A", "dst": "B", "guard": None}


def test_op_json_schema_is_one_function_per_op() -> None:
    tools = op_json_schema()
    assert [t["function"]["name"] for t in tools] == OP_NAMES
    assert "$ref" not in json.dumps(tools)
    for t in tools:
        params = t["function"]["parameters"]
        assert t["type"] == "function" and t["function"]["description"]
        assert "op" not in params["properties"]
        jsonschema.Draft202012Validator.check_schema(params)
    add_agent = next(t for t in tools if t["function"]["name"] == "add_agent")["function"]["parameters"]
    example = {"name": "X", "agent": {"prompt": "p.j2", "in": ["TaskSpec"]}, "after": "A"}
    jsonschema.validate(example, add_agent)
    assert parse_op({"name": "add_agent", "arguments": example}).agent.inputs() == ["TaskSpec"]


def test_apply_many_stops_at_the_first_refusal(v0: ProgramVersion) -> None:
    ops = [EDITS[1], {"op": "add_edge", "src": "Nope", "dst": "Modify"}, EDITS[2]]
    diags = errors(apply_many(v0, ops, "batch"))
    assert diags[0].code == "E601" and "op 2 of 3" in diags[0].message
    assert any("unknown agent 'Nope'" in d.message for d in diags)
    v = apply_many(v0, [EDITS[1], EDITS[2]], "batch")
    assert isinstance(v, ProgramVersion) and v.parent == v0.hash and v.reason == "batch"
    assert v.op == {"op": "batch", "ops": [EDITS[1], EDITS[2]]}
    assert v.program.evolution.pilot.batch == 4 and v.program.agents["DialogSynthesis"].max_turns == 12
    one = apply_many(v0, [EDITS[1]], "one")
    assert isinstance(one, ProgramVersion) and one.op == EDITS[1] and one.parent == v0.hash
    Lineage([v0, v, one])  # both are children of v0


def test_edits_of_a_domain_program(tmp_path: Path) -> None:
    import shutil
    shutil.copytree(ROOT / "tests" / "fixtures" / "mini", tmp_path / "mini")
    v0 = ProgramVersion.load(tmp_path / "mini" / "domain.yaml")
    v1 = apply(v0, {"op": "set_param", "path": "tools.transfer.description", "value": "Send money."},
               "clearer")
    assert isinstance(v1, ProgramVersion), v1
    assert v1.program.tools["transfer"].description == "Send money." and v1.hash != v0.hash
    assert "# A tiny bank" in v1.text
    diags = errors(apply(v0, {"op": "add_edge", "src": "A", "dst": "B"}, "x"))
    assert diags[0].code == "E601" and "workflow" in diags[0].message
    assert errors(apply(v0, {"op": "set_param", "path": "tools.transfer.kind", "value": "delete"},
                        "x"))[0].code == "E105"


def test_set_param_null_removes_a_key(v0: ProgramVersion) -> None:
    v = apply(v0, {"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": None}, "default")
    assert isinstance(v, ProgramVersion)
    assert v.program.agents["DialogSynthesis"].max_turns is None and "max_turns" not in v.text


def test_load_of_an_invalid_program_raises_with_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("eigenlang: 1\nworkflow: w\nagents: {}\n")
    with pytest.raises(InvalidProgram) as info:
        ProgramVersion.load(bad)
    assert info.value.diagnostics and "E104" in str(info.value)


def test_lineage_rejects_a_stranger(v0: ProgramVersion) -> None:
    lineage = Lineage([v0])
    stranger = v0.model_copy(update={"parent": "f" * 64, "hash": "e" * 64})
    with pytest.raises(ValueError):
        lineage.append(stranger)
    with pytest.raises(ValueError):
        Lineage([v0, stranger])
