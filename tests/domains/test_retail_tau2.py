"""The retail domain's τ²-bench fidelity on a small world: what prints exactly as τ²-bench
prints it, the τ²-bench quirks the tools keep (the list is in docs/tau2.md), and the `policy:`
checks that judge what τ²-bench's tools let through. The whole gold corpus replays in
tests/tau2/test_conformance.py.
"""

from __future__ import annotations

import copy
import random

from runtime.env import Environment, State
from runtime.workers.base import World, WorkerContext
from runtime.workers.offline.task_validation import OfflineTaskValidation

from .retail_world import (BLACK_L, BLUE_M, BOTTLE, LARGE, OMAR_CARD, RED_M, SARA_CARD, SARA_GIFT,
                           SARA_PAYPAL, SHIRT, SMALL, WORLD, broke_policy, db, domain, env, ok, refused)


# ------------------------------------------------------------------------------ output text


def test_calculate(env):
    """Python's arithmetic and Python's error texts, as τ²-bench's `eval` gives them."""
    assert ok(env, "calculate", expression="(2 + 3) * 4") == 20.0  # content "20.0"
    for expression, content in [("10 / 4", "2.5"), ("55.5 - 50 + 1 / 3", "5.83"), ("-(3 - 5)", "2.0"),
                                ("2**3", "8.0"), ("7 // 2", "3.0"), ("  1 + 1", "2.0"), (".5 * 3", "1.5"),
                                ("1+" * 400 + "1", "401.0"), ("2**-1", "0.5")]:
        assert env.call("calculate", {"expression": expression}).content == content, expression
    refused(env, "calculate", "Invalid characters in expression", expression="__import__('os')")
    refused(env, "calculate", "Invalid characters in expression", expression="2 % 3")
    refused(env, "calculate", "'(' was never closed (<string>, line 1)", expression="(1 + 2")
    refused(env, "calculate", "invalid syntax (<string>, line 1)", expression="1 +")
    refused(env, "calculate", "invalid syntax (<string>, line 0)", expression="   ")
    refused(env, "calculate", "division by zero", expression="1 / (2 - 2)")
    refused(env, "calculate", "float division by zero", expression="1.0 / 0")
    refused(env, "calculate", "float() argument must be a string or a real number, not 'tuple'",
            expression="()")
    refused(env, "calculate", "'int' object is not callable", expression="(1)(2)")
    refused(env, "calculate", "(34, 'Numerical result out of range')", expression="2.0 ** 10000")
    # where τ²-bench would compute for hours, we refuse (never the agent's problem in practice)
    refused(env, "calculate", "Result too large", expression="9**9**9")


def test_outputs_print_like_tau2(domain):
    """Models print as τ²-bench's `json.dumps(model_dump())`, whatever the order and gaps of the
    loaded data: declared field order (inherited payment-method fields first), every optional
    field present (null), ASCII escapes."""
    world = copy.deepcopy(WORLD)
    sara = world["users"]["sara_doe_496"]
    sara["name"]["first_name"] = "Sára"
    sara["payment_methods"] = {k: dict(reversed(list(m.items()))) for k, m in sara["payment_methods"].items()}
    order = world["orders"]["#W0000002"]
    for key in [k for k, v in order.items() if v is None]:
        del order[key]
    env = Environment.from_data(domain, world)
    content = env.call("get_user_details", {"user_id": "sara_doe_496"}).content
    assert '"name": {"first_name": "S\\u00e1ra", "last_name": "Doe"}' in content
    assert '"payment_methods": {"credit_card_1111111": {"source": "credit_card", "id": "credit_card_1111111", ' \
           '"brand": "visa", "last_four": "1234"}, "paypal_2222222": {"source": "paypal", "id": "paypal_2222222"}, ' \
           '"gift_card_3333333": {"source": "gift_card", "id": "gift_card_3333333", "balance": 5.0}}' in content
    content = env.call("get_order_details", {"order_id": "#W0000002"}).content
    assert content.endswith('"payment_history": [{"transaction_type": "payment", "amount": 20.0, '
                            '"payment_method_id": "gift_card_3333333"}], "cancel_reason": null, '
                            '"exchange_items": null, "exchange_new_items": null, "exchange_payment_method_id": null, '
                            '"exchange_price_difference": null, "return_items": null, '
                            '"return_payment_method_id": null}')


# ------------------------------------------------------------------------------ quirks kept


def test_cancel_after_payment_change_refunds_every_entry(env):
    """τ²-bench's quirk: cancelling refunds every payment-history entry, refunds included, so
    after a payment change the old method is refunded twice (gift cards at once)."""
    ok(env, "modify_pending_order_payment", order_id="#W0000002", payment_method_id=SARA_CARD)
    assert db(env)["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 25.0
    order = ok(env, "cancel_pending_order", order_id="#W0000002", reason="no longer needed")
    assert order["payment_history"] == [
        {"transaction_type": "payment", "amount": 20.0, "payment_method_id": SARA_GIFT},
        {"transaction_type": "payment", "amount": 20.0, "payment_method_id": SARA_CARD},
        {"transaction_type": "refund", "amount": 20.0, "payment_method_id": SARA_GIFT},
        {"transaction_type": "refund", "amount": 20.0, "payment_method_id": SARA_GIFT},
        {"transaction_type": "refund", "amount": 20.0, "payment_method_id": SARA_CARD},
        {"transaction_type": "refund", "amount": 20.0, "payment_method_id": SARA_GIFT}]
    assert db(env)["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 65.0


def test_cancel_keeps_refunds_made_before_failing(domain):
    """τ²-bench refunds gift cards inside its loop and keeps them when a later payment's method
    is gone: the call fails, the earlier refund stays, the order is not cancelled."""
    world = copy.deepcopy(WORLD)
    world["orders"]["#W0000002"]["payment_history"].append(
        {"transaction_type": "payment", "amount": 3.0, "payment_method_id": "credit_card_0000000"})
    env = Environment(domain, State.from_json(world))
    r = env.call("cancel_pending_order", {"order_id": "#W0000002", "reason": "no longer needed"})
    assert (r.ok, r.content) == (False, "Error: Payment method not found")
    after = db(env)
    assert after["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 25.0
    assert after["orders"]["#W0000002"] == world["orders"]["#W0000002"]


def test_modify_pending_order_payment_keeps_the_charge_when_the_old_method_is_gone(domain):
    """τ²-bench looks the old method up after charging the new one: when it is gone, the call
    fails and the charge (history and gift-card balance) stays."""
    world = copy.deepcopy(WORLD)
    world["orders"]["#W0000001"]["payment_history"][0]["payment_method_id"] = "credit_card_0000000"
    world["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] = 100.0
    env = Environment(domain, State.from_json(world))
    r = env.call("modify_pending_order_payment", {"order_id": "#W0000001", "payment_method_id": SARA_GIFT})
    assert (r.ok, r.content) == (False, "Error: Payment method not found")
    after = db(env)
    assert after["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 30.0
    assert [p["payment_method_id"] for p in after["orders"]["#W0000001"]["payment_history"]] == \
        ["credit_card_0000000", SARA_GIFT, "credit_card_0000000"]


def test_modify_pending_order_items_takes_the_last_variant_for_every_item(env):
    """τ²-bench's quirk: every modified line gets the price and options of the *last* new
    variant; the difference (40 - 50 + 30 - 20 = 0) is still recorded, as a 0.0 refund."""
    order = ok(env, "modify_pending_order_items", order_id="#W0000001", item_ids=[BLUE_M, SMALL],
               new_item_ids=[BLACK_L, LARGE], payment_method_id=SARA_GIFT)
    assert order["items"] == [
        {"name": "T-Shirt", "product_id": SHIRT, "item_id": BLACK_L, "price": 30.0, "options": {"capacity": "1000ml"}},
        {"name": "Water Bottle", "product_id": BOTTLE, "item_id": LARGE, "price": 30.0,
         "options": {"capacity": "1000ml"}}]
    assert order["payment_history"][1:] == [{"transaction_type": "refund", "amount": 0.0,
                                             "payment_method_id": SARA_GIFT}]
    assert '"amount": 0.0,' in env.call("get_order_details", {"order_id": "#W0000001"}).content


def test_modify_pending_order_items_records_the_difference_unrounded(domain):
    """τ²-bench's quirk: the price difference is stored as the float sum, not rounded
    (53.48 - 53.27 = 0.20999999999999375), while a gift card's balance is rounded."""
    world = copy.deepcopy(WORLD)
    world["products"][SHIRT]["variants"][RED_M]["price"] = 53.48
    world["orders"]["#W0000001"]["items"][0]["price"] = 53.27
    world["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] = 10.0
    env = Environment(domain, State.from_json(world))
    order = ok(env, "modify_pending_order_items", order_id="#W0000001", item_ids=[BLUE_M],
               new_item_ids=[RED_M], payment_method_id=SARA_GIFT)
    assert order["payment_history"][-1]["amount"] == 53.48 - 53.27 == 0.20999999999999375
    assert db(env)["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 9.79


# ------------------------------------------------------------------------------ policy checks
# What τ²-bench's tools let through but its policy forbids: the call runs (the database
# changes as in τ²-bench), and the trajectory records the violation.


def test_over_eager_agent_breaks_policy(env):
    order = broke_policy(env, "exchange_delivered_order_items", ["different_variant"], order_id="#W0000003",
                         item_ids=[BLUE_M], new_item_ids=[BLUE_M], payment_method_id=SARA_CARD)
    assert (order["status"], order["exchange_price_difference"]) == ("exchange requested", 0.0)
    order = broke_policy(env, "return_delivered_order_items", ["items_listed"], order_id="#W0000007",
                         item_ids=[], payment_method_id=OMAR_CARD)
    assert (order["status"], order["return_items"]) == ("return requested", [])
    order = broke_policy(env, "modify_pending_order_items", ["items_listed"], order_id="#W0000001",
                         item_ids=[], new_item_ids=[], payment_method_id=SARA_CARD)
    assert order["status"] == "pending (item modified)"
    assert [v.rule for v in env.stats.violations] == ["different_variant", "items_listed", "items_listed"]


def test_task_validation_rejects_gold_paths_that_break_policy(domain, env):
    """Offline generation keeps rejecting infeasible tasks: a planned path that the tools allow
    but the policy forbids is infeasible, with the rule named."""
    ctx = WorkerContext(domain=domain, env=env, world=World(domain=domain, db=WORLD, user_db=None, now=domain.now),
                        rng=random.Random(0), node="TaskValidation", agent="TaskValidation", round=0)
    find = {"name": "find_user_id_by_email", "arguments": {"email": "sara.doe496@example.com"}}

    def probe(call: dict) -> dict:
        return OfflineTaskValidation().run(ctx, {"TaskSpec": {"gold_calls": [find, call]}})["Feasibility"]

    same = probe({"name": "exchange_delivered_order_items", "arguments": {
        "order_id": "#W0000003", "item_ids": [BLUE_M], "new_item_ids": [BLUE_M], "payment_method_id": SARA_PAYPAL}})
    assert not same["feasible"] and "different_variant" in same["reasons"][0]
    final = probe({"name": "modify_pending_order_address", "arguments": {
        "order_id": "#W0000005", "address1": "1 Main St", "address2": "", "city": "Boston", "state": "MA",
        "country": "USA", "zip": "02110"}})
    assert not final["feasible"] and "order_still_modifiable" in final["reasons"][0]
    fine = probe({"name": "exchange_delivered_order_items", "arguments": {
        "order_id": "#W0000003", "item_ids": [BLUE_M], "new_item_ids": [RED_M], "payment_method_id": SARA_PAYPAL}})
    assert fine["feasible"], fine["reasons"]


def test_policy_keeping_calls_have_no_violations(env):
    for tool, args in [
        ("exchange_delivered_order_items", {"order_id": "#W0000003", "item_ids": [BLUE_M],
                                            "new_item_ids": [RED_M], "payment_method_id": SARA_CARD}),
        ("return_delivered_order_items", {"order_id": "#W0000007", "item_ids": [BLACK_L],
                                          "payment_method_id": OMAR_CARD}),
        ("modify_pending_order_address", {"order_id": "#W0000001", "address1": "1 Main St", "address2": "",
                                          "city": "Boston", "state": "MA", "country": "USA", "zip": "02110"}),
        ("modify_pending_order_items", {"order_id": "#W0000001", "item_ids": [BLUE_M], "new_item_ids": [RED_M],
                                        "payment_method_id": SARA_CARD}),
    ]:
        r = env.call(tool, args)
        assert r.ok and r.violations == (), (tool, r)


# ------------------------------------------------------------------------------ τ²-bench actions


def test_tau2_style_actions_replay(env):
    """A task's expected actions, written as τ²-bench writes them, replay on our tools."""
    actions = [
        {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Sara", "last_name": "Doe", "zip": "10001"}},
        {"name": "get_user_details", "arguments": {"user_id": "sara_doe_496"}},
        {"name": "get_order_details", "arguments": {"order_id": "#W0000003"}},
        {"name": "get_product_details", "arguments": {"product_id": SHIRT}},
        {"name": "exchange_delivered_order_items", "arguments": {
            "order_id": "#W0000003", "item_ids": [BLUE_M], "new_item_ids": [BLACK_L],
            "payment_method_id": SARA_PAYPAL}},
        {"name": "modify_pending_order_address", "arguments": {
            "order_id": "#W0000001", "address1": "1 Main St", "address2": "", "city": "Boston",
            "state": "MA", "country": "USA", "zip": "02110"}},
        {"name": "cancel_pending_order", "arguments": {"order_id": "#W0000002", "reason": "ordered by mistake"}},
    ]
    results = env.replay(actions)
    assert all(r.ok for r in results), [r.content for r in results if not r.ok]
    final = db(env)
    assert final["orders"]["#W0000003"]["exchange_price_difference"] == -10.0
    assert final["orders"]["#W0000002"]["status"] == "cancelled"
    # the same actions from the same state give the same state
    again = Environment(env.domain, State.from_json(copy.deepcopy(WORLD)))
    again.replay(actions)
    assert again.hash() == env.hash()
