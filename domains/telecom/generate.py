"""Seeded generator of telecom worlds: the carrier's records and one customer's phone.

`build(seed, size)` returns a JSON-ready `TelecomDB` (τ²-bench's shape and canonical form:
lists of plans, customers, lines, bills, devices, every field present, datetimes as
"YYYY-MM-DD HH:MM:SS"). At size 1.0: 7 plans, 120 customers, about 210 lines, a device per
line plus some spares, and a bill per month of membership (Dec–Feb issued, March in draft,
as τ²-bench's own records are on its clock, 2025-02-25) — about 450 bills. `size` scales the
customers (and with them everything else); at least 3 customers are made, so tiny worlds
still have every kind of record.

`build_user(seed, size, db, *, line_id=None, faults=None)` returns a `TelecomUserDB`: the
phone of the customer of one line, set up as τ²-bench sets up a task — `set_user_info`, then
the task's breakages, which are τ²-bench's own initialization actions run by the domain's
action implementations (`turn_airplane_mode_on`, `unseat_sim_card`, `break_apn_settings`,
`turn_data_off`, `break_vpn`, ...; see `FAULTS`), each followed by the dual-control sync, and
a final network search. The line's state in the records is the carrier's side of the
problem: a line suspended for an unpaid bill, a used-up data allowance, no roaming service.

Determinism: one `random.Random(seed)` drives everything, in a fixed order; no clock, no global
random. Dates are relative to `NOW`, which equals the domain's `now`.

Coherence kept by construction: every line belongs to exactly one customer and its device
exists; customers' `line_ids`/`bill_ids` match the lines and bills; bill totals equal the sum of
their line items; draft bills carry the data refuels recorded on the lines; customers whose
lines are suspended for non-payment have an overdue bill; pending customers have lines pending
activation; closed accounts have closed lines and no open bills.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from runtime.env.impls import load_sibling


data = load_sibling(__file__, "data")
phone = load_sibling(__file__, "phone")
phone_actions = load_sibling(__file__, "phone_actions")
phone_tools = load_sibling(__file__, "phone_tools")
tools = load_sibling(__file__, "tools")

NOW = datetime(2025, 2, 25, 12, 8, 0)  # == domain.yaml `now` (τ²-bench's clock)
TODAY = NOW.date()
CUSTOMERS_AT_SIZE_1 = 120
# Bill periods: three issued months and the next one, still a draft.
PERIODS: tuple[tuple[date, date], ...] = (
    (date(2024, 12, 1), date(2024, 12, 31)),
    (date(2025, 1, 1), date(2025, 1, 31)),
    (date(2025, 2, 1), date(2025, 2, 28)),
    (date(2025, 3, 1), date(2025, 3, 31)),
)
ACCOUNT_MIX = (("Active", 0.82), ("Suspended", 0.08), ("Pending Verification", 0.06),
               ("Closed", 0.04))
LINES_PER_CUSTOMER = ((1, 0.5), (2, 0.3), (3, 0.15), (4, 0.05))


def _pick(rng: random.Random, weighted: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, (end - start).days))


class _World:
    """Accumulates the records of one world while customers are generated one by one."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.plans = [
            {"plan_id": pid, "name": name, "data_limit_gb": limit, "price_per_month": price,
             "data_refueling_price_per_gb": refuel}
            for pid, name, limit, price, refuel in data.PLANS
        ]
        self.plan_by_id = {p["plan_id"]: p for p in self.plans}
        self.customers: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self.bills: list[dict[str, Any]] = []
        self.devices: list[dict[str, Any]] = []
        self.numbers: set[str] = set()
        self.emails: set[str] = set()

    # -------------------------------------------------------------------------- records
    def phone_number(self, area_codes: tuple[str, ...]) -> str:
        while True:
            number = f"{self.rng.choice(area_codes)}-555-{self.rng.randint(100, 9999):04d}"
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def device(self, kind: tuple[str, str, bool], activated_on: date | None) -> dict[str, Any]:
        device_type, model, esim = kind
        rng = self.rng
        imei = None if device_type == "router" else "35" + "".join(
            str(rng.randint(0, 9)) for _ in range(13))
        record = {
            "device_id": f"D{1001 + len(self.devices)}", "device_type": device_type,
            "model": model, "imei": imei, "is_esim_capable": esim,
            "activated": activated_on is not None,
            "activation_date": (f"{activated_on.isoformat()} {rng.randint(8, 19):02d}:"
                                f"{rng.randint(0, 59):02d}:00" if activated_on else None),
            "last_esim_transfer_date": None,
        }
        if esim and activated_on and rng.random() < 0.1:
            moved = _day(rng, activated_on, TODAY - timedelta(days=1))
            record["last_esim_transfer_date"] = f"{moved.isoformat()} 12:00:00"
        self.devices.append(record)
        return record

    def line(self, account: str, primary: bool, area_codes: tuple[str, ...],
             created: date) -> dict[str, Any]:
        rng = self.rng
        connected = not primary and rng.random() < 0.35
        kind = rng.choice(data.CONNECTED_MODELS if connected else data.DEVICE_MODELS)
        plan_id = (data.CONNECTED_DEVICE_PLAN if connected else
                   rng.choice([p[0] for p in data.PLANS if p[0] != data.CONNECTED_DEVICE_PLAN]))
        status = {"Suspended": "Suspended", "Closed": "Closed",
                  "Pending Verification": "Pending Activation"}.get(account, "Active")
        if status == "Active" and rng.random() < 0.05:
            status = "Suspended"  # a lost or stolen device on an otherwise good account
        pending = status == "Pending Activation"
        dev = self.device(kind, None if pending else created)
        limit = self.plan_by_id[plan_id]["data_limit_gb"]
        used = 0.0 if status != "Active" else round(rng.uniform(0.0, limit * 1.15), 2)
        refuel = rng.choice((1.0, 2.0)) if status == "Active" and rng.random() < 0.1 else 0.0
        record = {
            "line_id": f"L{1001 + len(self.lines)}",
            "phone_number": self.phone_number(area_codes),
            "status": status, "plan_id": plan_id, "device_id": dev["device_id"],
            "data_used_gb": used, "data_refueling_gb": refuel,
            "roaming_enabled": status == "Active" and rng.random() < 0.15,
            "contract_end_date": (_day(rng, date(2025, 6, 1), date(2027, 12, 31)).isoformat()
                                  if rng.random() < 0.4 else None),
            "last_plan_change_date": (_day(rng, created, TODAY - timedelta(days=20)).isoformat()
                                      if not pending and rng.random() < 0.25 else None),
            "last_sim_replacement_date": (_day(rng, created, TODAY).isoformat()
                                          if not pending and rng.random() < 0.15 else None),
            "suspension_start_date": None,
        }
        if status == "Suspended":
            record["suspension_start_date"] = _day(
                rng, TODAY - timedelta(days=20), TODAY - timedelta(days=1)).isoformat()
            if rng.random() < 0.2:  # suspended because the contract ended: not to be resumed
                record["contract_end_date"] = _day(rng, date(2024, 12, 1), TODAY - timedelta(days=21)).isoformat()
        self.lines.append(record)
        return record

    def customer(self) -> None:
        rng = self.rng
        account = _pick(rng, ACCOUNT_MIX)
        first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
        city, state, zip_prefix, area_codes = rng.choice(data.CITIES)
        if account == "Pending Verification":
            created = _day(rng, TODAY - timedelta(days=14), TODAY - timedelta(days=1))
        else:
            created = _day(rng, date(2018, 1, 1), date(2024, 11, 15))
        customer_id = f"C{1001 + len(self.customers)}"
        lines = [self.line(account, i == 0, area_codes, created)
                 for i in range(_pick(rng, LINES_PER_CUSTOMER))]
        customer = {
            "customer_id": customer_id,
            "full_name": f"{first} {last}",
            "date_of_birth": _day(rng, date(1948, 1, 1), date(2005, 12, 31)).isoformat(),
            "email": self.email(first, last),
            "phone_number": lines[0]["phone_number"],
            "address": {
                "street": f"{rng.randint(10, 9899)} {rng.choice(data.STREET_NAMES)}",
                "city": city, "state": state,
                "zip_code": f"{zip_prefix}{rng.randint(0, 99):02d}",
            },
            "account_status": account,
            "payment_methods": [self.payment_method() for _ in range(rng.choice((1, 1, 2)))],
            "line_ids": [line["line_id"] for line in lines],
            "bill_ids": [],
            "created_at": (f"{created.isoformat()} {rng.randint(8, 20):02d}:"
                           f"{rng.randint(0, 59):02d}:00"),
            "last_extension_date": (_day(rng, date(2024, 6, 1), TODAY).isoformat()
                                    if account == "Active" and rng.random() < 0.1 else None),
            "goodwill_credit_used_this_year": (rng.choice((5.0, 10.0, 15.0, 25.0))
                                               if rng.random() < 0.15 else 0.0),
        }
        self.customers.append(customer)
        self.customer_bills(customer, lines, created)

    def email(self, first: str, last: str) -> str:
        base = f"{first}.{last}".lower()
        candidate, n = base, 1
        while candidate in self.emails:
            n += 1
            candidate = f"{base}{n}"
        self.emails.add(candidate)
        return f"{candidate}@{self.rng.choice(data.EMAIL_DOMAINS)}"

    def payment_method(self) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(("Credit Card", "Credit Card", "Debit Card", "PayPal"))
        expiry = ("N/A" if kind == "PayPal"
                  else f"{rng.randint(1, 12):02d}/{rng.randint(2025, 2030)}")
        return {"method_type": kind, "account_number_last_4": f"{rng.randint(0, 9999):04d}",
                "expiration_date": expiry}

    # ---------------------------------------------------------------------------- bills
    def customer_bills(self, customer: dict[str, Any], lines: list[dict[str, Any]],
                       created: date) -> None:
        rng = self.rng
        account = customer["account_status"]
        billable = [line for line in lines if line["status"] != "Pending Activation"]
        if not billable:
            return
        # Which issued month (if any) is left unpaid: suspended accounts always owe one.
        overdue_month = 1 if account == "Suspended" else (
            1 if account == "Active" and rng.random() < 0.08 else None)
        for month, (start, end) in enumerate(PERIODS):
            if start < created.replace(day=1) or (account == "Closed" and month == len(PERIODS) - 1):
                continue
            current = month == len(PERIODS) - 1
            if current:
                status = "Draft"
            elif month == overdue_month:
                status = "Overdue"
            elif month == 2:  # issued on February 5th, due on the 19th
                status = "Paid" if rng.random() < 0.3 else "Issued"
            else:
                status = "Disputed" if rng.random() < 0.04 else "Paid"
            self.bill(customer, billable, start, end, status)

    def bill(self, customer: dict[str, Any], lines: list[dict[str, Any]], start: date,
             end: date, status: str) -> None:
        """A bill in τ²-bench's style: issued on the 5th of its month (a draft on the 1st),
        due 14 days later; a plan charge per line, roaming charges, and on the draft the data
        refuels of this cycle, worded as `refuel_data` words them (τ²-bench's drafts have nothing
        else)."""
        rng = self.rng
        issue = start if status == "Draft" else start + timedelta(days=4)
        items: list[dict[str, Any]] = []
        for line in lines:
            plan = self.plan_by_id[line["plan_id"]]
            number = line["phone_number"]
            if status != "Draft":  # a draft has only what was added during the cycle
                items.append({"description": f"{plan['name']} - Line {number}",
                              "amount": plan["price_per_month"], "date": issue.isoformat(),
                              "item_type": "Plan Charge"})
            if status == "Draft" and line["data_refueling_gb"] > 0:
                gb, price = line["data_refueling_gb"], plan["data_refueling_price_per_gb"]
                items.append({"description": f"Data refueling: {gb} GB at ${price}/GB",
                              "amount": gb * price,
                              "date": _day(rng, TODAY - timedelta(days=20), TODAY).isoformat(),
                              "item_type": "Charge"})
            elif status != "Draft" and line["roaming_enabled"] and rng.random() < 0.3:
                items.append({"description": f"International Roaming - Line {number}",
                              "amount": float(rng.choice((10, 15, 25, 40))),
                              "date": issue.isoformat(), "item_type": "Roaming"})
        bill_id = f"B{1000001 + len(self.bills)}"
        self.bills.append({
            "bill_id": bill_id, "customer_id": customer["customer_id"],
            "period_start": start.isoformat(), "period_end": end.isoformat(),
            "issue_date": issue.isoformat(),
            "total_due": round(sum(i["amount"] for i in items), 2) if items else 0.0,
            "due_date": (issue + timedelta(days=14)).isoformat(),
            "line_items": items, "status": status,
        })
        customer["bill_ids"].append(bill_id)

    def spare_devices(self, count: int) -> None:
        """Devices known to the carrier but not on any line (old or not yet used phones)."""
        for _ in range(count):
            self.device(self.rng.choice(data.DEVICE_MODELS + data.CONNECTED_MODELS), None)


def build(seed: int, size: float = 1.0) -> dict[str, Any]:
    """A deterministic carrier database for `seed`, scaled by `size` (see module doc)."""
    rng = random.Random(seed)
    world = _World(rng)
    n_customers = max(3, round(CUSTOMERS_AT_SIZE_1 * size))
    for _ in range(n_customers):
        world.customer()
    world.spare_devices(max(1, round(n_customers * 0.1)))
    return {"plans": world.plans, "customers": world.customers, "lines": world.lines,
            "bills": world.bills, "devices": world.devices}


# ------------------------------------------------------------------------------ user side
# τ²-bench's phone breakages: its task initialization actions, by the issue they cause. Each is
# a list of (action or user tool, arguments), run as τ²-bench runs them.
FAULTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    # no service
    "airplane_mode_on": [("turn_airplane_mode_on", {})],
    "unseat_sim_card": [("unseat_sim_card", {})],
    "lock_sim_card_pin": [("lock_sim_card", {"mode": "pin"})],
    "lock_sim_card_puk": [("lock_sim_card", {"mode": "puk"})],
    "break_apn_settings": [("break_apn_settings", {})],
    # no or slow mobile data
    "data_mode_off": [("turn_data_off", {})],
    "user_abroad_roaming_off": [("set_user_location", {"abroad": True}), ("turn_roaming_off", {})],
    "user_abroad_roaming_on": [("set_user_location", {"abroad": True}), ("turn_roaming_on", {})],
    "data_saver_mode_on": [("turn_data_saver_mode_on", {})],
    "bad_network_preference": [("set_network_mode_preference", {"mode": "2g_only"})],
    "bad_vpn": [("break_vpn", {})],
    # picture messages
    "break_apn_mms_setting": [("break_apn_mms_setting", {})],
    "bad_wifi_calling": [("set_wifi_calling", {"enabled": True, "mms_over_wifi": True})],
    "break_app_sms_permission": [("remove_app_permission", {"app_name": "messaging", "permission": "sms"})],
    "break_app_storage_permission": [("remove_app_permission", {"app_name": "messaging", "permission": "storage"})],
}
# Breakages that exclude each other (one location; one SIM problem).
_EXCLUSIVE = ({"user_abroad_roaming_off", "user_abroad_roaming_on"},
              {"unseat_sim_card", "lock_sim_card_pin", "lock_sim_card_puk"})
SUSPENDED_LINE_SHARE = 0.15  # phones whose line is suspended for an unpaid bill


def build_user(seed: int, size: float = 1.0, db: dict[str, Any] | None = None, *,
               line_id: str | None = None, faults: list[str] | None = None) -> dict[str, Any]:
    """The phone of the customer who owns one line of `db` (built from `seed, size` when not
    given), set up as τ²-bench sets up a task.

    line_id  the phone's line; default: a phone line drawn from the active ones (some with
             their data allowance used up) and, sometimes, one suspended for an unpaid bill
    faults   names of `FAULTS` to apply, in order (`[]`: a healthy phone); default: one to
             three drawn at random. Every generated phone is broken, as in every τ²-bench
             telecom task: a run has one world, and its troubleshooting tasks need a problem.
    `db` is not changed: the carrier's side of a problem is the line's state in it.
    """
    rng = random.Random(seed)
    db = build(seed, size) if db is None else db
    line = _choose_line(rng, db, line_id)
    owner = next(c for c in db["customers"] if line["line_id"] in c["line_ids"])
    user = {"device": phone.default_device(), "surroundings": phone.default_surroundings()}
    user["device"]["battery_level"] = rng.randint(25, 100)
    if faults is None:
        faults = _draw_faults(rng)
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown phone fault {unknown[0]!r}; known: {', '.join(FAULTS)}")
    # The carrier's records are only read (sync marks bills paid only after a payment).
    ctx = SimpleNamespace(db=db, user_db=user, now=NOW.isoformat())
    steps = [("set_user_info", {"name": owner["full_name"], "phone_number": line["phone_number"]})]
    steps += [step for name in faults for step in FAULTS[name]]
    steps.append(("simulate_network_search", {}))
    for name, arguments in steps:  # an action, or a phone tool (τ²-bench's set-up uses both)
        (getattr(phone_actions, name, None) or getattr(phone_tools, name))(ctx, **arguments)
        tools.sync(ctx)
    return user


def _draw_faults(rng: random.Random) -> list[str]:
    chosen: list[str] = []
    for name in rng.sample(sorted(FAULTS), k=rng.choice((1, 2, 2, 3, 3))):
        if not any(name in group and chosen_name in group for group in _EXCLUSIVE for chosen_name in chosen):
            chosen.append(name)
    return chosen


def _choose_line(rng: random.Random, db: dict[str, Any], line_id: str | None) -> dict[str, Any]:
    if line_id is not None:
        for line in db["lines"]:
            if line["line_id"] == line_id:
                return line
        raise ValueError(f"line {line_id} not found in the database")
    phones = {d["device_id"] for d in db["devices"] if d["device_type"] == "phone"}
    overdue = {b["customer_id"] for b in db["bills"] if b["status"] == "Overdue"}
    owner = {i: c for c in db["customers"] for i in c["line_ids"]}
    on_phone = [line for line in db["lines"] if line["device_id"] in phones and line["line_id"] in owner]
    active = [line for line in on_phone if line["status"] == "Active"]
    unpaid = [line for line in on_phone if line["status"] == "Suspended"
              and owner[line["line_id"]]["customer_id"] in overdue]
    if unpaid and rng.random() < SUSPENDED_LINE_SHARE:
        return rng.choice(unpaid)
    # Tiny worlds may lack an active phone line: fall back to any active line, then to any line.
    candidates = active or [line for line in db["lines"] if line["status"] == "Active"] or list(db["lines"])
    if not candidates:
        raise ValueError("the database has no lines")
    return rng.choice(candidates)
