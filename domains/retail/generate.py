"""Seeded generator of retail worlds: products with variants, users, and their orders.

`build(seed, size)` returns a JSON-ready `RetailDB` (the τ²-bench shape). At size 1.0 it has
the benchmark's scale: 50 products, 500 users, 1,000 orders. `size` scales users and orders
linearly and products up to the 50 product types of the catalogue; small sizes keep a floor
(5 products, 5 users, 10 orders) so the world stays coherent enough for every tool to apply.

Determinism: one `random.Random(seed)` drives everything, in a fixed order; no clock, no
global random, dict/set iteration only over insertion-ordered dicts.

Coherence kept by construction:
- every order item is a real variant of its product, at the variant's price and options;
- payment methods used by an order belong to its user; totals match the items;
- status-specific fields follow the status: cancelled orders carry a reason and a refund,
  shipped ones (processed, delivered, return/exchange requested) have fulfillments that cover
  their items, requested exchanges name available variants of the same product with the
  price difference, "pending (item modified)" orders carry the price-difference transaction.
"""

from __future__ import annotations

import importlib.util
import itertools
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def _load_data() -> ModuleType:
    """Load the sibling `data.py` by path: the runtime loads domain files by path, not as a
    package, so a relative import would not work."""
    name = "_eigenlang_domain_retail_data"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("data.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


data = _load_data()

# Shares of order statuses (weights, not necessarily summing to 1).
STATUS_WEIGHTS: dict[str, float] = {
    "pending": 0.22,
    "pending (item modified)": 0.03,
    "processed": 0.15,
    "delivered": 0.35,
    "cancelled": 0.10,
    "return requested": 0.07,
    "exchange requested": 0.08,
}
SHIPPED = {"processed", "delivered", "return requested", "exchange requested"}


class _Ids:
    """Unique random numeric ids of a fixed width, drawn from the generator's rng."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def digits(self, width: int, prefix: str = "") -> str:
        while True:
            candidate = prefix + str(self.rng.randrange(10 ** (width - 1), 10**width))
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate


def _counts(size: float) -> tuple[int, int, int]:
    products = min(len(data.CATALOGUE), max(5, round(50 * size)))
    users = max(5, round(500 * size))
    orders = max(10, round(1000 * size))
    return products, users, orders


def _products(rng: random.Random, ids: _Ids, n: int) -> dict[str, Any]:
    products: dict[str, Any] = {}
    for name, (low, high), axes in rng.sample(data.CATALOGUE, n):
        combos = list(itertools.product(*(values for _, values in axes)))
        chosen = rng.sample(combos, rng.randint(min(4, len(combos)), min(18, len(combos))))
        base = rng.uniform(low, high)
        product_id = ids.digits(10)
        variants: dict[str, Any] = {}
        for combo in chosen:
            item_id = ids.digits(10)
            variants[item_id] = {
                "item_id": item_id,
                "options": {axis: value for (axis, _), value in zip(axes, combo)},
                "available": rng.random() < 0.7,
                "price": round(base * rng.uniform(0.85, 1.2), 2),
            }
        # At least two available variants, so that every product can be exchanged into.
        for variant in list(variants.values())[:2]:
            variant["available"] = True
        products[product_id] = {"name": name, "product_id": product_id, "variants": variants}
    return products


def _address(rng: random.Random) -> dict[str, str]:
    city, state, zip_prefix = rng.choice(data.CITIES)
    return {
        "address1": f"{rng.randint(10, 9999)} {rng.choice(data.STREET_NAMES)}",
        "address2": f"{rng.choice(data.UNIT_PREFIXES)} {rng.randint(100, 999)}",
        "city": city,
        "country": "USA",
        "state": state,
        "zip": f"{zip_prefix}{rng.randint(0, 99):02d}",
    }


def _payment_methods(rng: random.Random, ids: _Ids) -> dict[str, Any]:
    sources = rng.choices(
        [["credit_card"], ["paypal"], ["gift_card"], ["credit_card", "paypal"],
         ["credit_card", "gift_card"], ["paypal", "gift_card"],
         ["credit_card", "credit_card"], ["credit_card", "paypal", "gift_card"]],
        weights=[22, 12, 10, 16, 14, 8, 8, 10],
    )[0]
    methods: dict[str, Any] = {}
    for source in sources:
        pm_id = ids.digits(7, prefix=f"{source}_")
        if source == "credit_card":
            methods[pm_id] = {"source": "credit_card", "id": pm_id,
                              "brand": rng.choice(data.CARD_BRANDS),
                              "last_four": f"{rng.randint(0, 9999):04d}"}
        elif source == "paypal":
            methods[pm_id] = {"source": "paypal", "id": pm_id}
        else:
            methods[pm_id] = {"source": "gift_card", "id": pm_id,
                              "balance": float(rng.randint(0, 250))}
    return methods


def _users(rng: random.Random, ids: _Ids, n: int) -> dict[str, Any]:
    users: dict[str, Any] = {}
    identities: set[tuple[str, str, str]] = set()  # (first, last, zip) finds one user
    while len(users) < n:
        first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
        address = _address(rng)
        if (first, last, address["zip"]) in identities:
            continue
        identities.add((first, last, address["zip"]))
        user_id = ids.digits(4, prefix=f"{first.lower()}_{last.lower()}_")
        email = ids.digits(4, prefix=f"{first.lower()}.{last.lower()}") + "@example.com"
        users[user_id] = {
            "user_id": user_id,
            "name": {"first_name": first, "last_name": last},
            "address": address,
            "email": email,
            "payment_methods": _payment_methods(rng, ids),
            "orders": [],
        }
    return users


def _order_item(product: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    return {"name": product["name"], "product_id": product["product_id"],
            "item_id": variant["item_id"], "price": variant["price"],
            "options": dict(variant["options"])}


def _other_available(rng: random.Random, product: dict[str, Any], item_id: str) -> dict | None:
    """Another available variant of the product (for modifications and exchanges)."""
    others = [v for v in product["variants"].values() if v["available"] and v["item_id"] != item_id]
    return rng.choice(others) if others else None


def _items(rng: random.Random, products: dict[str, Any]) -> list[dict[str, Any]]:
    product_list = list(products.values())
    count = rng.choices([1, 2, 3, 4, 5], weights=[30, 30, 20, 12, 8])[0]
    items = []
    for product in rng.sample(product_list, min(count, len(product_list))):
        items.append(_order_item(product, rng.choice(list(product["variants"].values()))))
    if rng.random() < 0.04:  # the same item twice in one order happens; tools must count
        items.append(dict(items[0], options=dict(items[0]["options"])))
    return items


def _fulfillments(rng: random.Random, ids: _Ids, items: list[dict]) -> list[dict[str, Any]]:
    item_ids = [item["item_id"] for item in items]
    if len(item_ids) > 1 and rng.random() < 0.3:  # shipped in two parcels
        cut = rng.randint(1, len(item_ids) - 1)
        parts = [item_ids[:cut], item_ids[cut:]]
    else:
        parts = [item_ids]
    return [{"tracking_id": [ids.digits(12)], "item_ids": part} for part in parts]


def _order(rng: random.Random, ids: _Ids, products: dict, user: dict) -> dict[str, Any]:
    status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
    items = _items(rng, products)
    methods = list(user["payment_methods"])
    total = round(sum(i["price"] for i in items), 2)
    # Gift cards pay for small baskets; larger ones go on a card or paypal when there is one.
    big_payers = [m for m in methods if user["payment_methods"][m]["source"] != "gift_card"]
    pay_with = rng.choice(big_payers if total > 300 and big_payers else methods)
    order: dict[str, Any] = {
        "order_id": ids.digits(7, prefix="#W"),
        "user_id": user["user_id"],
        "address": dict(user["address"]) if rng.random() < 0.9 else _address(rng),
        "items": items,
        "status": status,
        "fulfillments": [],
        "payment_history": [{"transaction_type": "payment",
                             "amount": total,
                             "payment_method_id": pay_with}],
        "cancel_reason": None,
        "exchange_items": None,
        "exchange_new_items": None,
        "exchange_payment_method_id": None,
        "exchange_price_difference": None,
        "return_items": None,
        "return_payment_method_id": None,
    }
    if status in SHIPPED:
        order["fulfillments"] = _fulfillments(rng, ids, items)
    if status == "cancelled":
        order["cancel_reason"] = rng.choice(["no longer needed", "ordered by mistake"])
        order["payment_history"].append({"transaction_type": "refund",
                                         "amount": order["payment_history"][0]["amount"],
                                         "payment_method_id": pay_with})
    elif status == "pending (item modified)":
        _modify_one_item(rng, order, products, rng.choice(methods))
    elif status == "return requested":
        chosen = rng.sample(items, rng.randint(1, len(items)))
        order["return_items"] = sorted(item["item_id"] for item in chosen)
        gift_cards = [m for m, pm in user["payment_methods"].items() if pm["source"] == "gift_card"]
        order["return_payment_method_id"] = rng.choice([pay_with, *gift_cards])
    elif status == "exchange requested":
        _request_exchange(rng, order, products, rng.choice(methods))
    return order


def _modify_one_item(rng: random.Random, order: dict, products: dict, pm_id: str) -> None:
    item = rng.choice(order["items"])
    new = _other_available(rng, products[item["product_id"]], item["item_id"])
    if new is None:
        order["status"] = "pending"
        return
    diff = round(new["price"] - item["price"], 2)
    item.update(item_id=new["item_id"], price=new["price"], options=dict(new["options"]))
    if diff != 0:
        order["payment_history"].append({"transaction_type": "payment" if diff > 0 else "refund",
                                         "amount": abs(diff), "payment_method_id": pm_id})


def _request_exchange(rng: random.Random, order: dict, products: dict, pm_id: str) -> None:
    old, new = [], []
    for item in rng.sample(order["items"], rng.randint(1, len(order["items"]))):
        variant = _other_available(rng, products[item["product_id"]], item["item_id"])
        if variant is not None:
            old.append(item)
            new.append(variant)
    if not old:
        order["status"] = "delivered"
        return
    order["exchange_items"] = sorted(i["item_id"] for i in old)
    order["exchange_new_items"] = sorted(v["item_id"] for v in new)
    order["exchange_payment_method_id"] = pm_id
    order["exchange_price_difference"] = round(
        sum(v["price"] for v in new) - sum(i["price"] for i in old), 2)


def build(seed: int, size: float = 1.0) -> dict[str, Any]:
    """A JSON-ready RetailDB for `seed`; `size` scales the entity counts (1.0 = τ²-bench)."""
    if not isinstance(size, (int, float)) or isinstance(size, bool) or not size > 0:
        raise ValueError(f"size must be a positive number, got {size!r}")
    rng = random.Random(seed)
    ids = _Ids(rng)
    n_products, n_users, n_orders = _counts(float(size))
    products = _products(rng, ids, n_products)
    users = _users(rng, ids, n_users)
    user_list = list(users.values())
    # Every user gets an order first (when there are enough orders), the rest go at random.
    owners = user_list[:n_orders] + [rng.choice(user_list) for _ in range(n_orders - len(user_list))]
    rng.shuffle(owners)
    orders: dict[str, Any] = {}
    for user in owners:
        order = _order(rng, ids, products, user)
        orders[order["order_id"]] = order
        user["orders"].append(order["order_id"])
    return {"products": products, "users": users, "orders": orders}
