"""Seeded generator of telecom worlds: the carrier's records and one customer's phone.

`build(seed, size)` returns a JSON-ready `TelecomDB` (τ²-bench's shape: lists of plans,
customers, lines, bills, devices). At size 1.0: 7 plans, 120 customers, about 210 lines, a
device per line plus some spares, and a bill per month of membership (Dec–Feb issued, March in
draft) — about 450 bills. `size` scales the customers (and with them everything else); at
least 3 customers are made, so tiny worlds still have every kind of record.

`build_user(seed, size, db, **faults)` returns a `TelecomUserDB`: the phone of the customer of
one active phone line, healthy by default. Keyword faults (all off by default) set it up for
troubleshooting tasks; see `build_user`.

Determinism: one `random.Random(seed)` drives everything, in a fixed order; no clock, no global
random. Dates are relative to `NOW`, which equals the domain's `now`.

Coherence kept by construction: every line belongs to exactly one customer and its device
exists; customers' `line_ids`/`bill_ids` match the lines and bills; bill totals equal the sum of
their line items; draft bills carry the data refuels recorded on the lines; customers whose
lines are suspended for non-payment have an overdue bill; pending customers have lines pending
activation; closed accounts have closed lines and no open bills.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any


def _load_sibling(stem: str) -> ModuleType:
    """Load a helper module next to this file by path, under a domain-unique name: the
    runtime loads domain files by path, not as a package."""
    name = f"_eigenlang_domain_telecom_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


data = _load_sibling("data")
phone = _load_sibling("phone")

NOW = datetime(2025, 3, 15, 10, 0, 0)  # == domain.yaml `now`
TODAY = NOW.date()
CUSTOMERS_AT_SIZE_1 = 120
# Bill periods: three issued months and the current one, which is still a draft.
PERIODS: tuple[tuple[date, date], ...] = (
    (date(2024, 12, 1), date(2024, 12, 31)),
    (date(2025, 1, 1), date(2025, 1, 31)),
    (date(2025, 2, 1), date(2025, 2, 28)),
    (date(2025, 3, 1), date(2025, 3, 31)),
)
ACCOUNT_MIX = (("Active", 0.82), ("Suspended", 0.08), ("Pending Verification", 0.06),
               ("Closed", 0.04))
LINES_PER_CUSTOMER = ((1, 0.5), (2, 0.3), (3, 0.15), (4, 0.05))
TAX_RATE = 0.08
LATE_FEE = 5.0


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
            "activation_date": (f"{activated_on.isoformat()}T{rng.randint(8, 19):02d}:"
                                f"{rng.randint(0, 59):02d}:00" if activated_on else None),
            "last_esim_transfer_date": None,
        }
        if esim and activated_on and rng.random() < 0.1:
            moved = _day(rng, activated_on, TODAY - timedelta(days=1))
            record["last_esim_transfer_date"] = f"{moved.isoformat()}T12:00:00"
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
            "created_at": (f"{created.isoformat()}T{rng.randint(8, 20):02d}:"
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
            if start < created or (account == "Closed" and month == len(PERIODS) - 1):
                continue
            current = month == len(PERIODS) - 1
            if current:
                status = "Draft"
            elif month == overdue_month:
                status = "Overdue"
            elif month == 2:  # issued on March 1st, due March 21st
                status = "Paid" if rng.random() < 0.3 else "Issued"
            else:
                status = "Disputed" if rng.random() < 0.04 else "Paid"
            self.bill(customer, billable, start, end, status)

    def bill(self, customer: dict[str, Any], lines: list[dict[str, Any]], start: date,
             end: date, status: str) -> None:
        rng = self.rng
        issue = end + timedelta(days=1)
        items: list[dict[str, Any]] = []
        for line in lines:
            plan = self.plan_by_id[line["plan_id"]]
            items.append({"description": f"{plan['name']} monthly charge - line "
                                         f"{line['phone_number']}",
                          "amount": plan["price_per_month"], "date": start.isoformat(),
                          "item_type": "Plan Charge"})
            if status == "Draft" and line["data_refueling_gb"] > 0:
                gb = line["data_refueling_gb"]
                items.append({"description": f"Data refuel {gb:g} GB - line "
                                             f"{line['phone_number']}",
                              "amount": round(gb * plan["data_refueling_price_per_gb"], 2),
                              "date": _day(rng, start, TODAY).isoformat(),
                              "item_type": "Data Refuel"})
            elif status != "Draft" and line["roaming_enabled"] and rng.random() < 0.3:
                items.append({"description": f"International roaming - line "
                                             f"{line['phone_number']}",
                              "amount": float(rng.choice((10, 15, 25, 40))),
                              "date": _day(rng, start, end).isoformat(),
                              "item_type": "Roaming"})
        plan_total = sum(i["amount"] for i in items if i["item_type"] == "Plan Charge")
        items.append({"description": "Taxes and regulatory fees",
                      "amount": round(plan_total * TAX_RATE, 2), "date": start.isoformat(),
                      "item_type": "Taxes and Fees"})
        if status == "Overdue":
            items.append({"description": "Late payment fee", "amount": LATE_FEE,
                          "date": (issue + timedelta(days=21)).isoformat(),
                          "item_type": "Late Fee"})
        bill_id = f"B{1000001 + len(self.bills)}"
        self.bills.append({
            "bill_id": bill_id, "customer_id": customer["customer_id"],
            "period_start": start.isoformat(), "period_end": end.isoformat(),
            "issue_date": (end if status == "Draft" else issue).isoformat(),
            "total_due": round(sum(i["amount"] for i in items), 2),
            "due_date": (issue + timedelta(days=20)).isoformat(),
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
_STRENGTHS = {"5G": ("good", "excellent", "fair"), "4G": ("good", "excellent"),
              "3G": ("fair", "good"), "2G": ("poor", "fair")}


def build_user(seed: int, size: float = 1.0, db: dict[str, Any] | None = None, *,
               line_id: str | None = None,
               airplane_mode: bool = False,
               bad_apn: bool = False,
               mms_apn_missing: bool = False,
               sim_missing: bool = False,
               sim_locked: str | None = None,
               data_off: bool = False,
               abroad: bool = False,
               phone_roaming: bool | None = None,
               data_saver: bool = False,
               network_mode: str = "4g_5g_preferred",
               weak_signal: bool = False,
               vpn: str | None = None,
               messaging_permissions_missing: bool = False,
               wifi: bool = False,
               wifi_calling: bool = False) -> dict[str, Any]:
    """The phone of the customer who owns one active phone line of `db` (built from
    `seed, size` when not given), with its surroundings. Healthy unless a fault is asked for.

    line_id      pick this line instead of a random active phone line whose data allowance
                 is not used up (the line's state in `db` is honoured as it is: a suspended
                 line or a used-up allowance are agent-side faults)
    airplane_mode                 airplane mode on: no service
    bad_apn                       APN set to the invalid 'broken' profile: no mobile data
    mms_apn_missing               APN without MMS settings: picture messages fail
    sim_missing                   SIM not seated: no service until reseated
    sim_locked                    'locked_pin' or 'locked_puk': emergency calls only
    data_off                      mobile data switched off on the phone
    abroad                        the customer is abroad: needs roaming on the line (agent
                                  side) and, for data, the phone's roaming switch
    phone_roaming                 the phone's data-roaming switch; default: on when abroad,
                                  off at home. abroad=True, phone_roaming=False is a fault
    data_saver                    data saver on: speed capped at 1 Mbps
    network_mode                  '4g_only', '3g_only', '2g_only' restrict the technology
                                  (e.g. '2g_only': very slow data, no MMS)
    weak_signal                   every technology at poor signal
    vpn                           None, or a connected VPN's performance ('poor' slows data)
    messaging_permissions_missing the messaging app lacks sms and storage: MMS fails
    wifi / wifi_calling           connected to home Wi-Fi / Wi-Fi calling on (with MMS over
                                  Wi-Fi)
    """
    rng = random.Random(seed)
    db = build(seed, size) if db is None else db
    line = _choose_line(rng, db, line_id)
    owner = next(c for c in db["customers"] if line["line_id"] in c["line_ids"])
    plan = next(p for p in db["plans"] if p["plan_id"] == line["plan_id"])
    awaiting = next((b for b in db["bills"] if b["customer_id"] == owner["customer_id"]
                     and b["status"] == "Awaiting Payment"), None)
    signal = {tech: ("poor" if weak_signal else rng.choice(options))
              for tech, options in (("2G", _STRENGTHS["2G"]), ("3G", _STRENGTHS["3G"]),
                                    ("4G", _STRENGTHS["4G"]), ("5G", _STRENGTHS["5G"]))}
    surroundings = phone.default_surroundings() | {
        "name": owner["full_name"], "phone_number": line["phone_number"],
        "is_abroad": abroad, "roaming_allowed": bool(line["roaming_enabled"]),
        "signal_strength": signal,
        "mobile_data_usage_exceeded": line["data_used_gb"] >= plan["data_limit_gb"]
        + line["data_refueling_gb"],
        "line_active": line["status"] == "Active",
        "payment_request": ({"bill_id": awaiting["bill_id"], "amount_due": awaiting["total_due"],
                             "paid": False} if awaiting else None),
    }
    device = phone.default_device()
    device["battery_level"] = rng.randint(25, 100)
    device["airplane_mode"] = airplane_mode
    device["data_enabled"] = not data_off
    device["roaming_enabled"] = abroad if phone_roaming is None else phone_roaming
    device["data_saver_mode"] = data_saver
    device["network_mode_preference"] = network_mode
    if bad_apn:
        device["active_apn_settings"]["apn_name"] = "broken"
    if mms_apn_missing:
        device["active_apn_settings"].update(mms_apn=None, mmsc_url=None)
    if sim_missing:
        device["sim_card_missing"] = True
    if sim_locked is not None:
        device["sim_card_status"] = sim_locked
    if vpn is not None:
        server, protocol = rng.choice(data.VPN_SERVERS)
        device.update(vpn_enabled_setting=True, vpn_connected=True,
                      vpn_details={"server_address": server, "protocol": protocol,
                                   "server_performance": vpn})
    if messaging_permissions_missing:
        device["app_statuses"]["messaging"]["permissions"].update(sms=False, storage=False)
    if wifi:
        device.update(wifi_enabled=True, wifi_ssid=rng.choice(data.HOME_WIFI_NAMES),
                      wifi_signal_strength=rng.choice(("good", "excellent")))
    if wifi_calling:
        device.update(wifi_calling_enabled=True, wifi_calling_mms_over_wifi=True)
    phone.refresh_phone(device, surroundings)
    return {"device": device, "surroundings": surroundings}


def _choose_line(rng: random.Random, db: dict[str, Any], line_id: str | None) -> dict[str, Any]:
    if line_id is not None:
        for line in db["lines"]:
            if line["line_id"] == line_id:
                return line
        raise ValueError(f"line {line_id} not found in the database")
    phones = {d["device_id"] for d in db["devices"] if d["device_type"] == "phone"}
    plans = {p["plan_id"]: p for p in db["plans"]}
    healthy = [line for line in db["lines"]
               if line["status"] == "Active" and line["device_id"] in phones
               and line["data_used_gb"] < plans[line["plan_id"]]["data_limit_gb"]
               + line["data_refueling_gb"]]
    # Tiny worlds may lack a healthy line: fall back to any active line, then to any line.
    active = [line for line in db["lines"] if line["status"] == "Active"]
    candidates = healthy or active or list(db["lines"])
    if not candidates:
        raise ValueError("the database has no lines")
    return rng.choice(candidates)
