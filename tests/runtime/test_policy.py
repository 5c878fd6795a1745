"""Per-tool `policy:` checks, error-text placeholders and environment actions, on the shop
fixture (tests/fixtures/shop): an over-eager agent that cancels an order the policy does not
allow cancelling is let through by the tool and caught everywhere the trajectory is judged."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from eigenlang import load_domain
from eigenlang.diagnostics import Origin
from eigenlang.expr import parse_expr
from runtime.env import Environment, Verifier, verifier_from_diff
from runtime.env.checks import ToolChecks
from runtime.env.rules import calls_of, dialog_of
from runtime.workers.base import WorkerContext, World
from runtime.workers.llm.workers import LLMTrajectoryValidation
from runtime.workers.offline.task_validation import OfflineTaskValidation
from runtime.workers.offline.trajectory import repair, validate

SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "shop"
INELIGIBLE = "Only pending or insured orders may be cancelled; O002 is neither."


@pytest.fixture(scope="module")
def spec():
    spec, diags = load_domain(SHOP)
    assert spec is not None, diags.render()
    return spec


@pytest.fixture
def env(spec):
    return Environment.from_domain(spec, seed=0)


def ctx_of(spec, env) -> WorkerContext:
    world = World(spec, env.db.to_json(), env.user_db.to_json(), spec.now)
    return WorkerContext(spec, env, world, random.Random(0), "TrajectoryValidation", "TrajectoryValidation", 0, {})


def gold(order_id: str, reason: str = "no longer needed") -> list[dict]:
    return [{"name": "get_order", "arguments": {"order_id": order_id}, "side": "agent"},
            {"name": "cancel_order", "arguments": {"order_id": order_id, "reason": reason}, "side": "agent"}]


def task_of(order_id: str) -> dict:
    return {"intent": "cancel_order", "objective": f"Cancel order {order_id}.", "gold_calls": gold(order_id),
            "user_instructions": f"You want order {order_id} cancelled.", "known": {"order_id": order_id}}


def dialogue(env: Environment, order_id: str) -> tuple[list[dict], Environment]:
    """A clean, confirmed dialogue that looks the order up and cancels it, with the real tool
    results of a fork of `env`; and that fork after it."""
    fork = env.fork()
    messages = [{"role": "system", "content": "Shop policy."},
                {"role": "user", "content": f"Hi, please cancel my order {order_id}."}]
    for i, call in enumerate(gold(order_id), 1):
        if call["name"] == "cancel_order":
            messages += [{"role": "assistant", "content": f"Shall I cancel order {order_id}?"},
                         {"role": "user", "content": "Yes, please go ahead."}]
        result = fork.call(call["name"], call["arguments"])
        messages += [{"role": "assistant", "content": None, "tool_calls": [
                         {"id": f"call_{i}", "type": "function",
                          "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}]},
                     {"role": "tool", "tool_call_id": f"call_{i}", "name": call["name"], "content": result.content}]
    messages.append({"role": "assistant", "content": f"Order {order_id} is cancelled."})
    return messages, fork


# ---------------------------------------------------------------- error-text placeholders


def test_error_texts_print_argument_values(env):
    missing = env.call("get_order", {"order_id": "NOPE00"})
    assert (missing.ok, missing.content, missing.error) == (False, "Error: Order NOPE00 not found", "precondition")
    assert env.call("cancel_order", {"order_id": "O004"}).content == "Error: Order O004 is already {cancelled}"
    item = env.call("rename_item", {"order_id": "O001", "item": {"item_id": "X9", "name": "cup"}})
    assert item.content == "Error: Item X9 is not in order O001: {'item_id': 'X9', 'name': 'cup'}"


def test_a_rendered_error_is_still_recognised_as_a_precondition(spec, env):
    """Without the tool message's `error` key, the category comes from the wording."""
    messages, _ = dialogue(env, "NOPE00")
    call = calls_of(messages, spec)[0]
    assert (call["ok"], call["error"]) == (False, "precondition")


# ---------------------------------------------------------------- policy checks


def test_the_call_runs_and_the_violation_is_recorded_not_shown(env):
    result = env.call("cancel_order", {"order_id": "O002", "reason": "ordered by mistake"})
    assert result.ok and json.loads(result.content)["status"] == "cancelled"
    assert env.db.to_json()["orders"]["O002"]["status"] == "cancelled"
    assert [(v.tool, v.rule) for v in result.violations] == [
        ("cancel_order", "cancel_eligibility"), ("cancel_order", "mistake_refund_limit")]
    assert result.violations[0].description == INELIGIBLE
    assert "policy" not in result.content and "eligib" not in result.content  # the agent is not told
    assert env.stats.violations == result.violations
    assert env.fork().stats.violations == env.stats.violations  # a fork inherits the log


def test_allowed_and_refused_calls_break_no_policy(env):
    assert env.call("cancel_order", {"order_id": "O001"}).violations == ()
    assert env.call("cancel_order", {"order_id": "O003"}).violations == ()  # shipped but insured
    refused = env.call("cancel_order", {"order_id": "O004"})  # the backend refuses: nothing ran
    assert not refused.ok and refused.violations == ()
    assert env.stats.violations == ()


def test_a_policy_check_that_cannot_be_evaluated_is_a_violation():
    expr, _ = parse_expr("db.orders[order_id].insured", Origin("<t>", ((1, 1),)))
    spec = SimpleNamespace(name="cancel_order", requires=[], policy=[
        SimpleNamespace(rule="insured_only", expr=expr, text="...", description="Insured orders only.")])
    checks = ToolChecks(spec, "agent")
    (v,) = checks.violations({"db": {"orders": {}}, "order_id": "O9"}, {"order_id": "O9"})
    assert v.rule == "insured_only"
    assert v.description.startswith("Insured orders only. (the check could not be evaluated:")


def test_set_up_calls_through_act_are_not_judged(env):
    result = env.act("cancel_order", {"order_id": "O002"}, "agent")  # a tool, run as set-up
    assert result.ok and env.stats.violations == () and env.stats.calls == 0


# ---------------------------------------------------------------- the over-eager agent, caught


def test_dialog_calls_carry_their_violations(spec, env):
    messages, _ = dialogue(env, "O002")
    calls = dialog_of(messages, spec, env)["calls"]
    assert [c["violations"] for c in calls] == [[], [
        {"tool": "cancel_order", "rule": "cancel_eligibility", "description": INELIGIBLE, "turn": 2}]]


def test_trajectory_validation_rejects_and_modify_cannot_repair(spec, env):
    ctx = ctx_of(spec, env)
    good, _ = dialogue(env, "O001")
    report = validate(ctx, task_of("O001"), dialog_of(good, spec, env))
    assert report["accepted"], report["reasons"]

    bad, _ = dialogue(env, "O002")
    dialog = dialog_of(bad, spec, env)
    report = validate(ctx, task_of("O002"), dialog)
    assert not report["accepted"]
    assert [k for k, ok in report["checks"].items() if not ok] == ["compliance"]
    assert report["reasons"] == [f"compliance: cancel_eligibility: agent call 2 cancel_order in turn 2 "
                                 f"broke a policy check: {INELIGIBLE}"]
    assert repair(ctx, task_of("O002"), dialog, report)["messages"] == bad
    # the model-backed validator decides on the same facts first: no model is asked
    llm = LLMTrajectoryValidation(backend=None).run(ctx, {"TaskSpec": task_of("O002"), "Dialog": dialog})
    assert llm["ValidationReport"]["accepted"] is False


def test_task_validation_calls_a_policy_breaking_gold_path_infeasible(spec, env):
    probe = OfflineTaskValidation()
    ok = probe.run(ctx_of(spec, env), {"TaskSpec": task_of("O001")})["Feasibility"]
    assert ok["feasible"], ok["reasons"]
    no = probe.run(ctx_of(spec, env), {"TaskSpec": task_of("O002")})["Feasibility"]
    assert not no["feasible"]
    assert no["reasons"] == [f"policy: cancel_eligibility: step 2 cancel_order broke a policy check: {INELIGIBLE}"]


def test_the_verifier_fails_and_the_reward_is_zero(spec, env):
    from trainer.rollout import Task, reward_of

    bad, final = dialogue(env, "O002")
    # a verifier of exactly this final state: only the policy can fail it
    verifier = verifier_from_diff(env, final)
    verdict = verifier.check(env, final, bad)
    assert not verdict.passed
    assert verdict.failures == [f"policy: cancel_eligibility: cancel_order broke a policy check: {INELIGIBLE}"]
    assert Verifier.model_validate(verifier.model_dump()).check(env, env.fork(), []).failures  # wrong state
    record = {"verifier": verifier.model_dump(mode="json")}
    task = Task("t1", "shop", record, env, env.tool_schemas(), None)
    reward, failures = reward_of(task, final, bad)
    assert reward == 0.0 and failures == verdict.failures

    good, good_final = dialogue(env, "O001")
    task = Task("t2", "shop", {"verifier": verifier_from_diff(env, good_final).model_dump(mode="json")},
                env, env.tool_schemas(), None)
    assert reward_of(task, good_final, good) == (1.0, [])


def test_eigen_verify_names_the_violation(spec, env):
    from runtime.store.replay import dialog_problems, gold_problems, verifier_problems

    bad, final = dialogue(env, "O002")
    dialog = dialog_of(bad, spec, env)
    record = {"messages": bad, "calls": dialog["calls"], "turns": dialog["turns"], "gold_calls": gold("O002"),
              "verifier": verifier_from_diff(env, final).model_dump(mode="json")}
    problems = dialog_problems(record, spec, env, final.hash())
    assert problems == [f"calls: policy: cancel_eligibility: cancel_order broke a policy check: {INELIGIBLE}"]
    gold_reasons, gold_env = gold_problems(record, env, final.hash())
    assert gold_reasons == []
    assert verifier_problems(record, env, gold_env) == [
        f"verifier: policy: cancel_eligibility: cancel_order broke a policy check: {INELIGIBLE}"]


# ---------------------------------------------------------------- environment actions


def test_actions_are_not_offered_to_a_model(spec, env):
    names = {t["function"]["name"] for side in ("agent", "user") for t in env.tool_schemas(side)}
    assert names.isdisjoint(spec.actions)


def test_actions_run_atomically_with_sync_and_typed_results(env):
    assert env.act("set_owner", {"name": "Ann"}, "user").ok
    assert env.user_db.to_json()["owner"] == "Ann"
    assert env.act("post_notice", {"text": "hi"}).value == 1  # default filled; side from the action
    failed = env.act("post_notice", {"text": "hi", "times": 5})
    assert (failed.ok, failed.error) == (False, "too many notices: 5")
    assert env.db.to_json()["notices"] == ["hi"]  # the half-written notice did not stick
    assert env.act("assert_order_status", {"order_id": "O001", "status": "pending"}).value is True
    wrong = env.act("broken_answer")
    assert not wrong.ok and "breaks its `returns:` type" in wrong.error
    assert env.db.to_json()["notices"] == ["hi"]
    # no action of that name: the side's tool runs (τ²-bench's set-up calls either), then sync
    flipped = env.act("toggle_airplane_mode", {"on": True}, "user")
    assert flipped.ok and flipped.value == "Airplane mode is on"
    assert env.user_db.to_json()["signal"] is False
    assert env.stats.calls == 0


@pytest.mark.parametrize("name, arguments, side, error", [
    ("set_owner", {"name": 7}, "user", "invalid arguments for action set_owner: name: 7 is not of type 'string'"),
    ("set_owner", "{", "user", "invalid arguments for action set_owner: arguments of set_owner are not valid JSON"),
    ("set_owner", {"name": "A"}, "agent", "action 'set_owner' acts on the user side, not the agent side"),
    ("set_ownr", {}, "user", "unknown action 'set_ownr' (nor a user tool); did you mean 'set_owner'?"),
    ("toggle_airplane_mode", {"on": True}, None, "pass side='user'"),
    ("get_order", {"order_id": "NOPE00"}, "agent", "Order NOPE00 not found"),
])
def test_bad_actions_are_explained_and_change_nothing(env, name, arguments, side, error):
    before = env.hash()
    result = env.act(name, arguments, side)
    assert not result.ok and error in result.error
    assert env.hash() == before
