"""The staged compiler end to end: the reference workflow compiles, lowering is right, the
hash covers meaning only."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from eigenlang.catalog import WORKERS
from eigenlang.compiler import check_file, compile_workflow
from eigenlang.domain import load_domain
from eigenlang.surface import program_json_schema


def test_reference_workflow_compiles(workflow_dir: Path):
    plan, diags = compile_workflow(workflow_dir / "eigendata.yaml")
    assert not diags.errors, diags.render()
    assert plan is not None
    g = plan.graph
    assert nx.is_directed_acyclic_graph(g)
    # max 3 repair rounds: 4 validation copies, 3 modify copies
    assert sorted(n for n in g if n.startswith("TrajectoryValidation")) == [
        "TrajectoryValidation", "TrajectoryValidation#1", "TrajectoryValidation#2", "TrajectoryValidation#3"]
    assert sorted(n for n in g if n.startswith("Modify")) == ["Modify#1", "Modify#2", "Modify#3"]
    # the exit edge leaves from every round
    assert {u for u, v in g.in_edges("VerificationFunction")} == {
        "TrajectoryValidation", "TrajectoryValidation#1", "TrajectoryValidation#2", "TrajectoryValidation#3"}
    assert g.edges["TrajectoryValidation#1", "Modify#2"]["guard"] == "not (accepted)"
    assert g.edges["TaskValidation", "DialogSynthesis"]["guard"] == "feasible"
    assert plan.data["start"] == ["RandomPool"]


def test_static_cost_is_the_sum_of_node_costs(workflow_dir: Path):
    plan, _ = compile_workflow(workflow_dir / "eigendata.yaml")
    dialog = 30 * (1 + 1 + 4)  # max_turns × (user + assistant + tool rounds)
    validation = 5
    expected = 1 + 1 + 1 + dialog + 4 * validation + 3 * 1 + 1
    assert plan.cost.worst_case_llm_calls == expected
    assert plan.cost.critical_path_llm_calls == expected  # the loop is one long path here
    assert plan.data["cost"]["worst_case_llm_calls"] == expected


def test_plan_carries_tools_prompts_and_types(workflow_dir: Path):
    plan, _ = compile_workflow(workflow_dir / "eigendata.yaml")
    tools = {t["function"]["name"]: t for t in plan.data["domain"]["tools"]}
    assert set(tools) == {"get_account", "transfer"}
    params = tools["transfer"]["function"]["parameters"]
    assert params["required"] == ["src", "dst", "amount"] and params["additionalProperties"] is False
    node = next(n for n in plan.data["nodes"] if n["id"] == "UserIntent")
    assert node["in"] == ["ScenarioSeed"] and node["out"] == ["TaskSpec"]
    assert node["prompts"]["prompt"].startswith("user_intent.j2@")
    assert "Modify#2" in [n["id"] for n in plan.data["nodes"] if n["round"] == 2]


def _variant(text: str) -> str:
    """Same meaning: comments, blank lines, key order and flow spacing changed."""
    lines = text.splitlines()
    out = ["# a comment that must not change the hash", ""]
    for ln in lines:
        if ln.startswith("judge:"):
            out.append("")
        out.append(ln.replace(" -> ", "   ->  ") + ("   # trailing" if ln.startswith("workflow:") else ""))
    return "\n".join(out) + "\n"


def test_hash_ignores_comments_whitespace_and_key_order(workflow_dir: Path):
    wf = workflow_dir / "eigendata.yaml"
    base, _ = compile_workflow(wf)
    text = wf.read_text()
    same, d = compile_workflow(wf, _variant(text))
    assert not d.errors, d.render()
    assert same.hash == base.hash
    # move the judge section above the agents: key order differs, meaning does not
    head, judge_and_rest = text.split("judge:", 1)
    judge, rest = judge_and_rest.split("evolution:", 1)
    reordered = head.replace("agents:", "judge:" + judge + "agents:", 1) + "evolution:" + rest
    moved, d = compile_workflow(wf, reordered)
    assert not d.errors, d.render()
    assert moved.hash == base.hash


def test_hash_changes_with_meaning(workflow_dir: Path):
    wf = workflow_dir / "eigendata.yaml"
    base, _ = compile_workflow(wf)
    changed, _ = compile_workflow(wf, wf.read_text().replace("max 3", "max 2"))
    assert changed.hash != base.hash
    (workflow_dir / "prompts" / "modify.j2").write_text("Repair it. {{ task_spec.objective }}\n")
    prompt_changed, _ = compile_workflow(wf)
    assert prompt_changed.hash != base.hash


def test_domain_program_loads(mini_domain_dir: Path):
    spec, diags = load_domain(mini_domain_dir)
    assert spec is not None, diags.render()
    assert spec.tools["transfer"].kind == "write"
    assert [p.error for p in spec.tools["transfer"].requires] == [
        "account not found", "both accounts must be open", "insufficient funds"]
    assert spec.tools["get_account"].params["account_id"].description.startswith("The account id")
    assert "confirm_before_write" in spec.rules
    assert not spec.schema.models["Account"]["tier"].required


def test_builtin_workers_have_costs():
    for w in WORKERS.values():
        assert w.llm_calls({"params": {}}) >= 1


def test_json_schema_accepts_the_reference_programs(workflow_dir: Path, mini_domain_dir: Path):
    jsonschema = pytest.importorskip("jsonschema")
    from ruamel.yaml import YAML

    schema = program_json_schema()
    for f in (workflow_dir / "eigendata.yaml", mini_domain_dir / "domain.yaml"):
        data = YAML(typ="safe").load(f.read_text())
        jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"eigenlang": 1, "workflow": "x", "bogus": 1}, schema)


def test_check_reports_every_error_at_once(tmp_path: Path, workflow_dir: Path):
    wf = workflow_dir / "eigendata.yaml"
    text = (wf.read_text().replace("max_turns: 30", "max_turns: 0")
            .replace("UserIntent -> TaskValidation", "UserIntent -> TaskValidaton")
            .replace("until accepted", "until acepted"))
    codes = sorted(d.code for d in check_file(wf, text))
    assert codes == ["E105", "E201", "E205"], codes
