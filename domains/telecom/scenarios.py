"""Offline task recipes of the telecom domain (docs/CONTRACTS.md §7).

`seed(rng, world, difficulty)` picks what a customer calls about and which line or bill;
`task(rng, world, seed)` plans what a policy-following agent does: find the customer (by phone
number, customer id, or name and date of birth), read the line or the bills, then make the
change. Dual control: what has to happen on the customer's own phone (the one phone of the
user database) is planned as user-side calls (`side: "user"`) — switching data roaming on
before a trip, paying a payment request, and the fixes of a phone troubleshooting session.

Lines and bills are sampled as customers bring them: mostly ones the request fits, sometimes
any. Nothing is filtered for feasibility: resuming a line while a bill is overdue, roaming on a
suspended line or a payment request for a bill that is not overdue make the gold path fail,
and TaskValidation rejects the task with the reason.
"""

from __future__ import annotations

import copy
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


def _load_sibling(stem: str) -> ModuleType:
    """A helper module next to this file, by path, under the name tools.py uses for it."""
    name = f"_eigenlang_domain_telecom_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


phone = _load_sibling("phone")
data = _load_sibling("data")

FITTING_SHARE = 0.7  # how often the line or bill is one the request fits
REFUEL_PRICE_KEY = "data_refueling_price_per_gb"


# ------------------------------------------------------------------------------ world facts
def _find(items: Any, key: str, value: Any) -> Any:
    return next((x for x in items if x[key] == value), None)


def _owner(db: Any, line_id: str) -> Any:
    return next((c for c in db["customers"] if line_id in c["line_ids"]), None)


def _phone_line(world: Any) -> Any:
    """The line of the phone in the user database (the customer who can act on it)."""
    if not world.user_db:
        return None
    return _find(world.db["lines"], "phone_number", world.user_db["surroundings"].get("phone_number"))


def _owns_phone(world: Any, customer: Any) -> bool:
    line = _phone_line(world)
    return line is not None and line["line_id"] in customer["line_ids"]


def _is_phone_line(world: Any, line: Any) -> bool:
    return (_phone_line(world) or {}).get("line_id") == line["line_id"]


def _plan_of(db: Any, line: Any) -> Any:
    return _find(db["plans"], "plan_id", line["plan_id"])


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
    customer = _find(db["customers"], "customer_id", ctx["customer_id"])
    line = _find(db["lines"], "line_id", ctx["line_id"])
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
    """Only when the phone really has a problem: the symptom the customer calls about."""
    ctx = _seed_travel(rng, world, difficulty)
    if ctx is None:
        return None
    symptom = _symptom(world.user_db["device"], world.user_db["surroundings"])
    return None if symptom is None else ctx | {"symptom": symptom}


# ------------------------------------------------------------------------------ plans
def _plan_roaming(rng: Any, world: Any, ctx: dict, diff: dict, enable: bool) -> dict:
    calls, known, customer, line = _start(rng, world, ctx)
    tool = "enable_roaming" if enable else "disable_roaming"
    writes = [gold_call(tool, customer_id=customer["customer_id"], line_id=line["line_id"])]
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
        "say": {"gb_amount": f"{gb:g} gigabytes"},
    }


def _plan_pay_bill(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    db = world.db
    customer = _find(db["customers"], "customer_id", ctx["customer_id"])
    bill = _find(db["bills"], "bill_id", ctx["bill_id"])
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
    customer = _find(db["customers"], "customer_id", ctx["customer_id"])
    line = _find(db["lines"], "line_id", ctx["line_id"])
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


# ------------------------------------------------------------------------------ troubleshooting
def _symptom(device: Any, sur: Any) -> str | None:
    if phone.registration(device, sur)[0] != "connected":
        return "no service"
    if phone.mobile_data_problem(device, sur) is not None:
        return "no mobile data"
    if _slow(device):
        return "slow mobile data"
    if phone.mms_problem(device, sur) is not None:
        return "picture messages fail"
    return None


def _slow(device: Any) -> bool:
    vpn = device.get("vpn_details") or {}
    return bool(device["data_saver_mode"] or device["network_mode_preference"] != "4g_5g_preferred"
                or (device["vpn_connected"] and vpn.get("server_performance") == "poor"))


def _fix_step(device: Any, sur: Any, customer: Any, line: Any, db: Any) -> tuple[list[dict], bool]:
    """The next fix for the first fault on the policy's order, applied to the copies:
    (calls, whether the session must end with a transfer)."""
    cid, lid = customer["customer_id"], line["line_id"]
    apn = device["active_apn_settings"]
    if device["airplane_mode"]:
        device["airplane_mode"] = False
        return [_user("toggle_airplane_mode")], False
    if device["sim_card_missing"] or device["sim_card_status"] == "missing":
        device.update(sim_card_missing=False, sim_card_status="active")
        return [_user("check_sim_status"), _user("reseat_sim_card")], False
    if device["sim_card_status"] in ("locked_pin", "locked_puk"):
        return [_user("check_sim_status"),
                gold_call("transfer_to_human_agents", summary="SIM card is locked; the customer needs an unlock code.")], True
    if not sur["line_active"]:
        if line["status"] != "Suspended":
            return [gold_call("transfer_to_human_agents", summary=f"Line {lid} is {line['status']}.")], True
        sur["line_active"] = True
        return [gold_call("resume_line", customer_id=cid, line_id=lid)], False
    if sur["is_abroad"] and not sur["roaming_allowed"]:
        sur["roaming_allowed"] = True
        return [gold_call("enable_roaming", customer_id=cid, line_id=lid)], False
    if device["network_mode_preference"] != "4g_5g_preferred":
        device["network_mode_preference"] = "4g_5g_preferred"
        return [_user("check_network_mode_preference"),
                _user("set_network_mode_preference", mode="4g_5g_preferred")], False
    if not device["data_enabled"]:
        device["data_enabled"] = True
        return [_user("toggle_data")], False
    if sur["is_abroad"] and not device["roaming_enabled"]:
        device["roaming_enabled"] = True
        return [_user("toggle_roaming")], False
    if apn["apn_name"] != "internet" or not apn.get("mmsc_url") or not apn.get("mms_apn"):
        device["active_apn_settings"] = phone.default_apn()
        device["vpn_connected"] = bool(device["vpn_enabled_setting"] and device.get("vpn_details"))
        return [_user("check_apn_settings"), _user("reset_apn_settings"), _user("reboot_device")], False
    if sur["mobile_data_usage_exceeded"]:
        sur["mobile_data_usage_exceeded"] = False
        return [gold_call("get_data_usage", customer_id=cid, line_id=lid),
                gold_call("refuel_data", customer_id=cid, line_id=lid, gb_amount=2.0)], False
    if device["data_saver_mode"]:
        device["data_saver_mode"] = False
        return [_user("check_data_restriction_status"), _user("toggle_data_saver_mode")], False
    if device["vpn_connected"] and (device.get("vpn_details") or {}).get("server_performance") == "poor":
        device.update(vpn_connected=False, vpn_enabled_setting=False)
        return [_user("check_vpn_status"), _user("disconnect_vpn")], False
    perms = device["app_statuses"].get("messaging", {}).get("permissions", {})
    missing = [p for p in ("sms", "storage") if perms and not perms.get(p)]
    if missing:
        for p in missing:
            perms[p] = True
        return [_user("check_app_permissions", app_name="messaging")] + \
            [_user("grant_app_permission", app_name="messaging", permission=p) for p in missing], False
    return [], True  # nothing the policy can fix from here (weak signal...): hand over


def _plan_fix(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    db = world.db
    customer = _find(db["customers"], "customer_id", ctx["customer_id"])
    line = _find(db["lines"], "line_id", ctx["line_id"])
    if customer is None or line is None or not world.user_db:
        raise KeyError(ctx.get("customer_id"))
    device = copy.deepcopy(dict(world.user_db["device"]))
    sur = copy.deepcopy(dict(world.user_db["surroundings"]))
    symptom = ctx.get("symptom") or _symptom(device, sur) or "no mobile data"
    calls, known = _identify(rng, customer, by_phone=line["phone_number"])
    calls.append(_user("check_status_bar"))
    handover = False
    for _ in range(12):  # each step fixes one fault; a phone has only so many
        if _symptom(device, sur) is None:
            break
        steps, handover = _fix_step(device, sur, customer, line, db)
        calls += steps
        phone.refresh_phone(device, sur)
        if handover:
            break
    if handover and calls[-1]["name"] != "transfer_to_human_agents":
        calls.append(gold_call("transfer_to_human_agents", summary=f"{symptom}: troubleshooting did not help."))
    elif not handover:  # the customer checks that it works now
        calls.append(_user("can_send_mms" if symptom == "picture messages fail" else "run_speed_test"))
    known["symptom"] = symptom
    return {
        "objective": f"Fix the phone: {symptom}.",
        "known": known,
        "gold_calls": calls,
        "must": ["the phone works again: " + symptom + " is solved"]
        if calls[-1]["name"] != "transfer_to_human_agents" else ["the customer is transferred to a human agent"],
        "must_not": ["change settings that are not part of the problem", "suspend the line"],
        "subgoals": ["mention a recent change on the phone only when asked"],
        "say": {"symptom": {"no service": "my phone says no service", "no mobile data": "the internet doesn't work",
                            "slow mobile data": "the internet is super slow",
                            "picture messages fail": "I can't send pictures by text"}.get(symptom, symptom)},
    }


# ------------------------------------------------------------------------------ plumbing
def _line_intent(fits: Callable[[Any, Any], bool], plan: Callable) -> tuple[Callable, Callable]:
    return _seed_line(fits), plan


# intent → (weight, seed picker, planner)
INTENTS: Intents = {
    "enable_roaming": (0.8, *_line_intent(lambda w, x: x["status"] == "Active" and not x["roaming_enabled"]
                                          and _open(w, x),
                                          lambda r, w, c, d: _plan_roaming(r, w, c, d, True))),
    "disable_roaming": (0.5, *_line_intent(lambda w, x: x["roaming_enabled"] and _open(w, x),
                                           lambda r, w, c, d: _plan_roaming(r, w, c, d, False))),
    "suspend_line": (0.8, *_line_intent(lambda w, x: x["status"] == "Active" and _open(w, x), _plan_suspend)),
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
