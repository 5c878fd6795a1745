"""The retail domain: schema, tools (happy paths and every refusal, with τ²-bench's text),
rules, generator, and compatibility with τ²-bench's retail database shape.

Tool tests run on the small world of `retail_world.py`; the generator is tested on its own.
The τ²-bench quirks and the policy checks are in test_retail_tau2.py; replaying τ²-bench's own
gold actions on its own database is tests/tau2/test_conformance.py.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from eigenlang.domain import load_domain
from eigenlang.expr import compile_expr
from eigenlang.types import ModelT
from runtime.env import Environment, State
from runtime.env.impls import load_impl

from .retail_world import (BLACK_L, BLUE_M, BOTTLE, GREEN_M, LARGE, OMAR_CARD, OMAR_GIFT, RED_M,
                           SARA_CARD, SARA_GIFT, SARA_HOME, SARA_PAYPAL, SHIRT, SMALL, WORLD, DOMAIN_DIR,
                           broke_policy, db, domain, env, ok, refused)

REFERENCE = Path("/work/shared/reference/tau2_interfaces.json")


# ------------------------------------------------------------------------------ the program


def test_domain_loads_without_diagnostics():
    spec, diags = load_domain(DOMAIN_DIR)
    assert spec is not None
    assert [str(d) for d in diags] == []
    assert len(spec.tools) == 16 and spec.user_tools == {}
    assert spec.policy.startswith("# Retail customer service policy")


def test_world_fixture_matches_schema(domain):
    assert domain.schema.validate(WORLD, ModelT("RetailDB")) == []


def test_schema_rejects_bad_records(domain):
    bad = copy.deepcopy(WORLD)
    bad["orders"]["#W0000001"]["status"] = "shipped"
    bad["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT].pop("balance")
    errors = domain.schema.validate(bad, ModelT("RetailDB"))
    assert any("status" in e for e in errors) and any(SARA_GIFT in e for e in errors)


# ------------------------------------------------------------------------------ generic tools


def test_transfer_to_human_agents(env):
    before = env.hash()
    assert env.call("transfer_to_human_agents", {"summary": "wants a refund in cash"}).content == "Transfer successful"
    assert env.hash() == before


# ------------------------------------------------------------------------------ read tools


def test_find_user(env):
    assert ok(env, "find_user_id_by_email", email="Sara.Doe496@example.com") == "sara_doe_496"
    refused(env, "find_user_id_by_email", "User not found", email="nobody@example.com")
    assert ok(env, "find_user_id_by_name_zip", first_name="sara", last_name="DOE", zip="10001") == "sara_doe_496"
    refused(env, "find_user_id_by_name_zip", "User not found", first_name="Sara", last_name="Doe", zip="78701")
    # compared as given, as τ²-bench does: no trimming
    refused(env, "find_user_id_by_email", "User not found", email=" sara.doe496@example.com")
    refused(env, "find_user_id_by_name_zip", "User not found", first_name="Sara ", last_name="Doe", zip="10001")


def test_get_details(env):
    assert ok(env, "get_order_details", order_id="#W0000003")["status"] == "delivered"
    refused(env, "get_order_details", "Order not found", order_id="#W9999999")
    assert ok(env, "get_product_details", product_id=SHIRT)["variants"][RED_M]["price"] == 55.5
    refused(env, "get_product_details", "Product not found", product_id=RED_M)
    assert ok(env, "get_item_details", item_id=LARGE) == WORLD["products"][BOTTLE]["variants"][LARGE]
    refused(env, "get_item_details", "Item not found", item_id=SHIRT)
    assert ok(env, "get_user_details", user_id="omar_lee_101")["email"] == "omar.lee101@example.com"
    refused(env, "get_user_details", "User not found", user_id="sara_doe")
    assert env.call("list_all_product_types").content == \
        json.dumps({"T-Shirt": SHIRT, "Water Bottle": BOTTLE})


def test_bad_arguments_are_schema_errors(env):
    r = env.call("get_order_details", {"order": "#W0000001"})
    assert not r.ok and r.error == "schema"
    r = env.call("modify_pending_order_items", {"order_id": "#W0000001", "item_ids": BLUE_M,
                                                "new_item_ids": [RED_M], "payment_method_id": SARA_CARD})
    assert not r.ok and r.error == "schema"


# ------------------------------------------------------------------------------ pending orders


def test_cancel_pending_order(env):
    order = ok(env, "cancel_pending_order", order_id="#W0000001", reason="no longer needed")
    assert order["status"] == "cancelled" and order["cancel_reason"] == "no longer needed"
    assert order["payment_history"][-1] == {"transaction_type": "refund", "amount": 70.0,
                                            "payment_method_id": SARA_CARD}
    # a gift card is refunded at once
    ok(env, "cancel_pending_order", order_id="#W0000002", reason="ordered by mistake")
    assert db(env)["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 25.0


def test_cancel_pending_order_refusals(env):
    refused(env, "cancel_pending_order", "Order not found", order_id="#W9999999", reason="no longer needed")
    for order_id in ("#W0000003", "#W0000004", "#W0000005", "#W0000006"):
        refused(env, "cancel_pending_order", "Non-pending order cannot be cancelled", order_id=order_id,
                reason="no longer needed")
    refused(env, "cancel_pending_order", "Invalid reason", order_id="#W0000001", reason="too expensive")


def test_modify_pending_order_address(env):
    new = dict(address1="1 Main St", address2="", city="Boston", state="MA", country="USA", zip="02110")
    order = ok(env, "modify_pending_order_address", order_id="#W0000001", **new)
    assert order["address"] == {"address1": "1 Main St", "address2": "", "city": "Boston",
                                "country": "USA", "state": "MA", "zip": "02110"}
    assert db(env)["users"]["sara_doe_496"]["address"] == SARA_HOME  # the profile is untouched
    refused(env, "modify_pending_order_address", "Order not found", order_id="#W9", **new)
    refused(env, "modify_pending_order_address", "Non-pending order cannot be modified", order_id="#W0000004",
            **new)
    # τ²-bench's tool takes any status containing "pending"; the policy says the order is final
    order = broke_policy(env, "modify_pending_order_address", ["order_still_modifiable"], order_id="#W0000005",
                         **new)
    assert order["address"]["city"] == "Boston"


def test_modify_pending_order_payment(env):
    order = ok(env, "modify_pending_order_payment", order_id="#W0000001", payment_method_id=SARA_PAYPAL)
    assert order["payment_history"][1:] == [
        {"transaction_type": "payment", "amount": 70.0, "payment_method_id": SARA_PAYPAL},
        {"transaction_type": "refund", "amount": 70.0, "payment_method_id": SARA_CARD}]
    # moving off a gift card refunds it
    ok(env, "modify_pending_order_payment", order_id="#W0000002", payment_method_id=SARA_CARD)
    assert db(env)["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 25.0


def test_modify_pending_order_payment_onto_gift_card(domain):
    world = copy.deepcopy(WORLD)
    world["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] = 100.0
    env = Environment(domain, State.from_json(world))
    ok(env, "modify_pending_order_payment", order_id="#W0000001", payment_method_id=SARA_GIFT)
    assert db(env)["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 30.0


def test_modify_pending_order_payment_refusals(env):
    tool, args = "modify_pending_order_payment", {"order_id": "#W0000001"}
    refused(env, tool, "Order not found", order_id="#W9", payment_method_id=SARA_CARD)
    refused(env, tool, "Non-pending order cannot be modified", order_id="#W0000004", payment_method_id=SARA_PAYPAL)
    refused(env, tool, "Payment method not found", payment_method_id=OMAR_CARD, **args)
    refused(env, tool, "There should be exactly one payment for a pending order", order_id="#W0000005",
            payment_method_id=SARA_PAYPAL)
    refused(env, tool, "The new payment method should be different from the current one",
            payment_method_id=SARA_CARD, **args)
    refused(env, tool, "Insufficient gift card balance to pay for the order", payment_method_id=SARA_GIFT, **args)


def test_modify_pending_order_items_charge(env):
    order = ok(env, "modify_pending_order_items", order_id="#W0000001", item_ids=[BLUE_M],
               new_item_ids=[RED_M], payment_method_id=SARA_PAYPAL)
    assert order["status"] == "pending (item modified)"
    assert order["items"][0] == {"name": "T-Shirt", "product_id": SHIRT, "item_id": RED_M,
                                 "price": 55.5, "options": {"color": "red", "size": "M"}}
    assert order["items"][1]["item_id"] == SMALL
    assert order["payment_history"][-1] == {"transaction_type": "payment", "amount": 5.5,
                                            "payment_method_id": SARA_PAYPAL}
    # only once per order
    refused(env, "modify_pending_order_items", "Non-pending order cannot be modified", order_id="#W0000001",
            item_ids=[RED_M], new_item_ids=[BLACK_L], payment_method_id=SARA_PAYPAL)


def test_modify_pending_order_items_refund_to_gift_card(env):
    order = ok(env, "modify_pending_order_items", order_id="#W0000001", item_ids=[BLUE_M],
               new_item_ids=[BLACK_L], payment_method_id=SARA_GIFT)
    assert order["payment_history"][-1] == {"transaction_type": "refund", "amount": 10.0,
                                            "payment_method_id": SARA_GIFT}
    assert db(env)["users"]["sara_doe_496"]["payment_methods"][SARA_GIFT]["balance"] == 15.0


def test_modify_pending_order_items_refusals(env):
    base = {"order_id": "#W0000001", "payment_method_id": SARA_CARD}
    tool = "modify_pending_order_items"
    refused(env, tool, "Order not found", order_id="#W9", item_ids=[BLUE_M], new_item_ids=[RED_M],
            payment_method_id=SARA_CARD)
    for order_id in ("#W0000003", "#W0000005"):
        refused(env, tool, "Non-pending order cannot be modified", order_id=order_id, item_ids=[RED_M],
                new_item_ids=[BLACK_L], payment_method_id=SARA_CARD)
    refused(env, tool, "The number of items to be exchanged should match", item_ids=[BLUE_M, SMALL],
            new_item_ids=[RED_M], **base)
    refused(env, tool, f"{RED_M} not found", item_ids=[RED_M], new_item_ids=[BLACK_L], **base)
    refused(env, tool, f"{BLUE_M} not found", item_ids=[BLUE_M, BLUE_M], new_item_ids=[RED_M, BLACK_L], **base)
    refused(env, tool, f"New item {GREEN_M} not found or available", item_ids=[BLUE_M], new_item_ids=[GREEN_M],
            **base)
    refused(env, tool, "Variant not found", item_ids=[BLUE_M], new_item_ids=[LARGE], **base)
    refused(env, tool, "The new item id should be different from the old item id", item_ids=[BLUE_M],
            new_item_ids=[BLUE_M], **base)
    refused(env, tool, "Payment method not found", order_id="#W0000001", item_ids=[BLUE_M],
            new_item_ids=[RED_M], payment_method_id=OMAR_GIFT)
    refused(env, tool, "Insufficient gift card balance to pay for the new item", order_id="#W0000001",
            item_ids=[BLUE_M], new_item_ids=[RED_M], payment_method_id=SARA_GIFT)


# ------------------------------------------------------------------------------ delivered orders


def test_return_delivered_order_items(env):
    order = ok(env, "return_delivered_order_items", order_id="#W0000003", item_ids=[SMALL, BLUE_M, BLUE_M],
               payment_method_id=SARA_PAYPAL)
    assert order["status"] == "return requested"
    assert order["return_items"] == [BLUE_M, BLUE_M, SMALL]
    assert order["return_payment_method_id"] == SARA_PAYPAL
    assert order["payment_history"] == WORLD["orders"]["#W0000003"]["payment_history"]  # refund comes later
    refused(env, "return_delivered_order_items", "Non-delivered order cannot be returned", order_id="#W0000003",
            item_ids=[SMALL], payment_method_id=SARA_PAYPAL)


def test_return_to_gift_card(env):
    order = ok(env, "return_delivered_order_items", order_id="#W0000003", item_ids=[BLUE_M],
               payment_method_id=SARA_GIFT)
    assert order["return_payment_method_id"] == SARA_GIFT


def test_return_delivered_order_items_refusals(env):
    tool, base = "return_delivered_order_items", {"order_id": "#W0000003"}
    refused(env, tool, "Order not found", order_id="#W9", item_ids=[BLUE_M], payment_method_id=SARA_PAYPAL)
    refused(env, tool, "Non-delivered order cannot be returned", order_id="#W0000001", item_ids=[BLUE_M],
            payment_method_id=SARA_CARD)
    refused(env, tool, "Payment method not found", item_ids=[BLUE_M], payment_method_id=OMAR_GIFT, **base)
    refused(env, tool, "Payment method should be the original payment method", item_ids=[BLUE_M],
            payment_method_id=SARA_CARD, **base)
    refused(env, tool, "Some item not found", item_ids=[RED_M], payment_method_id=SARA_PAYPAL, **base)
    refused(env, tool, "Some item not found", item_ids=[BLUE_M, BLUE_M, BLUE_M], payment_method_id=SARA_PAYPAL,
            **base)


def test_exchange_delivered_order_items(env):
    order = ok(env, "exchange_delivered_order_items", order_id="#W0000003", item_ids=[SMALL, BLUE_M],
               new_item_ids=[LARGE, RED_M], payment_method_id=SARA_CARD)
    assert order["status"] == "exchange requested"
    assert order["exchange_items"] == [BLUE_M, SMALL]
    assert order["exchange_new_items"] == [RED_M, LARGE]
    assert order["exchange_payment_method_id"] == SARA_CARD
    assert order["exchange_price_difference"] == 15.5
    assert order["items"] == WORLD["orders"]["#W0000003"]["items"]  # items change on arrival
    refused(env, "exchange_delivered_order_items", "Non-delivered order cannot be exchanged", order_id="#W0000003",
            item_ids=[SMALL], new_item_ids=[LARGE], payment_method_id=SARA_CARD)


def test_exchange_delivered_order_items_refusals(env):
    tool, base = "exchange_delivered_order_items", {"order_id": "#W0000003"}
    refused(env, tool, "Order not found", order_id="#W9", item_ids=[BLUE_M], new_item_ids=[RED_M],
            payment_method_id=SARA_CARD)
    refused(env, tool, "Non-delivered order cannot be exchanged", order_id="#W0000004", item_ids=[LARGE],
            new_item_ids=[SMALL], payment_method_id=SARA_CARD)
    refused(env, tool, "The number of items to be exchanged should match.", item_ids=[BLUE_M], new_item_ids=[],
            payment_method_id=SARA_CARD, **base)
    refused(env, tool, f"Number of {LARGE} not found.", item_ids=[LARGE], new_item_ids=[SMALL],
            payment_method_id=SARA_CARD, **base)
    refused(env, tool, f"New item {GREEN_M} not found or available", item_ids=[BLUE_M], new_item_ids=[GREEN_M],
            payment_method_id=SARA_CARD, **base)
    refused(env, tool, "Variant not found", item_ids=[SMALL], new_item_ids=[RED_M],
            payment_method_id=SARA_CARD, **base)
    refused(env, tool, "Payment method not found", item_ids=[BLUE_M], new_item_ids=[RED_M],
            payment_method_id=OMAR_CARD, **base)
    refused(env, tool, "Insufficient gift card balance to pay for the price difference", item_ids=[BLUE_M],
            new_item_ids=[RED_M], payment_method_id=SARA_GIFT, **base)


def test_modify_user_address(env):
    user = ok(env, "modify_user_address", user_id="omar_lee_101", address1="5 Pine Road", address2="Apt 2",
              city="Denver", state="CO", country="USA", zip="80202")
    assert user["address"]["city"] == "Denver" and user["address"]["zip"] == "80202"
    assert db(env)["orders"]["#W0000007"]["address"] == SARA_HOME  # orders keep their address
    refused(env, "modify_user_address", "User not found", user_id="nobody", address1="x", address2="",
            city="x", state="x", country="USA", zip="1")


# ------------------------------------------------------------------------------ trajectory rules


def _call(name: str, turn: int, ok: bool = True, confirmed: bool = False, **arguments: Any) -> dict:
    kind = {"calculate": "generic", "transfer_to_human_agents": "generic"}.get(name, "read")
    if name.startswith(("cancel", "modify", "return", "exchange")):
        kind = "write"
    return {"name": name, "kind": kind, "arguments": arguments, "ok": ok, "error": None,
            "confirmed": confirmed, "turn": turn}


def _rule(domain, name: str, calls: list[dict]) -> bool:
    scope = {"calls": calls, "messages": [], "db": WORLD, "initial_db": WORLD, "now": domain.now}
    return bool(compile_expr(domain.rules[name].expr)(scope))


def test_rules(domain):
    find = _call("find_user_id_by_email", 1, email="sara.doe496@example.com")
    look = _call("get_order_details", 2, order_id="#W0000001")
    cancel = _call("cancel_pending_order", 3, order_id="#W0000001", reason="no longer needed")
    assert _rule(domain, "confirm_before_write", [find, look, dict(cancel, confirmed=True)])
    assert not _rule(domain, "confirm_before_write", [find, look, cancel])

    assert _rule(domain, "identify_user_first", [_call("get_product_details", 1, product_id=SHIRT), find, look])
    assert not _rule(domain, "identify_user_first", [look, dict(find, turn=3)])
    assert not _rule(domain, "identify_user_first", [dict(find, ok=False), look])

    other = _call("get_order_details", 3, order_id="#W0000007")
    assert _rule(domain, "one_user_per_conversation",
                 [find, look, _call("get_user_details", 3, user_id="sara_doe_496"), dict(other, ok=False),
                  _call("get_order_details", 4, ok=False, order_id="#W404")])
    assert not _rule(domain, "one_user_per_conversation", [find, look, other])
    assert not _rule(domain, "one_user_per_conversation",
                     [look, _call("get_user_details", 3, user_id="omar_lee_101")])

    transfer = _call("transfer_to_human_agents", 4, summary="x")
    assert _rule(domain, "transfer_ends_the_work", [find, look, transfer])
    assert not _rule(domain, "transfer_ends_the_work", [find, transfer, dict(look, turn=5)])
    assert not _rule(domain, "transfer_ends_the_work", [transfer, transfer])


# ------------------------------------------------------------------------------ τ²-bench compatibility


def test_tau2_db_file_loads(domain, tmp_path):
    path = tmp_path / "db.json"
    path.write_text(json.dumps(WORLD, indent=2))
    env = Environment.from_files(domain, path)
    assert env.db.to_json() == WORLD
    assert ok(env, "find_user_id_by_email", email="omar.lee101@example.com") == "omar_lee_101"


def _reference() -> dict:
    if not REFERENCE.is_file():
        pytest.skip("τ²-bench interface reference not available")
    return json.loads(REFERENCE.read_text())["domains"]["retail"]


def _fill(ref_db: dict, type_text: str, field: str, allowed: dict, n: int) -> Any:
    """A value of a τ²-bench type string, from the reference's field list only."""
    t = type_text.strip()
    aliases, models = ref_db["type_aliases"], ref_db["models"]
    if t in aliases:
        return _fill(ref_db, aliases[t], field, allowed, n)
    if field in allowed and t.split("[")[0] not in ("Optional",):
        return next(iter(allowed[field].values()))[n % len(next(iter(allowed[field].values())))]
    head, _, rest = t.partition("[")
    inner = rest[:-1]
    if head == "Optional":
        return _fill(ref_db, inner, field, allowed, n) if n % 2 else None
    if head == "Literal":
        return inner.split(",")[0].strip().strip("'\"")
    if head in ("List", "list"):
        return [_fill(ref_db, inner, field, allowed, n + i) for i in range(2)]
    if head in ("Dict", "dict"):
        value_type = inner.split(",", 1)[1]
        return {f"{field}_{n}_{i}": _fill(ref_db, value_type, field, allowed, n + i) for i in range(2)}
    if head == "Union":
        options = [o.strip() for o in inner.split(",")]
        return _fill(ref_db, options[n % len(options)], field, allowed, n)
    if t in models:
        model = models[t]
        allowed_here = model.get("allowed_values", {})
        return {name: _fill(ref_db, ftype, name, allowed_here, n) for name, ftype in model["fields"].items()}
    return {"str": f"{field}-{n}", "float": 10.5 + n, "int": n, "bool": n % 2 == 0}[t]


def test_reference_shaped_db_loads(domain, tmp_path):
    """A database filled only from τ²-bench's field list (every model, field, allowed value)
    loads through `Environment.from_files` and validates."""
    ref = _reference()["db"]
    data = _fill(ref, ref["root"], "root", {}, 1)
    path = tmp_path / "db.json"
    path.write_text(json.dumps(data))
    env = Environment.from_files(domain, path)
    assert domain.schema.validate(env.db.to_json(), ModelT("RetailDB")) == []


def test_names_match_reference(domain):
    ref = _reference()
    assert sorted(t["name"] for t in ref["tools"]) == sorted(domain.tools)
    for t in ref["tools"]:
        spec = domain.tools[t["name"]]
        assert [p["name"] for p in t["params"]] == list(spec.params), t["name"]
        assert t["kind"] == spec.kind, t["name"]
    models = ref["db"]["models"]
    assert set(models) == set(domain.schema.models)
    for name, model in models.items():
        # pydantic's field order (the order τ²-bench prints): inherited fields first, in the
        # base's order, an overridden field keeping its base position
        inherited = [f for base in model.get("bases", []) if base in models for f in models[base]["fields"]]
        order = list(dict.fromkeys(inherited + list(model["fields"])))
        assert order == list(domain.schema.models[name]), name
        for field_name in model["fields"]:
            assert domain.schema.models[name][field_name].required == (field_name in model["required"])
    assert set(ref["db"]["type_aliases"]) == set(domain.schema.aliases)


# ------------------------------------------------------------------------------ the generator


@pytest.fixture(scope="module")
def build(domain):
    return load_impl(domain.generate)


def test_generator_is_deterministic(build):
    a, b, c = (State.from_json(build(seed, 0.05)).hash() for seed in (3, 3, 4))
    assert a == b and a != c


def test_generated_db_validates_and_is_coherent(domain, build):
    data = build(11, 0.1)
    assert domain.schema.validate(data, ModelT("RetailDB")) == []
    products, users, orders = data["products"], data["users"], data["orders"]
    assert (len(products), len(users), len(orders)) == (5, 50, 100)
    statuses = {o["status"] for o in orders.values()}
    assert {"pending", "processed", "delivered", "cancelled"} <= statuses
    for order in orders.values():
        user = users[order["user_id"]]
        assert order["order_id"] in user["orders"]
        for line in order["items"]:
            variant = products[line["product_id"]]["variants"][line["item_id"]]
            assert (line["price"], line["options"]) == (variant["price"], variant["options"])
        for record in order["payment_history"]:
            assert record["payment_method_id"] in user["payment_methods"]
        shipped = [i for f in order["fulfillments"] for i in f["item_ids"]]
        if order["status"] in ("pending", "pending (item modified)", "cancelled"):
            assert shipped == []
        else:
            assert sorted(shipped) == sorted(line["item_id"] for line in order["items"])
        if order["status"] == "exchange requested":
            for new in order["exchange_new_items"]:
                assert any(new in products[l["product_id"]]["variants"] for l in order["items"])
    emails = [u["email"] for u in users.values()]
    assert len(set(emails)) == len(emails)


def test_generated_world_supports_the_tools(domain):
    env = Environment.from_domain(domain, seed=5, size=0.05)
    data = env.db.to_json()
    user = next(iter(data["users"].values()))
    assert ok(env, "find_user_id_by_email", email=user["email"]) == user["user_id"]
    pending = next(o for o in data["orders"].values() if o["status"] == "pending")
    ok(env, "cancel_pending_order", order_id=pending["order_id"], reason="no longer needed")
    assert db(env)["orders"][pending["order_id"]]["status"] == "cancelled"


def test_generator_full_size(build):
    start = time.perf_counter()
    data = build(0, 1.0)
    elapsed = time.perf_counter() - start
    assert (len(data["products"]), len(data["users"]), len(data["orders"])) == (50, 500, 1000)
    assert sum(len(p["variants"]) for p in data["products"].values()) > 300
    sources = {pm["source"] for u in data["users"].values() for pm in u["payment_methods"].values()}
    assert sources == {"credit_card", "paypal", "gift_card"}
    assert elapsed < 2.0


def test_generator_rejects_bad_size(build):
    for size in (0, -1, "big"):
        with pytest.raises(ValueError):
            build(0, size)
