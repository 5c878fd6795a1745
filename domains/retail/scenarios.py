"""Offline task recipes of the retail domain (docs/CONTRACTS.md §7).

`seed(rng, world, difficulty)` picks what a customer wants and which order it is about;
`task(rng, world, seed)` plans what a policy-following agent does: identify the customer (by
email, or by name and zip), read the profile and the order (and the products involved), then
make the one change. Orders are sampled as customers bring them: mostly one whose status fits
the request, sometimes any of theirs. Nothing is filtered for feasibility: cancelling an order
that already shipped, a variant that is sold out, a gift card short of the price difference or
a refund to a method the policy does not allow make the gold path fail (the tools refuse, as
τ²-bench's do); exchanging an item for itself or changing an order whose items were already
changed breaks a `policy:` check (the tools allow it, as τ²-bench's do). TaskValidation
rejects both kinds with the reason.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.workers.offline.intents import (
    Intents,
    gold_call,
    pad_reads,
    pick_intent,
    plan_intent,
)


def _load_data() -> ModuleType:
    """The sibling `data.py`, loaded by path (domain files are not a package)."""
    name = "_eigenlang_domain_retail_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("data.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


data = _load_data()

FITTING_SHARE = 0.75  # how often the customer's order is one the request fits
PENDING = ("pending", "pending (item modified)")
CANCEL_REASONS = {"no longer needed": "I don't need it any more",
                  "ordered by mistake": "I ordered it by mistake"}


# ------------------------------------------------------------------------------ world facts
def _pick_order(rng: Any, world: Any, statuses: tuple[str, ...],
                keep: Callable[[Any], bool] = lambda order: True) -> Any:
    every = [o for o in world.db["orders"].values() if keep(o)]
    fit = [o for o in every if o["status"] in statuses]
    pool = fit if fit and rng.random() < FITTING_SHARE else every
    return rng.choice(pool) if pool else None


def _identify(rng: Any, user: Any) -> tuple[list[dict], dict]:
    """How the customer is found (email mostly, else name and zip), and what they say."""
    if rng.random() < 0.7:
        return [gold_call("find_user_id_by_email", email=user["email"])], {"email": user["email"]}
    name, zip_code = user["name"], user["address"]["zip"]
    call = gold_call("find_user_id_by_name_zip", first_name=name["first_name"], last_name=name["last_name"],
                 zip=zip_code)
    return [call], {"first_name": name["first_name"], "last_name": name["last_name"], "zip": zip_code}


def _start(rng: Any, world: Any, user_id: str, order_id: str | None) -> tuple[list[dict], dict, Any]:
    """The identification and reads every request begins with: (calls, known, user)."""
    user = world.db["users"][user_id]
    calls, known = _identify(rng, user)
    calls.append(gold_call("get_user_details", user_id=user_id))
    if order_id is not None:
        calls.append(gold_call("get_order_details", order_id=order_id))
        known["order_id"] = order_id
    return calls, known, user


def _other_orders(world: Any, user: Any, order_id: str | None) -> list[dict]:
    return [gold_call("get_order_details", order_id=o) for o in user["orders"]
            if o != order_id and o in world.db["orders"]]


def _describe(item: Any) -> str:
    return f"{item['name']} ({', '.join(f'{k} {v}' for k, v in item['options'].items())})"


def _replacement(rng: Any, world: Any, item: Any) -> Any:
    """The variant the customer wants instead: an available one when the product has one
    (mostly differing in a single option, as "the same in size L"), else a sold-out one."""
    variants = [v for v in world.db["products"][item["product_id"]]["variants"].values()
                if v["item_id"] != item["item_id"]]
    if not variants:
        return world.db["products"][item["product_id"]]["variants"].get(item["item_id"], item)
    available = [v for v in variants if v["available"]]
    close = [v for v in available
             if sum(v["options"].get(k) != x for k, x in item["options"].items()) == 1]
    return rng.choice(close or available or variants)


def _swap(rng: Any, world: Any, order: Any, count: int) -> tuple[list[Any], list[Any]]:
    """`count` distinct lines of the order and a replacement variant for each."""
    lines = rng.sample(order["items"], min(count, len(order["items"])))
    return lines, [_replacement(rng, world, line) for line in lines]


def _method_for_difference(rng: Any, user: Any, order: Any) -> str:
    original = order["payment_history"][0]["payment_method_id"]
    methods = list(user["payment_methods"])
    if original in methods and (len(methods) == 1 or rng.random() < 0.6):
        return original
    return rng.choice(methods) if methods else original


def _new_address(rng: Any) -> dict:
    city, state, prefix = rng.choice(data.CITIES)
    unit = f"{rng.choice(data.UNIT_PREFIXES)} {rng.randint(100, 999)}" if rng.random() < 0.5 else ""
    return {"address1": f"{rng.randint(10, 9999)} {rng.choice(data.STREET_NAMES)}", "address2": unit,
            "city": city, "state": state, "country": "USA", "zip": f"{prefix}{rng.randint(0, 99):02d}"}


def _one_line(address: dict) -> str:
    parts = [address["address1"], address["address2"], address["city"], f"{address['state']} {address['zip']}",
             address["country"]]
    return ", ".join(p for p in parts if p)


# ------------------------------------------------------------------------------ seeds
def _seed_for(statuses: tuple[str, ...], several_methods: bool = False) -> Callable:
    """Orders of the statuses the request fits (mostly); `several_methods`: only customers with
    another payment method on file ask to switch to it."""
    def pick(rng: Any, world: Any, difficulty: dict) -> dict | None:
        users = world.db["users"]
        keep = (lambda o: len(users.get(o["user_id"], {}).get("payment_methods", {})) > 1) \
            if several_methods else (lambda o: True)
        order = _pick_order(rng, world, statuses, keep)
        return None if order is None else {"user_id": order["user_id"], "order_id": order["order_id"]}
    return pick


def _seed_user(rng: Any, world: Any, difficulty: dict) -> dict | None:
    users = list(world.db["users"])
    return {"user_id": rng.choice(users)} if users else None


# ------------------------------------------------------------------------------ plans
def _plan_cancel(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    oid = ctx["order_id"]
    calls, known, user = _start(rng, world, ctx["user_id"], oid)
    reason = rng.choice(sorted(CANCEL_REASONS))
    known["reason"] = reason
    return {
        "objective": f"Cancel order {oid} (reason: {reason}).",
        "known": known,
        "gold_calls": pad_reads(calls, _other_orders(world, user, oid), diff,
                           [gold_call("cancel_pending_order", order_id=oid, reason=reason)]),
        "must": [f"order {oid} is cancelled with reason '{reason}'",
                 "every payment of the order is refunded to the method that paid it"],
        "must_not": ["cancel any other order", "modify the order instead"],
        "subgoals": ["ask when the refund arrives"],
        "alternatives": {"order_id": _alt_order(rng, world, user, oid)} if diff["level"] == "hard" else {},
        "say": {"reason": CANCEL_REASONS[reason]},
    }


def _alt_order(rng: Any, world: Any, user: Any, oid: str) -> str | None:
    others = [o for o in user["orders"] if o != oid and o in world.db["orders"]]
    return rng.choice(others) if others else None


def _plan_order_address(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    oid = ctx["order_id"]
    calls, known, user = _start(rng, world, ctx["user_id"], oid)
    address = _new_address(rng)
    known["new_address"] = _one_line(address)
    return {
        "objective": f"Have order {oid} shipped to {_one_line(address)} instead.",
        "known": known,
        "gold_calls": pad_reads(calls, _other_orders(world, user, oid), diff,
                           [gold_call("modify_pending_order_address", order_id=oid, **address)]),
        "must": [f"order {oid} ships to {_one_line(address)}"],
        "must_not": ["change the user's default address", "change any other order"],
        "subgoals": ["ask whether the default address should change too (it should not)"],
        "say": {"new_address": _one_line(address)},
    }


def _plan_order_payment(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    oid = ctx["order_id"]
    calls, known, user = _start(rng, world, ctx["user_id"], oid)
    order = world.db["orders"][oid]
    current = order["payment_history"][0]["payment_method_id"]
    others = [m for m in user["payment_methods"] if m != current]
    gifts = [m for m in others if user["payment_methods"][m]["source"] == "gift_card"]
    rest = [m for m in others if m not in gifts]
    pool = gifts if gifts and (not rest or rng.random() < 0.3) else rest
    new = rng.choice(pool) if pool else current  # "the other card" that does not exist
    known["new_payment_method"] = new
    spare = [m for m in others if m != new]
    return {
        "objective": f"Pay order {oid} with {new} instead of {current}.",
        "known": known,
        "gold_calls": pad_reads(calls, _other_orders(world, user, oid), diff,
                           [gold_call("modify_pending_order_payment", order_id=oid, payment_method_id=new)]),
        "must": [f"order {oid} is paid with {new}", f"{current} is refunded"],
        "must_not": ["change the items or the address"],
        "subgoals": [],
        "alternatives": {"payment_method_id": spare[0]} if diff["level"] == "hard" and spare else {},
        "say": {},
    }


def _plan_items(rng: Any, world: Any, ctx: dict, diff: dict, exchange: bool) -> dict:
    """Swap items for other variants: of a pending order (modify) or a delivered one (exchange)."""
    oid = ctx["order_id"]
    calls, known, user = _start(rng, world, ctx["user_id"], oid)
    order = world.db["orders"][oid]
    lines, new = _swap(rng, world, order, rng.choice((1, 2)) if diff["level"] == "hard" else 1)
    for pid in dict.fromkeys(line["product_id"] for line in lines):
        calls.append(gold_call("get_product_details", product_id=pid))
    pay = _method_for_difference(rng, user, order)
    old_ids, new_ids = [x["item_id"] for x in lines], [v["item_id"] for v in new]
    delta = " + ".join(f"({v['price']} - {x['price']})" for x, v in zip(lines, new))
    calls.append(gold_call("calculate", expression=delta))  # the price difference, to be told
    extras = [gold_call("get_item_details", item_id=i) for i in new_ids]
    wanted = [f"the {_describe(x)} for the one with {', '.join(f'{k} {v}' for k, v in n['options'].items())}"
              for x, n in zip(lines, new)]
    known |= {"items": wanted, "payment_method_for_difference": pay}
    tool = "exchange_delivered_order_items" if exchange else "modify_pending_order_items"
    verb = "Exchange" if exchange else "Change"
    return {
        "objective": f"{verb} " + " and ".join(wanted) + f" in order {oid}, settling the price difference with {pay}.",
        "known": known,
        "gold_calls": pad_reads(calls, extras, diff, [gold_call(tool, order_id=oid, item_ids=old_ids, new_item_ids=new_ids,
                                                       payment_method_id=pay)]),
        "must": [f"order {oid} {'requests the exchange of' if exchange else 'now has'} "
                 + ", ".join(f"{a} -> {b}" for a, b in zip(old_ids, new_ids)),
                 f"the price difference is settled on {pay}"],
        "must_not": ["change items the customer did not name", "swap for a different product"],
        "subgoals": ["ask what the price difference is"],
        "alternatives": _alt_items(rng, world, lines, new_ids) if diff["level"] == "hard" else {},
        "say": {"items": f"I'd like to {verb.lower()} " + " and ".join(wanted)},
    }


def _alt_items(rng: Any, world: Any, lines: list, new_ids: list[str]) -> dict:
    """A first choice of replacement the customer drops: another available variant."""
    first = []
    for line, chosen in zip(lines, new_ids):
        options = [v["item_id"] for v in world.db["products"][line["product_id"]]["variants"].values()
                   if v["available"] and v["item_id"] not in (chosen, line["item_id"])]
        first.append(rng.choice(options) if options else chosen)
    return {"new_item_ids": first} if first != new_ids else {}


def _plan_return(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    oid = ctx["order_id"]
    calls, known, user = _start(rng, world, ctx["user_id"], oid)
    order = world.db["orders"][oid]
    lines = rng.sample(order["items"], rng.randint(1, len(order["items"]))) if order["items"] else []
    original = order["payment_history"][0]["payment_method_id"]
    gifts = [m for m, pm in user["payment_methods"].items() if pm["source"] == "gift_card" and m != original]
    others = [m for m in user["payment_methods"] if m != original]
    roll = rng.random()
    pay = original if roll < 0.7 or not others else (rng.choice(gifts) if gifts and roll < 0.9 else rng.choice(others))
    ids = [x["item_id"] for x in lines]
    known |= {"items_to_return": [_describe(x) for x in lines], "refund_to": pay}
    return {
        "objective": "Return the " + " and the ".join(_describe(x) for x in lines) + f" from order {oid}, "
                     f"with the refund going to {pay}.",
        "known": known,
        "gold_calls": pad_reads(calls, [gold_call("get_item_details", item_id=i) for i in ids], diff,
                           [gold_call("return_delivered_order_items", order_id=oid, item_ids=ids, payment_method_id=pay)]),
        "must": [f"order {oid} requests the return of {', '.join(ids)}", f"the refund goes to {pay}"],
        "must_not": ["return items the customer keeps", "exchange instead of returning"],
        "subgoals": ["ask how the items are sent back"],
        "say": {"items_to_return": "the " + " and the ".join(_describe(x) for x in lines)},
    }


def _plan_user_address(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    calls, known, user = _start(rng, world, ctx["user_id"], None)
    address = _new_address(rng)
    known["new_address"] = _one_line(address)
    writes = [gold_call("modify_user_address", user_id=user["user_id"], **address)]
    must = [f"the default address of {user['user_id']} is {_one_line(address)}"]
    # moving house: the order on its way follows (one whose items were changed cannot be)
    pending = [o for o in user["orders"] if world.db["orders"].get(o, {}).get("status") == "pending"]
    if diff["level"] == "hard" and pending:
        oid = pending[0]
        calls.append(gold_call("get_order_details", order_id=oid))
        writes.append(gold_call("modify_pending_order_address", order_id=oid, **address))
        must.append(f"pending order {oid} ships to the new address too")
        known["order_id"] = oid
    return {
        "objective": f"Update the default address to {_one_line(address)}"
                     + (" and have the pending order shipped there." if len(writes) > 1 else "."),
        "known": known,
        "gold_calls": pad_reads(calls, _other_orders(world, user, known.get("order_id")), diff, writes),
        "must": must,
        "must_not": ["change orders the customer did not mention"],
        "subgoals": [],
        "say": {"new_address": _one_line(address)},
    }


def _plan_order_status(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    """A question, no write: where an order stands, which the agent must tell (`inform`: the
    verifier's communicate check)."""
    oid = ctx["order_id"]
    calls, known, user = _start(rng, world, ctx["user_id"], oid)
    status = world.db["orders"][oid]["status"]
    return {
        "objective": f"Find out the status of order {oid}.",
        "known": known,
        "gold_calls": pad_reads(calls, _other_orders(world, user, oid), diff, []),
        "inform": [status],
        "must": [f"the customer is told that order {oid} is {status}"],
        "must_not": ["change any order"],
        "subgoals": ["ask what the order contains"],
        "say": {},
    }


# intent → (weight, seed picker, planner)
INTENTS: Intents = {
    "cancel_pending_order": (1.0, _seed_for(("pending",)), _plan_cancel),
    "modify_order_address": (0.6, _seed_for(PENDING), _plan_order_address),
    "modify_order_payment": (0.6, _seed_for(PENDING, several_methods=True), _plan_order_payment),
    "modify_order_items": (1.0, _seed_for(("pending",)),
                           lambda rng, world, ctx, diff: _plan_items(rng, world, ctx, diff, False)),
    "return_delivered_items": (1.0, _seed_for(("delivered",)), _plan_return),
    "exchange_delivered_items": (1.0, _seed_for(("delivered",)),
                                 lambda rng, world, ctx, diff: _plan_items(rng, world, ctx, diff, True)),
    "modify_user_address": (0.5, _seed_user, _plan_user_address),
    "order_status": (0.4, _seed_for(("pending", "processed", "delivered", "cancelled")), _plan_order_status),
}


def seed(rng: Any, world: Any, difficulty: dict) -> dict:
    """Pick an intent (by weight, among those this world offers) and the entities it is about."""
    return pick_intent(rng, world, difficulty, INTENTS,
                       "the retail world has no user or order to build a task from")


def task(rng: Any, world: Any, seed: dict) -> dict:
    """Plan the scenario `seed` on `world`: objective, what the user knows, the gold path."""
    return plan_intent(rng, world, seed, INTENTS, "retail")
