"""Offline task recipes of the telecom domain (docs/CONTRACTS.md §7).

`seed(rng, world, difficulty)` picks what a customer calls about and which line or bill;
`task(rng, world, seed)` plans what a policy-following agent does: find the customer (by phone
number, customer id, or name and date of birth), read the line or the bills, then make the
change. Dual control: what has to happen on the customer's own phone (the one phone of the
user database) is planned as user-side calls (`side: "user"`) — switching data roaming on
before a trip, paying a payment request, and the fixes of a phone troubleshooting session.

Lines and bills are sampled as customers bring them: mostly ones the request fits, sometimes
any. Nothing is filtered for feasibility: suspending a line that is not active makes the gold
path fail (τ²-bench's tool refuses); resuming a line while a bill is overdue, roaming on a
suspended line or a payment request for a bill that is not overdue go through but break the
policy; TaskValidation rejects both with the reason.

Phone troubleshooting is planned on a private copy of the world with the domain's own tool
implementations (`troubleshoot.Phone`), so each planned step is exactly what the tools will do there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.env.impls import load_sibling
from runtime.workers.offline.intents import (
    Intents,
    gold_call,
    pad_reads,
    pick_intent,
    plan_intent,
)

tools = load_sibling(__file__, "tools")
troubleshoot = load_sibling(__file__, "troubleshoot")

FITTING_SHARE = 0.5  # how often the line or bill is one the request fits
OVER_ASK_SHARE = 0.3  # how often a refuel asks for more data than the policy allows
REFUEL_PRICE_KEY = "data_refueling_price_per_gb"


# ------------------------------------------------------------------------------ world facts
def _owner(db: Any, line_id: str) -> Any:
    return next((c for c in db["customers"] if line_id in c["line_ids"]), None)


def _phone_line(world: Any) -> Any:
    """The line of the phone in the user database (the customer who can act on it)."""
    if not world.user_db:
        return None
    return tools.find(world.db["lines"], "phone_number", world.user_db["surroundings"].get("phone_number"))


def _owns_phone(world: Any, customer: Any) -> bool:
    line = _phone_line(world)
    return line is not None and line["line_id"] in customer["line_ids"]


def _is_phone_line(world: Any, line: Any) -> bool:
    return (_phone_line(world) or {}).get("line_id") == line["line_id"]


def _plan_of(db: Any, line: Any) -> Any:
    return tools.find(db["plans"], "plan_id", line["plan_id"])


def _used_up(db: Any, line: Any) -> bool:
    plan = _plan_of(db, line)
    return plan is not None and line["data_used_gb"] >= plan["data_limit_gb"] + line["data_refueling_gb"]


def _pick(rng: Any, every: list, fits: Callable[[Any], bool]) -> Any:
    fit = [x for x in every if fits(x)]
    pool = fit if fit and rng.random() < FITTING_SHARE else every
    return rng.choice(pool) if pool else None


def _user(name: str, **arguments: Any) -> dict:
    return gold_call(name, "user", **arguments)


def _identify(rng: Any, customer: Any, by_phone: str | None = None) -> tuple[list[dict], dict]:
    """How the customer is found, and what they tell: a phone number mostly, else their id or
    their name with their date of birth."""
    roll = rng.random()
    if by_phone is not None or roll < 0.55:
        number = by_phone or customer["phone_number"]
        return [gold_call("get_customer_by_phone", phone_number=number)], {"phone_number": number}
    if roll < 0.75:
        return [gold_call("get_customer_by_id", customer_id=customer["customer_id"])], \
            {"customer_id": customer["customer_id"]}
    return [gold_call("get_customer_by_name", full_name=customer["full_name"], dob=customer["date_of_birth"])], \
        {"full_name": customer["full_name"], "date_of_birth": customer["date_of_birth"]}


def _start(rng: Any, world: Any, ctx: dict) -> tuple[list[dict], dict, Any, Any]:
    """Identification and the line read every line request begins with."""
    db = world.db
    customer = tools.find(db["customers"], "customer_id", ctx["customer_id"])
    line = tools.find(db["lines"], "line_id", ctx["line_id"])
    if customer is None or line is None:
        raise KeyError(ctx["customer_id"] if customer is None else ctx["line_id"])
    calls, known = _identify(rng, customer)
    calls.append(gold_call("get_details_by_id", id=line["line_id"]))
    if known.get("phone_number") != line["phone_number"]:
        known["line_number"] = line["phone_number"]
    return calls, known, customer, line


def _extras(world: Any, customer: Any, line: Any) -> list[dict]:
    """Reads an agent may add while looking around: the plan, the bills, the other lines."""
    out = [gold_call("get_details_by_id", id=line["plan_id"]),
           gold_call("get_bills_for_customer", customer_id=customer["customer_id"])]
    return out + [gold_call("get_details_by_id", id=i) for i in customer["line_ids"] if i != line["line_id"]]


# ------------------------------------------------------------------------------ seeds
def _seed_line(fits: Callable[[Any, Any], bool]) -> Callable:
    def pick(rng: Any, world: Any, difficulty: dict) -> dict | None:
        line = _pick(rng, list(world.db["lines"]), lambda x: fits(world, x))
        owner = _owner(world.db, line["line_id"]) if line else None
        return None if owner is None else {"customer_id": owner["customer_id"], "line_id": line["line_id"]}
    return pick


def _open(world: Any, line: Any) -> bool:
    owner = _owner(world.db, line["line_id"])
    return owner is not None and owner["account_status"] != "Closed"


def _found_again(world: Any, line: Any) -> bool:
    """A suspended line whose owner owes nothing: the phone turned up again. (Lines suspended
    for non-payment come up too, through the non-fitting share and the bill intent.)"""
    owner = _owner(world.db, line["line_id"])
    return line["status"] == "Suspended" and owner is not None and not any(
        b["customer_id"] == owner["customer_id"] and b["status"] in ("Overdue", "Awaiting Payment")
        for b in world.db["bills"])


def _seed_bill(rng: Any, world: Any, difficulty: dict) -> dict | None:
    bill = _pick(rng, [b for b in world.db["bills"] if b["status"] != "Draft"],
                 lambda b: b["status"] == "Overdue")
    return None if bill is None else {"customer_id": bill["customer_id"], "bill_id": bill["bill_id"]}


def _seed_travel(rng: Any, world: Any, difficulty: dict) -> dict | None:
    line = _phone_line(world)
    owner = _owner(world.db, line["line_id"]) if line else None
    return None if owner is None else {"customer_id": owner["customer_id"], "line_id": line["line_id"]}


def _seed_fix(rng: Any, world: Any, difficulty: dict) -> dict | None:
    """Only when the phone really has a problem: the symptom the customer calls about, one of
    those the phone shows (without service there is no data and no MMS either)."""
    ctx = _seed_travel(rng, world, difficulty)
    if ctx is None:
        return None
    shown = troubleshoot.reportable(world.user_db["device"], world.user_db["surroundings"])
    return None if not shown else ctx | {"symptom": troubleshoot.SYMPTOMS[rng.choice(shown)]}


# ------------------------------------------------------------------------------ plans
def _plan_roaming(rng: Any, world: Any, ctx: dict, diff: dict, enable: bool) -> dict:
    calls, known, customer, line = _start(rng, world, ctx)
    tool = "enable_roaming" if enable else "disable_roaming"
    # Roaming already as asked: the agent reads the line and says so; nothing to change.
    writes = [] if bool(line["roaming_enabled"]) == enable else \
        [gold_call(tool, customer_id=customer["customer_id"], line_id=line["line_id"])]
    device = world.user_db["device"] if world.user_db else {}
    if enable and _is_phone_line(world, line):
        if not device.get("roaming_enabled"):  # data abroad needs the phone's own switch too
            writes.append(_user("toggle_roaming"))
        writes.append(_user("check_network_status"))
    trip = rng.choice(("Mexico", "Canada", "France", "Japan", "Italy", "the UK"))
    known["destination"] = trip
    return {
        "objective": (f"Turn on roaming for line {line['phone_number']} before a trip to {trip}." if enable
                      else f"Turn off roaming on line {line['phone_number']}, now back from {trip}."),
        "known": known,
        "gold_calls": pad_reads(calls, _extras(world, customer, line), diff, writes),
        "must": [f"roaming is {'on' if enable else 'off'} for line {line['line_id']}"],
        # already as asked: the agent must say so (nothing to change on the line)
        "inform": [] if bool(line["roaming_enabled"]) != enable else [f"already {'on' if enable else 'off'}"],
        "must_not": ["change other lines", "add data or change the plan"],
        "subgoals": ["ask whether roaming costs extra"] if enable else [],
        "say": {},
    }


def _plan_suspend(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    calls, known, customer, line = _start(rng, world, ctx)
    reason = rng.choice(("lost device", "stolen device", "customer travelling"))
    known["reason"] = reason
    return {
        "objective": f"Suspend line {line['phone_number']} ({reason}).",
        "known": known,
        "gold_calls": pad_reads(calls, _extras(world, customer, line), diff,
                           [gold_call("suspend_line", customer_id=customer["customer_id"], line_id=line["line_id"],
                                  reason=reason)]),
        "must": [f"line {line['line_id']} is suspended"],
        "must_not": ["suspend any other line", "close the account"],
        "subgoals": ["ask how to get the line back later"],
        "say": {"reason": {"lost device": "I lost my phone", "stolen device": "my phone was stolen",
                           "customer travelling": "I'm away for a few months"}[reason]},
    }


def _pay_steps(world: Any, customer: Any, bills: list[Any]) -> list[dict]:
    """A payment request per bill, each paid on the customer's own phone."""
    steps = []
    for bill in bills:
        steps += [gold_call("send_payment_request", customer_id=customer["customer_id"], bill_id=bill["bill_id"]),
                  _user("check_payment_request"), _user("make_payment")]
    return steps


def _plan_resume(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    calls, known, customer, line = _start(rng, world, ctx)
    bills_read = gold_call("get_bills_for_customer", customer_id=customer["customer_id"])
    calls.append(bills_read)
    overdue = [b for b in world.db["bills"] if b["customer_id"] == customer["customer_id"]
               and b["status"] == "Overdue"]
    writes: list[dict] = []
    must = [f"line {line['line_id']} is active again"]
    if overdue and _owns_phone(world, customer):  # can pay on the phone: settle first, then resume
        writes += _pay_steps(world, customer, overdue) + [bills_read]
        must.insert(0, "the overdue bills " + ", ".join(b["bill_id"] for b in overdue) + " are paid")
    writes.append(gold_call("resume_line", customer_id=customer["customer_id"], line_id=line["line_id"]))
    if _is_phone_line(world, line):  # the phone finds the network again only after a restart
        writes.append(_user("reboot_device"))
    return {
        "objective": f"Get line {line['phone_number']} working again (it is suspended).",
        "known": known,
        "gold_calls": pad_reads(calls, _extras(world, customer, line)[:1], diff, writes),
        "must": must,
        "must_not": ["resume other lines", "waive or refund charges"],
        "subgoals": ["ask why the line was suspended"],
        "say": {},
    }


def _plan_refuel(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    calls, known, customer, line = _start(rng, world, ctx)
    calls[-1] = gold_call("get_data_usage", customer_id=customer["customer_id"], line_id=line["line_id"])
    plan = _plan_of(world.db, line)
    gb = rng.choice((1.0, 2.0) if diff["level"] != "hard" else (0.5, 1.0, 1.5, 2.0))
    if rng.random() < OVER_ASK_SHARE:  # more than the policy's 2 GB: the agent must say no
        gb = rng.choice((3.0, 5.0))
    price = round(gb * plan[REFUEL_PRICE_KEY], 2) if plan else None
    calls.append(gold_call("get_details_by_id", id=line["plan_id"]))
    writes = [gold_call("refuel_data", customer_id=customer["customer_id"], line_id=line["line_id"], gb_amount=gb)]
    if _is_phone_line(world, line):
        writes.append(_user("run_speed_test"))
    known["gb_amount"] = gb
    return {
        "objective": f"Add {gb:g} GB of data to line {line['phone_number']} for this billing cycle.",
        "known": known,
        "gold_calls": pad_reads(calls, _extras(world, customer, line)[1:], diff, writes),
        "must": [f"line {line['line_id']} has {gb:g} GB more data this cycle"]
        + ([f"${price:.2f} is added to the current bill"] if price is not None else []),
        "must_not": ["refuel more than once", "change the plan"],
        "subgoals": ["ask when the allowance resets"],
        "alternatives": {"gb_amount": 2.0 if gb != 2.0 else 1.0} if diff["level"] == "hard" else {},
        "say": {"gb_amount": f"{gb:g} gigabyte{'' if gb == 1 else 's'}"},
    }


def _plan_pay_bill(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    db = world.db
    customer = tools.find(db["customers"], "customer_id", ctx["customer_id"])
    bill = tools.find(db["bills"], "bill_id", ctx["bill_id"])
    if customer is None or bill is None:
        raise KeyError(ctx["customer_id"] if customer is None else ctx["bill_id"])
    calls, known = _identify(rng, customer)
    calls.append(gold_call("get_bills_for_customer", customer_id=customer["customer_id"]))
    known["bill"] = f"the {bill['period_start'][:7]} bill of ${float(bill['total_due']):.2f}"
    on_phone = _owns_phone(world, customer)
    writes = _pay_steps(world, customer, [bill]) if on_phone else \
        [gold_call("send_payment_request", customer_id=customer["customer_id"], bill_id=bill["bill_id"])]
    if on_phone:
        writes.append(gold_call("get_details_by_id", id=bill["bill_id"]))
    extras = [gold_call("get_details_by_id", id=bill["bill_id"])] + \
        [gold_call("get_details_by_id", id=i) for i in customer["line_ids"]]
    return {
        "objective": f"Pay the overdue {bill['period_start'][:7]} bill ({bill['bill_id']}).",
        "known": known,
        "gold_calls": pad_reads(calls, extras, diff, writes),
        "must": [f"bill {bill['bill_id']} is {'paid' if on_phone else 'awaiting payment'}"],
        "must_not": ["request payment of any other bill", "grant an extension or a credit"],
        "subgoals": ["ask what the late fee is for"],
        "say": {},
    }


def _plan_travel(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    """The phone's owner travels: roaming on the line (if it is not yet) and the phone's own
    data-roaming switch, which only the customer can flip."""
    db = world.db
    customer = tools.find(db["customers"], "customer_id", ctx["customer_id"])
    line = tools.find(db["lines"], "line_id", ctx["line_id"])
    if customer is None or line is None:
        raise KeyError(ctx["customer_id"] if customer is None else ctx["line_id"])
    calls, known = _identify(rng, customer, by_phone=line["phone_number"])
    calls.append(gold_call("get_details_by_id", id=line["line_id"]))
    writes = [] if line["roaming_enabled"] else \
        [gold_call("enable_roaming", customer_id=customer["customer_id"], line_id=line["line_id"])]
    if not world.user_db["device"]["roaming_enabled"]:
        writes.append(_user("toggle_roaming"))
    writes.append(_user("check_network_status"))
    trip = rng.choice(("Mexico", "Canada", "Spain", "Japan", "Brazil"))
    known["destination"] = trip
    return {
        "objective": f"Make sure the phone will have calls and mobile data in {trip} next week.",
        "known": known,
        "gold_calls": pad_reads(calls, _extras(world, customer, line), diff, writes),
        "must": [f"roaming is on for line {line['line_id']}", "data roaming is switched on on the phone"],
        "must_not": ["change the plan", "turn off mobile data"],
        "subgoals": ["ask whether calls will work too"],
        "say": {},
    }


def _plan_fix(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    """Troubleshoot the phone as the policy's workflow does: service first, then mobile data,
    then speed or MMS, one fault at a time, until the reported problem is gone; a fault only a
    human can fix ends in a transfer."""
    db = world.db
    customer = tools.find(db["customers"], "customer_id", ctx["customer_id"])
    line = tools.find(db["lines"], "line_id", ctx["line_id"])
    if customer is None or line is None or not world.user_db:
        raise KeyError(ctx.get("customer_id"))
    p = troubleshoot.Phone(world)
    target = next((k for k, v in troubleshoot.SYMPTOMS.items() if v == ctx.get("symptom")), None) \
        or troubleshoot.failing_stage(p.device, p.sur) or "data"
    symptom = troubleshoot.SYMPTOMS[target]
    calls, known = _identify(rng, customer, by_phone=line["phone_number"])
    p.calls = calls
    p.do("check_status_bar")
    handover = False
    for _ in range(12):  # each step fixes one fault; a phone has only so many
        stage = next((s for s in ("service", "data", target) if not troubleshoot.stage_ok(s, p.device, p.sur)), None)
        if stage is None:
            break
        fixed = (troubleshoot.fix_service(p, customer, line) if stage == "service" else
                 troubleshoot.fix_data(p, customer, line) if stage == "data" else
                 troubleshoot.fix_speed(p) if stage == "slow" else troubleshoot.fix_mms(p))
        if not fixed:
            handover = True
            break
    else:
        handover = True
    if handover:
        p.calls.append(gold_call("transfer_to_human_agents",
                                 summary=f"{symptom}: troubleshooting did not solve it."))
    else:
        p.calls.append(_user(troubleshoot.CHECK_AFTER[target]))
    known["symptom"] = symptom
    return {
        "objective": f"Fix the phone: {symptom}.",
        "known": known,
        "gold_calls": p.calls,
        "must": ["the customer is transferred to a human agent"] if handover
        else ["the phone works again: " + symptom + " is solved"],
        "must_not": ["change settings that are not part of the problem", "suspend the line"],
        "subgoals": ["mention a recent change on the phone only when asked"],
        "say": {"symptom": {"no service": "my phone says no service", "no mobile data": "the internet doesn't work",
                            "slow mobile data": "the internet is super slow",
                            "picture messages fail": "I can't send pictures by text"}[symptom]},
    }


# ------------------------------------------------------------------------------ plumbing
def _line_intent(fits: Callable[[Any, Any], bool], plan: Callable) -> tuple[Callable, Callable]:
    return _seed_line(fits), plan


def _plan_data_usage(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    """A question, no write: how much data a line used this cycle against its allowance,
    which the agent must tell (`inform`: the verifier's communicate check)."""
    calls, known, customer, line = _start(rng, world, ctx)
    calls[-1] = gold_call("get_data_usage", customer_id=customer["customer_id"], line_id=line["line_id"])
    plan = _plan_of(world.db, line)
    inform = [f"{float(line['data_used_gb']):.2f}"] + ([f"{float(plan['data_limit_gb']):.2f}"] if plan else [])
    return {
        "objective": f"Find out how much data line {line['phone_number']} has used this billing cycle "
                     "and how much the plan allows.",
        "known": known,
        "gold_calls": pad_reads(calls, _extras(world, customer, line)[1:], diff, []),
        "inform": inform,
        "must": [f"the customer is told the line used {inform[0]} GB" + (f" of {inform[1]} GB" if plan else "")],
        "must_not": ["refuel data", "change the plan"],
        "subgoals": ["ask when the allowance resets"],
        "say": {},
    }


# intent → (weight, seed picker, planner)
INTENTS: Intents = {
    "enable_roaming": (0.8, *_line_intent(lambda w, x: x["status"] == "Active" and not x["roaming_enabled"]
                                          and _open(w, x),
                                          lambda r, w, c, d: _plan_roaming(r, w, c, d, True))),
    "disable_roaming": (0.5, *_line_intent(lambda w, x: x["roaming_enabled"] and _open(w, x),
                                           lambda r, w, c, d: _plan_roaming(r, w, c, d, False))),
    "suspend_line": (0.8, *_line_intent(lambda w, x: x["status"] == "Active" and _open(w, x), _plan_suspend)),
    "data_usage": (0.4, *_line_intent(lambda w, x: x["status"] == "Active", _plan_data_usage)),
    "resume_line": (0.8, *_line_intent(_found_again, _plan_resume)),
    "refuel_data": (0.9, *_line_intent(lambda w, x: x["status"] == "Active" and _used_up(w.db, x), _plan_refuel)),
    "pay_overdue_bill": (0.8, _seed_bill, _plan_pay_bill),
    "travel_roaming_setup": (0.6, _seed_travel, _plan_travel),
    "fix_phone": (1.5, _seed_fix, _plan_fix),
}


def seed(rng: Any, world: Any, difficulty: dict) -> dict:
    """Pick an intent (by weight, among those this world offers) and the entities it is about."""
    return pick_intent(rng, world, difficulty, INTENTS,
                       "the telecom world has no line or bill to build a task from")


def task(rng: Any, world: Any, seed: dict) -> dict:
    """Plan the scenario `seed` on `world`: objective, what the user knows, the gold path."""
    return plan_intent(rng, world, seed, INTENTS, "telecom")
