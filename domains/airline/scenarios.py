"""Offline task recipes of the airline domain (docs/CONTRACTS.md §7).

`seed(rng, world, difficulty)` picks what a caller wants and which of their entities it is
about; `task(rng, world, seed)` plans the path a policy-following agent takes: look the user
up, read the reservation (or search flights), then the write. Entities are sampled the way
callers come: mostly about upcoming trips, sometimes about any reservation. Nothing is
filtered for feasibility: a sold-out cabin or a gift card short of funds makes the gold path
fail, a basic-economy flight change, an ineligible cancellation or a trip already flown makes
it break a `policy:` check of domain.yaml (the tools, like τ²-bench's, let such calls run),
and TaskValidation rejects it either way.

Labels stay honest where the tools are looser than the policy: a cancellation whose only
ground is insurance gets a covered reason (health or weather), and a compensation request the
policy refuses but the tool would accept is planned as a refusal (reads only).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
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
    name = "_eigenlang_domain_airline_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("data.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


data = _load_data()

UPCOMING_SHARE = 0.85  # callers mostly ask about trips still ahead of them
REASONS = {"change of plans": "my plans changed", "work": "a work conflict came up",
           "health": "I am sick and cannot travel", "weather": "a storm is forecast there"}
COVERED = ("health", "weather")
CABIN_WORDS = {"basic_economy": "basic economy", "economy": "economy", "business": "business class"}


# ------------------------------------------------------------------------------ world facts
def _day_status(db: Any, flight_number: str, day: str) -> Any:
    flight = db["flights"].get(flight_number)
    return None if flight is None else flight["dates"].get(day)


def _departed(world: Any, leg: Any) -> bool:
    status = _day_status(world.db, leg["flight_number"], leg["date"])
    if status is None:
        return leg["date"] < world.now[:10]
    return status["status"] in data.DEPARTED_STATUSES


def _upcoming(world: Any, res: Any) -> bool:
    return res.get("status") != "cancelled" and not any(_departed(world, g) for g in res["flights"])


def _pick_reservation(rng: Any, world: Any, keep: Callable[[Any], bool] = lambda r: True) -> Any:
    """A reservation as callers bring them: mostly upcoming, sometimes any (never filtered
    for what the policy allows)."""
    every = [r for r in world.db["reservations"].values() if keep(r)]
    ahead = [r for r in every if _upcoming(world, r)]
    pool = ahead if ahead and rng.random() < UPCOMING_SHARE else every
    return rng.choice(pool) if pool else None


def _pay_method(rng: Any, user: Any, prefer_card: float = 0.65) -> str:
    """A credit card or gift card as callers choose them; a certificate when that is all
    they have (the tools refuse it: an infeasible task, as in real life)."""
    methods = list(user["payment_methods"].values())
    cards = [m["id"] for m in methods if m["source"] == "credit_card"]
    gifts = [m["id"] for m in methods if m["source"] == "gift_card"]
    if cards and (not gifts or rng.random() < prefer_card):
        return rng.choice(cards)
    if gifts:
        return rng.choice(gifts)
    return methods[0]["id"] if methods else "credit_card_0000000"


def _legs(res: Any) -> list[dict]:
    return [{"flight_number": g["flight_number"], "date": g["date"]} for g in res["flights"]]


def _identify(user_id: str) -> dict:
    return gold_call("get_user_details", user_id=user_id)


def _read_res(rid: str) -> dict:
    return gold_call("get_reservation_details", reservation_id=rid)


def _other_reservations(world: Any, user: Any, rid: str) -> list[str]:
    return [r for r in user["reservations"] if r != rid and r in world.db["reservations"]]


def _status_reads(res: Any) -> list[dict]:
    return [gold_call("get_flight_status", flight_number=g["flight_number"], date=g["date"])
            for g in res["flights"]]


def _who(user: Any) -> str:
    return f"{user['name']['first_name']} {user['name']['last_name']}"


# ------------------------------------------------------------------------------ intents
def _seed_reservation(rng: Any, world: Any, difficulty: dict) -> dict | None:
    res = _pick_reservation(rng, world)
    return None if res is None else {"user_id": res["user_id"], "reservation_id": res["reservation_id"]}


def _plan_cancel(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    db, rid = world.db, ctx["reservation_id"]
    res, user = db["reservations"][rid], db["users"][ctx["user_id"]]
    booked = datetime.fromisoformat(res["created_at"])
    fresh = (datetime.fromisoformat(world.now) - booked).total_seconds() <= data.CANCEL_GRACE_HOURS * 3600
    airline = any((_day_status(db, g["flight_number"], g["date"]) or {}).get("status") == "cancelled"
                  for g in res["flights"])
    if airline:
        reason, phrase = "the airline cancelled a flight", "the airline cancelled my flight"
    else:
        insured_only = res["insurance"] == "yes" and not fresh and res["cabin"] != "business"
        reason = rng.choice(COVERED if insured_only else sorted(REASONS))
        phrase = REASONS[reason]
    calls = [_identify(user["user_id"])]
    alternatives = {}
    others = [r for r in _other_reservations(world, user, rid)
              if db["reservations"][r].get("status") != "cancelled"]
    if diff["level"] == "hard" and others:
        alt = rng.choice(others)
        alternatives["reservation_id"] = alt
        calls.append(_read_res(alt))
    calls.append(_read_res(rid))
    extras = _status_reads(res) if diff["level"] != "easy" else []
    return {
        "objective": f"Cancel reservation {rid} because {phrase}, and get the money back.",
        "known": {"user_id": user["user_id"], "name": _who(user), "reservation_id": rid,
                  "reason": reason},
        "gold_calls": pad_reads(calls, extras, diff, [gold_call("cancel_reservation", reservation_id=rid)]),
        "must": [f"reservation {rid} is cancelled", "every payment is refunded to the method that made it"],
        "must_not": ["cancel any other reservation", "change the reservation instead of cancelling it"],
        "subgoals": ["ask when the refund will arrive"],
        "alternatives": alternatives,
        "say": {"reason": phrase},
    }


def _plan_bags(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    db, rid = world.db, ctx["reservation_id"]
    res, user = db["reservations"][rid], db["users"][ctx["user_id"]]
    add = rng.randint(1, 3 if diff["level"] == "hard" else 2)
    allowance = data.FREE_BAGS[user["membership"]][res["cabin"]] * len(res["passengers"])

    def counts(extra: int) -> tuple[int, int]:
        total = res["total_baggages"] + extra
        return total, max(res["nonfree_baggages"], total - allowance)

    total, nonfree = counts(add)
    fee = data.BAG_FEE * (nonfree - res["nonfree_baggages"])
    pay = _pay_method(rng, user)
    calls = [_identify(user["user_id"]), _read_res(rid)]
    extras = [gold_call("calculate", expression=f"{data.BAG_FEE} * {nonfree - res['nonfree_baggages']}")] if fee else []
    alternatives = {"total_baggages": counts(add + 1)[0]} if diff["level"] == "hard" else {}
    write = gold_call("update_reservation_baggages", reservation_id=rid, total_baggages=total,
                  nonfree_baggages=nonfree, payment_id=pay)
    bags = "bag" if add == 1 else "bags"
    return {
        "objective": f"Add {add} checked {bags} to reservation {rid}, paying any fee with {pay}.",
        "known": {"user_id": user["user_id"], "reservation_id": rid, "bags_to_add": add,
                  "payment_method": pay},
        "gold_calls": pad_reads(calls, extras, diff, [write]),
        "must": [f"reservation {rid} has {total} checked bags, {nonfree} of them paid",
                 f"the bag fee of ${fee} is charged to {pay}" if fee else "no bag fee is charged"],
        "must_not": ["remove bags", "add insurance", "charge a certificate"],
        "subgoals": ["ask how many bags are free with the membership"],
        "alternatives": alternatives,
        "say": {"bags_to_add": f"{add} more {bags}"},
    }


def _cabin_choice(rng: Any, current: str) -> str:
    order = list(data.CABINS)
    higher = order[order.index(current) + 1:]
    lower = order[:order.index(current)]
    return rng.choice(higher) if higher and (not lower or rng.random() < 0.75) else rng.choice(lower)


def _plan_cabin(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    db, rid = world.db, ctx["reservation_id"]
    res, user = db["reservations"][rid], db["users"][ctx["user_id"]]
    cabin = _cabin_choice(rng, res["cabin"])
    pay = _pay_method(rng, user)
    # the new cabin's prices, so that the fare difference can be worked out and told
    calls = [_identify(user["user_id"]), _read_res(rid)] + [
        gold_call("search_direct_flight", origin=g["origin"], destination=g["destination"], date=g["date"])
        for g in res["flights"]]
    extras: list[dict] = []
    spare = [c for c in data.CABINS if c not in (cabin, res["cabin"])]
    alternatives = {"cabin": spare[0]} if diff["level"] == "hard" and spare else {}
    write = gold_call("update_reservation_flights", reservation_id=rid, cabin=cabin, flights=_legs(res),
                  payment_id=pay)
    return {
        "objective": f"Move every flight of reservation {rid} to {CABIN_WORDS[cabin]}, settling the "
                     f"fare difference with {pay}.",
        "known": {"user_id": user["user_id"], "reservation_id": rid, "cabin": cabin, "payment_method": pay},
        "gold_calls": pad_reads(calls, extras, diff, [write]),
        "must": [f"reservation {rid} is in {cabin} on all its flights",
                 f"the fare difference for all passengers is settled on {pay}"],
        "must_not": ["change the flights or dates", "use a certificate for the difference"],
        "subgoals": ["ask what the new cabin costs in total before confirming"],
        "alternatives": alternatives,
        "say": {"cabin": CABIN_WORDS[cabin]},
    }


def _shift(legs: list[dict], days: int) -> list[dict]:
    return [{"flight_number": g["flight_number"],
             "date": (date.fromisoformat(g["date"]) + timedelta(days=days)).isoformat()} for g in legs]


def _plan_change_date(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    """Move the whole trip by a few days on the same flights (they fly daily)."""
    db, rid = world.db, ctx["reservation_id"]
    res, user = db["reservations"][rid], db["users"][ctx["user_id"]]
    legs = _legs(res)
    fits = [d for d in (1, 2, 3, -1, -2)
            if all(g["date"] in db["flights"].get(g["flight_number"], {}).get("dates", {})
                   for g in _shift(legs, d))]
    days = rng.choice(fits) if fits else 1
    new = _shift(legs, days)
    pay = _pay_method(rng, user)
    # the new day's prices, so that the fare difference can be worked out and told
    calls = [_identify(user["user_id"]), _read_res(rid)] + [
        gold_call("search_direct_flight", origin=g["origin"], destination=g["destination"], date=n["date"])
        for g, n in zip(res["flights"], new)]
    extras: list[dict] = []
    spare = [d for d in fits if d != days]
    alternatives = {"date": _shift(legs, spare[0])[0]["date"]} if diff["level"] == "hard" and spare else {}
    write = gold_call("update_reservation_flights", reservation_id=rid, cabin=res["cabin"], flights=new,
                  payment_id=pay)
    when = "later" if days > 0 else "earlier"
    shift = f"{abs(days)} day{'s' if abs(days) != 1 else ''} {when}"
    return {
        "objective": f"Move reservation {rid} {shift}, leaving on {new[0]['date']} on "
                     f"the same flights and cabin, paying any difference with {pay}.",
        "known": {"user_id": user["user_id"], "reservation_id": rid, "new_date": new[0]["date"],
                  "payment_method": pay},
        "gold_calls": pad_reads(calls, extras, diff, [write]),
        "must": [f"reservation {rid} flies " + ", ".join(f"{n['flight_number']} on {n['date']}" for n in new),
                 f"the fare difference is settled on {pay}"],
        "must_not": ["change the cabin", "cancel the reservation"],
        "subgoals": ["ask whether the new flights cost more"],
        "alternatives": alternatives,
        "say": {"new_date": f"I want to leave {shift}, on {new[0]['date']}"},
    }


def _plan_passengers(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    db, rid = world.db, ctx["reservation_id"]
    res, user = db["reservations"][rid], db["users"][ctx["user_id"]]
    passengers = [dict(p) for p in res["passengers"]]
    i = rng.randrange(len(passengers))
    old = passengers[i]
    saved = [p for p in user["saved_passengers"] if p not in passengers]
    if saved and rng.random() < 0.5:
        passengers[i] = dict(rng.choice(saved))
        change = f"replace {old['first_name']} {old['last_name']} with {passengers[i]['first_name']} " \
                 f"{passengers[i]['last_name']} (born {passengers[i]['dob']})"
    else:
        fixed = date.fromisoformat(old["dob"]) + timedelta(days=rng.choice((-365, -31, -1, 1, 31, 365)))
        passengers[i] = dict(old, dob=fixed.isoformat())
        change = f"correct the date of birth of {old['first_name']} {old['last_name']} to {fixed.isoformat()}"
    calls = [_identify(user["user_id"]), _read_res(rid)]
    extras = [_read_res(r) for r in _other_reservations(world, user, rid)[:2]]
    return {
        "objective": f"On reservation {rid}, {change}.",
        "known": {"user_id": user["user_id"], "reservation_id": rid, "passenger_change": change,
                  "new_passenger": passengers[i]},
        "gold_calls": pad_reads(calls, extras, diff,
                           [gold_call("update_reservation_passengers", reservation_id=rid, passengers=passengers)]),
        "must": [f"reservation {rid} lists " + "; ".join(
            f"{p['first_name']} {p['last_name']} ({p['dob']})" for p in passengers)],
        "must_not": ["change the number of passengers", "change the other passengers"],
        "subgoals": [],
        "say": {"passenger_change": f"I need to {change}"},
    }


# ------------------------------------------------------------------------------ booking
def _seed_booking(rng: Any, world: Any, difficulty: dict) -> dict | None:
    """A user and a flight on sale: callers pick a route and a day, then a flight on it."""
    db = world.db
    users = list(db["users"])
    offers = [(f["flight_number"], d) for f in db["flights"].values()
              for d, s in f["dates"].items() if s["status"] == "available"]
    if not users or not offers:
        return None
    number, day = rng.choice(offers)
    flight = db["flights"][number]
    ctx = {"user_id": rng.choice(users), "origin": flight["origin"], "destination": flight["destination"],
           "date": day, "flights": [{"flight_number": number, "date": day}], "flight_type": "one_way"}
    if rng.random() < 0.35:
        back = [(f["flight_number"], d) for f in db["flights"].values()
                if f["origin"] == flight["destination"] and f["destination"] == flight["origin"]
                for d, s in f["dates"].items() if s["status"] == "available" and day < d <= _plus(day, 6)]
        if back:
            number2, day2 = rng.choice(back)
            ctx["flights"].append({"flight_number": number2, "date": day2})
            ctx["flight_type"] = "round_trip"
    return ctx


def _plus(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def _new_person(rng: Any, last: str) -> dict:
    dob = date(1950, 1, 1) + timedelta(days=rng.randint(0, 55 * 365))
    return {"first_name": rng.choice(data.FIRST_NAMES), "last_name": last, "dob": dob.isoformat()}


def _booking_payment(rng: Any, user: Any, total: int) -> list[dict]:
    """One card, sometimes after a certificate or gift card; without a card, a certificate
    and up to three gift cards in turn until the total is covered (the last one takes the
    rest, and may fall short: a real refusal)."""
    methods = list(user["payment_methods"].values())
    cards = [m for m in methods if m["source"] == "credit_card"]
    others = [m for m in methods if m["source"] in ("gift_card", "certificate") and m["amount"] >= 1]
    if cards:
        card = rng.choice(cards)["id"]
        if others and rng.random() < 0.3:
            part = rng.choice(others)
            first = min(int(part["amount"]), total)
            rest = [{"payment_id": card, "amount": total - first}] if total > first else []
            return [{"payment_id": part["id"], "amount": first}] + rest
        return [{"payment_id": card, "amount": total}]
    if not others:
        return [{"payment_id": methods[0]["id"] if methods else "gift_card_0000000", "amount": total}]
    certs = [m for m in others if m["source"] == "certificate"][:1]
    gifts = [m for m in others if m["source"] == "gift_card"][:3]
    out, left = [], total
    for i, m in enumerate(certs + gifts):
        last = i == len(certs + gifts) - 1
        amount = left if last else min(int(m["amount"]), left)
        out.append({"payment_id": m["id"], "amount": amount})
        left -= amount
        if left == 0:
            break
    return out


def _plan_booking(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    db, user = world.db, world.db["users"][ctx["user_id"]]
    cabin = rng.choices(data.CABINS, weights=[2, 5, 3])[0]
    me = {"first_name": user["name"]["first_name"], "last_name": user["name"]["last_name"], "dob": user["dob"]}
    n = rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
    crowd = [me] + [dict(p) for p in user["saved_passengers"]]
    passengers = crowd[:n] + [_new_person(rng, me["last_name"]) for _ in range(n - len(crowd[:n]))]
    bags = rng.randint(0, n + 1)
    nonfree = max(0, bags - data.FREE_BAGS[user["membership"]][cabin] * n)
    insurance = "yes" if rng.random() < 0.3 else "no"
    prices = [_day_status(db, f["flight_number"], f["date"])["prices"][cabin] for f in ctx["flights"]]
    total = n * (sum(prices) + (data.INSURANCE_FEE if insurance == "yes" else 0)) + data.BAG_FEE * nonfree
    payments = _booking_payment(rng, user, total)
    calls = [_identify(user["user_id"]),
             gold_call("search_direct_flight", origin=ctx["origin"], destination=ctx["destination"], date=ctx["date"])]
    if ctx["flight_type"] == "round_trip":
        calls.append(gold_call("search_direct_flight", origin=ctx["destination"], destination=ctx["origin"],
                           date=ctx["flights"][-1]["date"]))
    expr = f"{n} * ({' + '.join(map(str, prices))}" + (f" + {data.INSURANCE_FEE})" if insurance == "yes" else ")") \
        + (f" + {data.BAG_FEE} * {nonfree}" if nonfree else "")
    extras = [gold_call("calculate", expression=expr),
              gold_call("search_onestop_flight", origin=ctx["origin"], destination=ctx["destination"], date=ctx["date"])]
    spare = [c for c in data.CABINS if c != cabin]
    alternatives = {"cabin": rng.choice(spare)} if diff["level"] == "hard" else {}
    write = gold_call("book_reservation", user_id=user["user_id"], origin=ctx["origin"],
                  destination=ctx["destination"], flight_type=ctx["flight_type"], cabin=cabin,
                  flights=[dict(f) for f in ctx["flights"]], passengers=passengers, payment_methods=payments,
                  total_baggages=bags, nonfree_baggages=nonfree, insurance=insurance)
    trip = ", ".join(f"{f['flight_number']} on {f['date']}" for f in ctx["flights"])
    return {
        "objective": f"Book a {'round-trip' if ctx['flight_type'] == 'round_trip' else 'one-way'} trip from {ctx['origin']} to "
                     f"{ctx['destination']} ({trip}) in {CABIN_WORDS[cabin]} for {n} passenger{'s' if n > 1 else ''}.",
        "known": {"user_id": user["user_id"], "origin": ctx["origin"], "destination": ctx["destination"],
                  "flights": trip, "cabin": cabin, "passengers": passengers, "checked_bags": bags,
                  "insurance": insurance, "payment": payments},
        "gold_calls": pad_reads(calls, extras, diff, [write]),
        "must": [f"a {ctx['flight_type']} reservation on {trip} in {cabin} for "
                 + ", ".join(f"{p['first_name']} {p['last_name']}" for p in passengers) + " is booked",
                 f"{bags} checked bags ({nonfree} paid), insurance {insurance}, total ${total}"],
        "must_not": ["add bags or insurance the user did not ask for", "book any other flight"],
        "subgoals": ["ask for the total price before confirming"],
        "alternatives": alternatives,
        "say": {"cabin": CABIN_WORDS[cabin], "insurance": "yes please" if insurance == "yes" else "no thanks"},
    }


# ------------------------------------------------------------------------------ compensation
def _cancelled_legs(world: Any, res: Any) -> list[Any]:
    return [g for g in res["flights"]
            if (_day_status(world.db, g["flight_number"], g["date"]) or {}).get("status") == "cancelled"]


def _seed_compensation(rng: Any, world: Any, difficulty: dict) -> dict | None:
    res = _pick_reservation(rng, world, lambda r: bool(_cancelled_legs(world, r)))
    if res is None:
        return None
    leg = _cancelled_legs(world, res)[0]
    return {"user_id": res["user_id"], "reservation_id": res["reservation_id"],
            "flight_number": leg["flight_number"], "date": leg["date"]}


def _plan_compensation(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    """Certificate of $100 per passenger for a flight the airline cancelled; on hard tasks the
    caller first cancels the trip (the airline's cancellation makes it eligible)."""
    db, rid = world.db, ctx["reservation_id"]
    res, user = db["reservations"][rid], db["users"][ctx["user_id"]]
    amount = data.COMPENSATION["cancelled"] * len(res["passengers"])
    calls = [_identify(user["user_id"]), _read_res(rid),
             gold_call("get_flight_status", flight_number=ctx["flight_number"], date=ctx["date"])]
    writes, must = [], []
    if diff["level"] == "hard" and _upcoming(world, res):
        writes.append(gold_call("cancel_reservation", reservation_id=rid))
        must.append(f"reservation {rid} is cancelled")
    policy_ok = user["membership"] != "regular" or res["insurance"] == "yes" or res["cabin"] == "business"
    tool_ok = user["membership"] != "regular" or any(
        r in db["reservations"] and (db["reservations"][r]["insurance"] == "yes"
                                     or db["reservations"][r]["cabin"] == "business") for r in user["reservations"])
    must_not = ["send more than one certificate"]
    if policy_ok or not tool_ok:
        writes.append(gold_call("send_certificate", user_id=user["user_id"], amount=amount))
        must.append(f"a ${amount} certificate is sent to {user['user_id']}")
    else:  # the tool would pay out what the policy refuses: the right path is a refusal
        must.append("no certificate is sent: the user is not eligible for compensation")
        must_not.append("send a certificate")
    return {
        "objective": f"Complain that flight {ctx['flight_number']} on {ctx['date']} of reservation {rid} "
                     "was cancelled by the airline, and ask for compensation.",
        "known": {"user_id": user["user_id"], "reservation_id": rid, "flight_number": ctx["flight_number"],
                  "date": ctx["date"], "passengers": len(res["passengers"])},
        "gold_calls": pad_reads(calls, [], diff, writes),
        "must": must,
        "must_not": must_not,
        "subgoals": ["ask to cancel the trip as well"] if not any(w["name"] == "cancel_reservation"
                                                                 for w in writes) else [],
        "say": {},
    }


def _plan_flight_status(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    """A question, no write: the status of one flight of the caller's reservation, which the
    agent must tell (`inform`: the verifier's communicate check)."""
    db, rid = world.db, ctx["reservation_id"]
    res, user = db["reservations"][rid], db["users"][ctx["user_id"]]
    leg = rng.choice(res["flights"])
    day = _day_status(db, leg["flight_number"], leg["date"])
    calls = [_identify(user["user_id"]), _read_res(rid)]
    extras = [c for c in _status_reads(res) if c["arguments"] != {"flight_number": leg["flight_number"],
                                                                  "date": leg["date"]}]
    ask = gold_call("get_flight_status", flight_number=leg["flight_number"], date=leg["date"])
    return {
        "objective": f"Find out the status of flight {leg['flight_number']} on {leg['date']} "
                     f"(reservation {rid}).",
        "known": {"user_id": user["user_id"], "reservation_id": rid, "flight_number": leg["flight_number"],
                  "date": leg["date"]},
        "gold_calls": pad_reads(calls, extras, diff, [ask]),
        "inform": [day["status"]] if day else [],  # no such flight day: the read fails, TaskValidation says so
        "must": [f"the user is told that flight {leg['flight_number']} on {leg['date']} is "
                 f"{day['status'] if day else 'unknown'}"],
        "must_not": ["change the reservation"],
        "subgoals": ["ask whether the other flights of the trip are on time"] if len(res["flights"]) > 1 else [],
        "say": {},
    }


# intent → (weight, seed picker, planner)
INTENTS: Intents = {
    "cancel_reservation": (0.8, _seed_reservation, _plan_cancel),
    "add_baggage": (1.0, _seed_reservation, _plan_bags),
    "change_cabin": (0.7, _seed_reservation, _plan_cabin),
    "change_flight_date": (0.7, _seed_reservation, _plan_change_date),
    "update_passengers": (0.7, _seed_reservation, _plan_passengers),
    "book_reservation": (1.0, _seed_booking, _plan_booking),
    "compensation_certificate": (0.7, _seed_compensation, _plan_compensation),
    "flight_status": (0.4, _seed_reservation, _plan_flight_status),
}


def seed(rng: Any, world: Any, difficulty: dict) -> dict:
    """Pick an intent (by weight, among those this world offers) and the entities it is about."""
    return pick_intent(rng, world, difficulty, INTENTS,
                       "the airline world has no reservation, user or flight on sale to build a task from")


def task(rng: Any, world: Any, seed: dict) -> dict:
    """Plan the scenario `seed` on `world`: objective, what the user knows, the gold path."""
    return plan_intent(rng, world, seed, INTENTS, "airline")
