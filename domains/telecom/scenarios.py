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
implementations (`_Phone`), so each planned step is exactly what the tools will do there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from runtime.env.errors import ToolError
from runtime.env.impls import load_sibling

from runtime.workers.offline.intents import (
    Intents,
    gold_call,
    pad_reads,
    pick_intent,
    plan_intent,
)


phone = load_sibling(__file__, "phone")
phone_tools = load_sibling(__file__, "phone_tools")
tools = load_sibling(__file__, "tools")

FITTING_SHARE = 0.5  # how often the line or bill is one the request fits
OVER_ASK_SHARE = 0.3  # how often a refuel asks for more data than the policy allows
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
    """Only when the phone really has a problem: the symptom the customer calls about, one of
    those the phone shows (without service there is no data and no MMS either)."""
    ctx = _seed_travel(rng, world, difficulty)
    if ctx is None:
        return None
    shown = _reportable(world.user_db["device"], world.user_db["surroundings"])
    return None if not shown else ctx | {"symptom": SYMPTOMS[rng.choice(shown)]}


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
SYMPTOMS = {"service": "no service", "data": "no mobile data", "slow": "slow mobile data",
            "mms": "picture messages fail"}
# What the customer checks at the end to see that the problem is gone.
CHECK_AFTER = {"service": "check_status_bar", "data": "run_speed_test", "slow": "run_speed_test",
               "mms": "can_send_mms"}


def _stage_ok(stage: str, device: Any, sur: Any) -> bool:
    """Does the phone pass this stage (each stage needs the ones before it)?"""
    if device["network_connection_status"] != "connected":
        return False
    if stage == "service":
        return True
    if not phone.mobile_data_working(device, sur):
        return False
    if stage == "slow":
        return phone.speed_test(device, sur)[1] == "Excellent"
    return stage == "data" or phone.can_send_mms(device, sur)


def _failing_stage(device: Any, sur: Any) -> str | None:
    """The first of service, data, speed, MMS that does not work."""
    return next((s for s in ("service", "data", "slow", "mms") if not _stage_ok(s, device, sur)), None)


def _reportable(device: Any, sur: Any) -> list[str]:
    """The stages a customer may complain about: the first failing one, or a later one it
    breaks too (no service: no data, no MMS); "slow" only while data works."""
    first = _failing_stage(device, sur)
    if first is None:
        return []
    later = [s for s in ("data", "mms") if s != first and ("service", "data", "slow", "mms").index(s)
             > ("service", "data", "slow", "mms").index(first) and not _stage_ok(s, device, sur)]
    return [first] + later


class _Phone:
    """A private copy of the world on which the troubleshooting is planned: each planned
    call runs the domain's own implementation (and the sync), so the plan is what the
    tools will do."""

    def __init__(self, world: Any) -> None:
        self.ctx = SimpleNamespace(db=copy.deepcopy(world.db), user_db=copy.deepcopy(world.user_db),
                                   now=world.now, new_id=lambda prefix="", length=6: prefix + "0" * length)
        self.calls: list[dict] = []

    @property
    def device(self) -> Any:
        return self.ctx.user_db["device"]

    @property
    def sur(self) -> Any:
        return self.ctx.user_db["surroundings"]

    def do(self, name: str, side: str = "user", **arguments: Any) -> Any:
        module = tools if side == "agent" else phone_tools
        try:
            out = getattr(module, name)(self.ctx, **arguments)
            tools.sync(self.ctx)
        except ToolError as exc:  # the plan would fail: this context does not fit
            raise ValueError(f"{name} fails here: {exc}") from None
        self.calls.append(gold_call(name, side, **arguments))
        return out


def _fix_service(p: _Phone, customer: Any, line: Any) -> bool:
    """One fix for no service; False when only a human can help."""
    device, sur = p.device, p.sur
    if device["airplane_mode"]:
        p.do("toggle_airplane_mode")
    elif phone.sim_status(device) == "missing":
        p.do("check_sim_status")
        p.do("reseat_sim_card")
    elif device["sim_card_status"] in ("locked_pin", "locked_puk"):
        p.do("check_sim_status")
        return False
    elif device["active_apn_settings"]["apn_name"] == "broken":
        p.do("check_apn_settings")
        p.do("reset_apn_settings")
        p.do("reboot_device")
    elif not sur["line_active"]:
        return _lift_suspension(p, customer, line)
    else:  # the records are fine again: a restart finds the network
        p.do("reboot_device")
    return True


def _lift_suspension(p: _Phone, customer: Any, line: Any) -> bool:
    """Pay what is overdue on the phone, resume the line, restart the phone; a line whose
    contract ended (or that is not merely suspended) goes to a human."""
    cid, lid = customer["customer_id"], line["line_id"]
    p.do("get_details_by_id", "agent", id=lid)
    record = _find(p.ctx.db["lines"], "line_id", lid)
    ended = record.get("contract_end_date") is not None and record["contract_end_date"] < str(p.ctx.now)[:10]
    if record["status"] != "Suspended" or ended:
        return False
    p.do("get_bills_for_customer", "agent", customer_id=cid)
    for bill in [b for b in p.ctx.db["bills"] if b["customer_id"] == cid and b["status"] == "Overdue"]:
        p.do("send_payment_request", "agent", customer_id=cid, bill_id=bill["bill_id"])
        p.do("check_payment_request")
        p.do("make_payment")
    p.do("resume_line", "agent", customer_id=cid, line_id=lid)
    p.do("reboot_device")
    return True


def _fix_data(p: _Phone, customer: Any, line: Any) -> bool:
    device, sur = p.device, p.sur
    cid, lid = customer["customer_id"], line["line_id"]
    if not device["data_enabled"]:
        p.do("check_network_status")
        p.do("toggle_data")
    elif sur["is_abroad"] and not device["roaming_enabled"]:
        p.do("toggle_roaming")
    elif sur["is_abroad"] and not sur["roaming_allowed"]:
        p.do("get_details_by_id", "agent", id=lid)
        p.do("enable_roaming", "agent", customer_id=cid, line_id=lid)
    elif sur["mobile_data_usage_exceeded"]:
        p.do("get_data_usage", "agent", customer_id=cid, line_id=lid)
        record = _find(p.ctx.db["lines"], "line_id", lid)
        plan = _plan_of(p.ctx.db, record)
        missing = record["data_used_gb"] - plan["data_limit_gb"] - record["data_refueling_gb"]
        if missing >= 2.0:  # more than a refuel may add: a plan change, not ours
            return False
        p.do("refuel_data", "agent", customer_id=cid, line_id=lid, gb_amount=2.0)
    else:
        return False
    return True


def _fix_speed(p: _Phone) -> bool:
    device = p.device
    vpn = device.get("vpn_details") or {}
    if device["network_mode_preference"] != "4g_5g_preferred":
        p.do("check_network_mode_preference")
        p.do("set_network_mode_preference", mode="4g_5g_preferred")
    elif device["data_saver_mode"]:
        p.do("check_data_restriction_status")
        p.do("toggle_data_saver_mode")
    elif device["vpn_connected"] and vpn.get("server_performance") == "poor":
        p.do("check_vpn_status")
        p.do("disconnect_vpn")
    else:
        return False
    return True


def _fix_mms(p: _Phone) -> bool:
    device = p.device
    perms = (device["app_statuses"].get("messaging") or {}).get("permissions") or {}
    if device["network_technology_connected"] == "2G":
        p.do("check_network_status")
        p.do("set_network_mode_preference", mode="4g_5g_preferred")
    elif device["wifi_calling_enabled"] and device["wifi_calling_mms_over_wifi"]:
        p.do("check_wifi_calling_status")
        p.do("toggle_wifi_calling")
    elif device["active_apn_settings"].get("mmsc_url") is None:
        p.do("check_apn_settings")
        p.do("reset_apn_settings")
        p.do("reboot_device")
    elif perms and not (perms.get("sms") and perms.get("storage")):
        p.do("check_app_permissions", app_name="messaging")
        for permission in ("storage", "sms"):
            if not perms.get(permission):
                p.do("grant_app_permission", app_name="messaging", permission=permission)
    else:
        return False
    return True


def _plan_fix(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:
    """Troubleshoot the phone as the policy's workflow does: service first, then mobile data,
    then speed or MMS, one fault at a time, until the reported problem is gone; a fault only a
    human can fix ends in a transfer."""
    db = world.db
    customer = _find(db["customers"], "customer_id", ctx["customer_id"])
    line = _find(db["lines"], "line_id", ctx["line_id"])
    if customer is None or line is None or not world.user_db:
        raise KeyError(ctx.get("customer_id"))
    p = _Phone(world)
    target = next((k for k, v in SYMPTOMS.items() if v == ctx.get("symptom")), None) \
        or _failing_stage(p.device, p.sur) or "data"
    symptom = SYMPTOMS[target]
    calls, known = _identify(rng, customer, by_phone=line["phone_number"])
    p.calls = calls
    p.do("check_status_bar")
    handover = False
    for _ in range(12):  # each step fixes one fault; a phone has only so many
        stage = next((s for s in ("service", "data", target) if not _stage_ok(s, p.device, p.sur)), None)
        if stage is None:
            break
        fixed = (_fix_service(p, customer, line) if stage == "service" else
                 _fix_data(p, customer, line) if stage == "data" else
                 _fix_speed(p) if stage == "slow" else _fix_mms(p))
        if not fixed:
            handover = True
            break
    else:
        handover = True
    if handover:
        p.calls.append(gold_call("transfer_to_human_agents",
                                 summary=f"{symptom}: troubleshooting did not solve it."))
    else:
        p.calls.append(_user(CHECK_AFTER[target]))
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
