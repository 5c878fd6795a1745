"""What the retail tests share: a small hand-written world (`WORLD`) whose prices and
balances are known, so that every amount can be asserted exactly, the `domain` and `env`
fixtures over it (import them into a test module), and call helpers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from eigenlang.domain import load_domain  # re-exported as eigenlang.load_domain (CONTRACTS §5)
from runtime.env import Environment, State

DOMAIN_DIR = Path(__file__).resolve().parents[2] / "domains" / "retail"


def _address(address1: str, city: str, state: str, zip: str) -> dict[str, str]:
    return {"address1": address1, "address2": "Suite 100", "city": city, "country": "USA",
            "state": state, "zip": zip}


SHIRT, BOTTLE = "6086499569", "8310926033"
BLUE_M, RED_M, GREEN_M, BLACK_L = "1111111111", "2222222222", "3333333333", "4444444444"
SMALL, LARGE = "5555555555", "6666666666"
SARA_CARD, SARA_PAYPAL, SARA_GIFT = "credit_card_1111111", "paypal_2222222", "gift_card_3333333"
OMAR_CARD, OMAR_GIFT = "credit_card_4444444", "gift_card_5555555"
SARA_HOME = _address("12 Oak Street", "New York", "NY", "10001")


def _variant(item_id: str, options: dict, available: bool, price: float) -> dict:
    return {"item_id": item_id, "options": options, "available": available, "price": price}


def _line(product: str, item_id: str) -> dict:
    p = WORLD["products"][product]
    v = p["variants"][item_id]
    return {"name": p["name"], "product_id": product, "item_id": item_id, "price": v["price"],
            "options": dict(v["options"])}


def _order(order_id: str, user: str, status: str, lines: list[dict], payments: list[tuple],
           **extra: Any) -> dict:
    shipped = status in ("processed", "delivered", "return requested", "exchange requested")
    order = {
        "order_id": order_id, "user_id": user, "address": dict(SARA_HOME), "items": lines,
        "status": status,
        "fulfillments": [{"tracking_id": ["123456789012"], "item_ids": [l["item_id"] for l in lines]}]
        if shipped else [],
        "payment_history": [{"transaction_type": t, "amount": a, "payment_method_id": m}
                            for t, a, m in payments],
        "cancel_reason": None, "exchange_items": None, "exchange_new_items": None,
        "exchange_payment_method_id": None, "exchange_price_difference": None,
        "return_items": None, "return_payment_method_id": None,
    }
    order.update(extra)
    return order


WORLD: dict[str, Any] = {
    "products": {
        SHIRT: {"name": "T-Shirt", "product_id": SHIRT, "variants": {
            BLUE_M: _variant(BLUE_M, {"color": "blue", "size": "M"}, True, 50.0),
            RED_M: _variant(RED_M, {"color": "red", "size": "M"}, True, 55.5),
            GREEN_M: _variant(GREEN_M, {"color": "green", "size": "M"}, False, 45.0),
            BLACK_L: _variant(BLACK_L, {"color": "black", "size": "L"}, True, 40.0)}},
        BOTTLE: {"name": "Water Bottle", "product_id": BOTTLE, "variants": {
            SMALL: _variant(SMALL, {"capacity": "500ml"}, True, 20.0),
            LARGE: _variant(LARGE, {"capacity": "1000ml"}, True, 30.0)}},
    },
    "users": {
        "sara_doe_496": {
            "user_id": "sara_doe_496", "name": {"first_name": "Sara", "last_name": "Doe"},
            "address": dict(SARA_HOME), "email": "sara.doe496@example.com",
            "payment_methods": {
                SARA_CARD: {"source": "credit_card", "id": SARA_CARD, "brand": "visa", "last_four": "1234"},
                SARA_PAYPAL: {"source": "paypal", "id": SARA_PAYPAL},
                SARA_GIFT: {"source": "gift_card", "id": SARA_GIFT, "balance": 5.0}},
            "orders": ["#W0000001", "#W0000002", "#W0000003", "#W0000004", "#W0000005", "#W0000006"]},
        "omar_lee_101": {
            "user_id": "omar_lee_101", "name": {"first_name": "Omar", "last_name": "Lee"},
            "address": _address("9 Elm Street", "Austin", "TX", "78701"), "email": "omar.lee101@example.com",
            "payment_methods": {
                OMAR_CARD: {"source": "credit_card", "id": OMAR_CARD, "brand": "amex", "last_four": "9876"},
                OMAR_GIFT: {"source": "gift_card", "id": OMAR_GIFT, "balance": 500.0}},
            "orders": ["#W0000007"]},
    },
    "orders": {},
}
WORLD["orders"] = {o["order_id"]: o for o in [
    _order("#W0000001", "sara_doe_496", "pending", [_line(SHIRT, BLUE_M), _line(BOTTLE, SMALL)],
           [("payment", 70.0, SARA_CARD)]),
    _order("#W0000002", "sara_doe_496", "pending", [_line(BOTTLE, SMALL)], [("payment", 20.0, SARA_GIFT)]),
    _order("#W0000003", "sara_doe_496", "delivered",
           [_line(SHIRT, BLUE_M), _line(SHIRT, BLUE_M), _line(BOTTLE, SMALL)],
           [("payment", 120.0, SARA_PAYPAL)]),
    _order("#W0000004", "sara_doe_496", "processed", [_line(BOTTLE, LARGE)], [("payment", 30.0, SARA_CARD)]),
    _order("#W0000005", "sara_doe_496", "pending (item modified)", [_line(SHIRT, RED_M)],
           [("payment", 50.0, SARA_CARD), ("payment", 5.5, SARA_CARD)]),
    _order("#W0000006", "sara_doe_496", "cancelled", [_line(BOTTLE, SMALL)],
           [("payment", 20.0, SARA_CARD), ("refund", 20.0, SARA_CARD)], cancel_reason="ordered by mistake"),
    _order("#W0000007", "omar_lee_101", "delivered", [_line(SHIRT, BLACK_L)], [("payment", 40.0, OMAR_CARD)]),
]}


@pytest.fixture(scope="module")
def domain():
    spec, diags = load_domain(DOMAIN_DIR)
    assert spec is not None, [str(d) for d in diags]
    return spec


@pytest.fixture
def env(domain) -> Environment:
    return Environment(domain, State.from_json(copy.deepcopy(WORLD)))


def ok(env: Environment, tool: str, **args: Any) -> Any:
    r = env.call(tool, args)
    assert r.ok, r.content
    try:
        return json.loads(r.content)
    except ValueError:
        return r.content


def refused(env: Environment, tool: str, expect: str, **args: Any) -> str:
    """The call fails with exactly `Error: <expect>` (τ²-bench's text), the state unchanged."""
    before = env.hash()
    r = env.call(tool, args)
    assert not r.ok, f"{tool} should have been refused: {r.content}"
    assert r.error in ("precondition", "tool_error"), r
    assert r.content == f"Error: {expect}"
    assert env.hash() == before
    return r.content


def broke_policy(env: Environment, tool: str, rules: list[str], **args: Any) -> Any:
    """The call runs (τ²-bench lets it through) but breaks exactly these policy rules."""
    r = env.call(tool, args)
    assert r.ok, r.content
    assert [v.rule for v in r.violations] == rules
    assert all(v.tool == tool for v in r.violations)
    assert "policy" not in r.content.lower()  # the agent is not told
    return json.loads(r.content)


def db(env: Environment) -> dict:
    return env.db.to_json()
