"""The `world` template global: a small, deterministic sample of the instance's database that
RandomPool and UserIntent prompts show, so a model can ground the ids it writes."""

from __future__ import annotations

import json
import random

import pytest

from runtime.exec.engine import Runner, RunSpec, _prompt_dirs
from runtime.workers.base import WorkerContext
from runtime.workers.llm.render import WORLD_CHARS, context_ids, render, world_sample
from tests.helpers import ROOT

WORKFLOW = str(ROOT / "workflows" / "eigendata.yaml")
DB = {"users": {f"u{i}": {"user_id": f"u{i}", "name": f"N{i}"} for i in range(20)},
      "bills": [{"bill_id": f"B{i}", "customer_id": "u3", "due": i} for i in range(8)],
      "version": 3}


def test_sample_counts_every_collection_and_shows_whole_entries():
    w = world_sample(DB, random.Random(1))
    assert w["counts"] == {"bills": 8, "users": 20}  # scalars are shown, not counted
    assert w["sample"]["version"] == 3
    users = w["sample"]["users"]
    assert len(users) == 5 and all(DB["users"][k] == v for k, v in users.items())
    assert list(users) == sorted(users)  # in collection order, not draw order
    bills = w["sample"]["bills"]
    assert len(bills) == 5 and all(b in DB["bills"] for b in bills)
    assert [b["due"] for b in bills] == sorted(b["due"] for b in bills)


def test_sample_is_a_function_of_the_rng_only():
    a = json.dumps(world_sample(DB, random.Random(7)))
    assert a == json.dumps(world_sample(dict(reversed(DB.items())), random.Random(7)))
    others = {json.dumps(world_sample(DB, random.Random(s))) for s in range(8)}
    assert len(others) > 1  # the entries shown vary with the seed


def test_context_entries_come_first_and_the_budget_holds():
    # u17 and bill B6 are named by the seed: shown whatever the draw
    inputs = {"ScenarioSeed": {"context": {"user_id": "u17", "bills": ["B6"], "n": 2}}}
    assert context_ids(inputs) == ["B6", "u17"]
    for s in range(5):
        w = world_sample(DB, random.Random(s), focus=context_ids(inputs))
        assert "u17" in w["sample"]["users"] and w["sample"]["bills"][0]["bill_id"] == "B6"
        assert len(w["sample"]["users"]) == 5
    big = {"flights": {f"F{i}": {"seats": "x" * (WORLD_CHARS // 2)} for i in range(10)}}
    shown = world_sample(big, random.Random(0))["sample"]["flights"]
    assert 1 <= len(shown) <= 2  # entries stay whole; fewer of them when they are large
    huge = {"flights": {"F1": {"seats": "x" * (3 * WORLD_CHARS)}}}
    assert list(world_sample(huge, random.Random(0))["sample"]["flights"]) == ["F1"]  # one at least
    assert world_sample(None, random.Random(0)) == {"counts": {}, "sample": {}}
    assert world_sample(DB, random.Random(0), entries=0)["sample"]["users"] == {}


@pytest.fixture(scope="module")
def runner():
    return Runner(RunSpec(WORKFLOW, "retail", 0, 0.1))


def _render(runner, agent: str, inputs: dict, seed: int) -> str:
    text = runner.plan.data["prompts"][f"{agent}.prompt"]["text"]
    ctx = WorkerContext(runner.domain, runner.env, runner.world, random.Random(0), agent, agent, 0, {},
                        {"prompt": text}, "openai")
    return render(ctx, "prompt", inputs, seed, _prompt_dirs(runner.spec, runner.plan))


def test_random_pool_and_user_intent_prompts_show_the_database(runner):
    db = runner.world.db
    prompt = _render(runner, "RandomPool", {}, 11)
    assert prompt == _render(runner, "RandomPool", {}, 11)  # deterministic
    assert prompt != _render(runner, "RandomPool", {}, 12)
    for name, coll in db.items():
        assert f"{name}: {len(coll)}" in prompt
    shown = _sample(prompt)
    assert set(shown) == set(db) and all(1 <= len(v) <= 5 for v in shown.values())
    assert all(db[c][k] == v for c in shown for k, v in shown[c].items())  # real entries, whole
    assert json.dumps(shown, sort_keys=True, separators=(",", ":")) in prompt  # compact JSON
    order_id = sorted(db["orders"])[3]
    user_id = db["orders"][order_id]["user_id"]
    seed = {"persona": {"name": "Mia", "tone": "polite", "expertise": "novice", "constraints": []},
            "context": {"user_id": user_id, "order_id": order_id}, "intent": "cancel_order",
            "difficulty": {"level": "easy", "tool_calls": 3, "branching": 0, "ambiguity": 0.0, "error_prone": []}}
    task_prompt = _render(runner, "UserIntent", {"ScenarioSeed": seed}, 11)
    # the seed's own user and order are in the sample, in full
    sample = _sample(task_prompt)
    assert sample["orders"][order_id] == db["orders"][order_id]
    assert sample["users"][user_id] == db["users"][user_id]
    assert "Scenario seed (JSON):" in task_prompt


def _sample(prompt: str) -> dict:
    """The JSON line after the prompt's "Part of the database ..." line."""
    after = prompt.split("Part of the database", 1)[1]
    return json.loads(after.split("\n")[1])


def test_a_template_may_not_invent_world_fields(tmp_path):
    from eigenlang.compiler import compile_workflow
    from tests.helpers import workflow_copy

    wf = workflow_copy(tmp_path) / "eigendata.yaml"
    pool = wf.parent / "prompts" / "random_pool.j2"
    pool.write_text(pool.read_text() + "\n{{ world.entries }}\n")
    plan, diags = compile_workflow(wf)
    assert plan is None and any("WorldSample" in d.message and "entries" in d.message for d in diags.errors)
