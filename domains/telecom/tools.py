"""Agent-side tools of the telecom domain, and the dual-control `sync`.

The agent database keeps τ²-bench's shape: flat lists of plans, customers, lines, bills and
devices, related by ids (a customer lists its `line_ids` and `bill_ids`; a line names its
`plan_id` and `device_id`). Tools look entities up by id. Policy checks that can be read off
the arguments and the state are preconditions in `domain.yaml`; the checks here repeat the
essential ones so a tool never corrupts the state when called without them (direct calls,
replays), and do the ones that need computation.

`sync(ctx)` runs after every step and carries facts between the two sides: the line's state
in the carrier's records (active, roaming service, data allowance) into the phone's
surroundings, payment requests onto the phone, and payments made on the phone back onto the
bill. Then it recomputes the phone's derived network fields.
"""

from __future__ import annotations

import calendar
import importlib.util
import sys
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.env.errors import ToolError


def _load_sibling(stem: str) -> ModuleType:
    """Load a helper module next to this file by path, under a domain-unique name: the
    runtime loads domain files by path, not as a package, so relative imports do not work."""
    name = f"_eigenlang_domain_telecom_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


phone = _load_sibling("phone")

MAX_REFUEL_GB = 2.0
UNPAID_BLOCKING = ("Overdue", "Awaiting Payment")


# --------------------------------------------------------------------------------- lookups
def _find(items: Any, key: str, value: Any) -> Any:
    for item in items:
        if item[key] == value:
            return item
    return None


def _customer(db: Any, customer_id: str) -> Any:
    customer = _find(db["customers"], "customer_id", customer_id)
    if customer is None:
        raise ToolError(f"customer {customer_id} not found")
    return customer


def _owned_line(db: Any, customer: Any, line_id: str) -> Any:
    line = _find(db["lines"], "line_id", line_id)
    if line is None:
        raise ToolError(f"line {line_id} not found")
    if line_id not in customer["line_ids"]:
        raise ToolError(f"line {line_id} does not belong to customer {customer['customer_id']}")
    return line


def _plan(db: Any, plan_id: str) -> Any:
    plan = _find(db["plans"], "plan_id", plan_id)
    if plan is None:
        raise ToolError(f"plan {plan_id} not found")
    return plan


def _open_account(customer: Any) -> None:
    if customer["account_status"] == "Closed":
        raise ToolError(f"the account of customer {customer['customer_id']} is closed")


def _today(ctx: Any) -> str:
    return str(ctx.now)[:10]


def _period_end(today: str) -> str:
    d = date.fromisoformat(today)
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1]).isoformat()


def _usage_exceeded(line: Any, plan: Any) -> bool:
    return float(line["data_used_gb"]) >= float(plan["data_limit_gb"]) + float(
        line["data_refueling_gb"])


# ----------------------------------------------------------------------------- read tools
def get_customer_by_phone(ctx: Any, phone_number: str) -> Any:
    """The customer whose contact number or one of whose lines has this number."""
    db = ctx.db
    customer = _find(db["customers"], "phone_number", phone_number)
    if customer is None:
        line = _find(db["lines"], "phone_number", phone_number)
        if line is not None:
            customer = next((c for c in db["customers"] if line["line_id"] in c["line_ids"]),
                            None)
    if customer is None:
        raise ToolError(f"no customer found with phone number {phone_number}")
    return customer


def get_customer_by_id(ctx: Any, customer_id: str) -> Any:
    return _customer(ctx.db, customer_id)


def get_customer_by_name(ctx: Any, full_name: str, dob: str) -> list[Any]:
    """All customers with this full name (case-insensitive) and date of birth."""
    wanted = full_name.strip().casefold()
    return [c for c in ctx.db["customers"]
            if c["full_name"].casefold() == wanted and c["date_of_birth"] == dob.strip()]


# Which list, and which id field, each kind of entity lives in.
_ENTITY_LISTS: tuple[tuple[str, str], ...] = (
    ("customers", "customer_id"), ("lines", "line_id"), ("bills", "bill_id"),
    ("devices", "device_id"), ("plans", "plan_id"),
)


def get_details_by_id(ctx: Any, id: str) -> Any:  # noqa: A002 - τ²-bench's parameter name
    for collection, key in _ENTITY_LISTS:
        found = _find(ctx.db[collection], key, id)
        if found is not None:
            return found
    raise ToolError(f"no customer, line, bill, device or plan with id {id}")


def get_bills_for_customer(ctx: Any, customer_id: str, limit: int = 12) -> list[Any]:
    """The customer's bills, newest period first, at most `limit`."""
    if limit < 1:
        raise ToolError("limit must be at least 1")
    customer = _customer(ctx.db, customer_id)
    wanted = set(customer["bill_ids"])
    bills = [b for b in ctx.db["bills"]
             if b["bill_id"] in wanted or b["customer_id"] == customer_id]
    bills.sort(key=lambda b: (b["period_start"], b["bill_id"]), reverse=True)
    return bills[:limit]


def get_data_usage(ctx: Any, customer_id: str, line_id: str) -> dict[str, Any]:
    db = ctx.db
    line = _owned_line(db, _customer(db, customer_id), line_id)
    plan = _plan(db, line["plan_id"])
    allowance = float(plan["data_limit_gb"]) + float(line["data_refueling_gb"])
    return {
        "line_id": line_id,
        "plan_id": plan["plan_id"],
        "data_used_gb": line["data_used_gb"],
        "data_limit_gb": plan["data_limit_gb"],
        "data_refueling_gb": line["data_refueling_gb"],
        "data_remaining_gb": round(max(allowance - float(line["data_used_gb"]), 0.0), 2),
        "usage_exceeded": _usage_exceeded(line, plan),
        "cycle_end_date": _period_end(_today(ctx)),
    }


# ---------------------------------------------------------------------------- write tools
def suspend_line(ctx: Any, customer_id: str, line_id: str, reason: str) -> dict[str, Any]:
    db = ctx.db
    customer = _customer(db, customer_id)
    _open_account(customer)
    line = _owned_line(db, customer, line_id)
    if line["status"] != "Active":
        raise ToolError(f"line {line_id} is {line['status']}; only an active line can be suspended")
    if not reason.strip():
        raise ToolError("a reason for the suspension is required")
    line["status"] = "Suspended"
    line["suspension_start_date"] = _today(ctx)
    return {"message": f"Line {line_id} suspended ({reason.strip()}).", "line": line}


def resume_line(ctx: Any, customer_id: str, line_id: str) -> dict[str, Any]:
    db = ctx.db
    customer = _customer(db, customer_id)
    _open_account(customer)
    line = _owned_line(db, customer, line_id)
    if line["status"] != "Suspended":
        raise ToolError(f"line {line_id} is {line['status']}; only a suspended line can be resumed")
    unpaid = [b["bill_id"] for b in db["bills"]
              if b["customer_id"] == customer_id and b["status"] in UNPAID_BLOCKING]
    if unpaid:
        raise ToolError("the customer has unpaid overdue bills (" + ", ".join(unpaid)
                        + "); they must be paid before the line can be resumed")
    line["status"] = "Active"
    line["suspension_start_date"] = None
    return {"message": f"Line {line_id} resumed.", "line": line}


def send_payment_request(ctx: Any, customer_id: str, bill_id: str) -> str:
    """Put an overdue bill into 'Awaiting Payment'; `sync` shows the request on the phone."""
    db = ctx.db
    customer = _customer(db, customer_id)
    _open_account(customer)
    bill = _find(db["bills"], "bill_id", bill_id)
    if bill is None:
        raise ToolError(f"bill {bill_id} not found")
    if bill["customer_id"] != customer_id:
        raise ToolError(f"bill {bill_id} does not belong to customer {customer_id}")
    if bill["status"] != "Overdue":
        raise ToolError(f"bill {bill_id} is {bill['status']}; only an overdue bill can be paid "
                        "through a payment request")
    pending = [b["bill_id"] for b in db["bills"]
               if b["customer_id"] == customer_id and b["status"] == "Awaiting Payment"]
    if pending:
        raise ToolError(f"a payment request is already pending for bill {pending[0]}")
    bill["status"] = "Awaiting Payment"
    return (f"Payment request for bill {bill_id} (amount due {float(bill['total_due']):.2f}) "
            f"sent to {customer['full_name']}. The customer can review and pay it on their phone.")


def enable_roaming(ctx: Any, customer_id: str, line_id: str) -> dict[str, Any]:
    db = ctx.db
    customer = _customer(db, customer_id)
    _open_account(customer)
    line = _owned_line(db, customer, line_id)
    if line["status"] != "Active":
        raise ToolError(f"line {line_id} is {line['status']}; roaming needs an active line")
    if line["roaming_enabled"]:
        raise ToolError(f"roaming is already enabled on line {line_id}")
    line["roaming_enabled"] = True
    return {"message": f"Roaming enabled on line {line_id}.", "line_id": line_id,
            "roaming_enabled": True}


def disable_roaming(ctx: Any, customer_id: str, line_id: str) -> str:
    db = ctx.db
    customer = _customer(db, customer_id)
    _open_account(customer)
    line = _owned_line(db, customer, line_id)
    if not line["roaming_enabled"]:
        raise ToolError(f"roaming is already disabled on line {line_id}")
    line["roaming_enabled"] = False
    return f"Roaming disabled on line {line_id}."


def refuel_data(ctx: Any, customer_id: str, line_id: str, gb_amount: float) -> dict[str, Any]:
    """Add data to the line for this cycle; the charge goes on the current (draft) bill."""
    db = ctx.db
    customer = _customer(db, customer_id)
    _open_account(customer)
    line = _owned_line(db, customer, line_id)
    if line["status"] != "Active":
        raise ToolError(f"line {line_id} is {line['status']}; data can only be added to an "
                        "active line")
    if not 0 < gb_amount <= MAX_REFUEL_GB:
        raise ToolError(f"gb_amount must be more than 0 and at most {MAX_REFUEL_GB:g} GB")
    plan = _plan(db, line["plan_id"])
    charge = round(float(gb_amount) * float(plan["data_refueling_price_per_gb"]), 2)
    today = _today(ctx)
    bill = _current_bill(ctx, customer, today)
    bill["line_items"].append({
        "description": f"Data refuel {gb_amount:g} GB - line {line['phone_number']}",
        "amount": charge, "date": today, "item_type": "Data Refuel",
    })
    bill["total_due"] = round(float(bill["total_due"]) + charge, 2)
    line["data_refueling_gb"] = round(float(line["data_refueling_gb"]) + float(gb_amount), 2)
    return {
        "message": f"Added {gb_amount:g} GB to line {line_id} for {charge:.2f}.",
        "line_id": line_id, "gb_added": gb_amount, "charge": charge,
        "bill_id": bill["bill_id"], "new_data_refueling_gb": line["data_refueling_gb"],
    }


def _current_bill(ctx: Any, customer: Any, today: str) -> Any:
    """The customer's draft bill for the period containing today; opened if missing."""
    for bill in ctx.db["bills"]:
        if (bill["customer_id"] == customer["customer_id"] and bill["status"] == "Draft"
                and bill["period_start"] <= today <= bill["period_end"]):
            return bill
    start = today[:8] + "01"
    end = _period_end(today)
    bill_id = ctx.new_id("B", 7)
    ctx.db["bills"].append({
        "bill_id": bill_id, "customer_id": customer["customer_id"], "period_start": start,
        "period_end": end, "issue_date": end, "total_due": 0.0, "due_date": end,
        "line_items": [], "status": "Draft",
    })
    customer["bill_ids"].append(bill_id)
    return ctx.db["bills"][len(ctx.db["bills"]) - 1]


def transfer_to_human_agents(ctx: Any, summary: str) -> str:
    if not summary.strip():
        raise ToolError("a summary of the issue is required for the transfer")
    return "Transfer successful"


# ------------------------------------------------------------------------------ dual control
def sync(ctx: Any) -> None:
    """Make the phone and the carrier's records agree (idempotent; runs after every step)."""
    user_db = getattr(ctx, "user_db", None)
    if user_db is None:
        return
    db = ctx.db
    surroundings = user_db["surroundings"]
    device = user_db["device"]
    number = surroundings.get("phone_number")
    line = _find(db["lines"], "phone_number", number) if number else None
    if line is not None:
        plan = _find(db["plans"], "plan_id", line["plan_id"])
        phone.put(surroundings, "line_active", line["status"] == "Active")
        phone.put(surroundings, "roaming_allowed", bool(line["roaming_enabled"]))
        if plan is not None:
            phone.put(surroundings, "mobile_data_usage_exceeded", _usage_exceeded(line, plan))
        owner = next((c for c in db["customers"] if line["line_id"] in c["line_ids"]), None)
        if owner is not None:
            _sync_payment(db, surroundings, owner["customer_id"])
    phone.refresh_phone(device, surroundings)


def _sync_payment(db: Any, surroundings: Any, customer_id: str) -> None:
    request = surroundings.get("payment_request")
    if request is not None:
        bill = _find(db["bills"], "bill_id", request["bill_id"])
        if request.get("paid"):
            if bill is not None and bill["status"] != "Paid":
                bill["status"] = "Paid"
            surroundings["payment_request"] = None
        elif bill is None or bill["status"] != "Awaiting Payment":
            surroundings["payment_request"] = None  # withdrawn or settled elsewhere
    if surroundings.get("payment_request") is None:
        awaiting = next((b for b in db["bills"] if b["customer_id"] == customer_id
                         and b["status"] == "Awaiting Payment"), None)
        if awaiting is not None:
            surroundings["payment_request"] = {
                "bill_id": awaiting["bill_id"],
                "amount_due": float(awaiting["total_due"]),
                "paid": False,
            }
