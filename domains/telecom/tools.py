"""Agent-side tools of the telecom domain, its carrier-side environment actions, and the
dual-control `sync`: all as τ²-bench's telecom behaves, answers and error texts included.

The agent database keeps τ²-bench's shape: flat lists of plans, customers, lines, bills and
devices, related by ids (a customer lists its `line_ids` and `bill_ids`; a line names its
`plan_id` and `device_id`). Lookups go through a customer's id lists as τ²-bench's do, and
fail with its texts ("Customer with ID C9 not found", "Line L9 not found for customer C1").
What τ²-bench leaves to the agent (which bill may be sent for payment, how much data may be
added, ...) is not checked here; `domain.yaml` states it as `policy:`.

Answers: a tool that returns a model returns the record and the environment prints it; a tool
that returns a plain dict in τ²-bench prints it here, as τ²-bench's `to_json_str` does: every
number and boolean directly in the dict becomes a string, a record inside it keeps its types.

`sync(ctx)` runs after every successful call and action, as τ²-bench's `sync_tools`: it copies
the line's state (active, roaming, allowance used up) onto the phone's surroundings, marks a
bill paid once the phone paid its request, and puts a bill awaiting payment on the phone.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from typing import Any

from runtime.env.errors import ToolError
from runtime.env.nodes import plain as _plain  # a view (or plain data) as plain JSON data

SUSPENDED_MESSAGE = "Line suspended successfully. $5/month holding fee will apply."


# --------------------------------------------------------------------------------- helpers
def _dict_text(data: dict[str, Any], records: tuple[str, ...] = ()) -> str:
    """A plain dict printed as τ²-bench prints a tool's dict: numbers and booleans as strings,
    except inside the keys named in `records` (models, which keep their types)."""
    out = {}
    for key, value in data.items():
        if key in records:
            out[key] = _plain(value)
        elif isinstance(value, (bool, int, float)):
            out[key] = str(value)
        else:
            out[key] = value
    return json.dumps(out)


def _today(ctx: Any) -> date:
    return date.fromisoformat(str(ctx.now)[:10])


def find(items: Any, key: str, value: Any) -> Any:
    """The first item whose `key` is `value`, or None (also the task recipes' look-up)."""
    return next((item for item in items if item[key] == value), None)


def _customer(db: Any, customer_id: str) -> Any:
    customer = find(db["customers"], "customer_id", customer_id)
    if customer is None:
        raise ToolError(f"Customer with ID {customer_id} not found")
    return customer


def _by_id(db: Any, collection: str, key: str, kind: str, value: str) -> Any:
    found = find(db[collection], key, value)
    if found is None:
        raise ToolError(f"{kind} with ID {value} not found")
    return found


def _line(db: Any, line_id: str) -> Any:
    return _by_id(db, "lines", "line_id", "Line", line_id)


def _plan(db: Any, plan_id: str) -> Any:
    return _by_id(db, "plans", "plan_id", "Plan", plan_id)


def _bill(db: Any, bill_id: str) -> Any:
    return _by_id(db, "bills", "bill_id", "Bill", bill_id)


def _target_line(db: Any, customer_id: str, line_id: str) -> Any:
    """A line of this customer: the customer must list it."""
    customer = _customer(db, customer_id)
    if line_id not in customer["line_ids"]:
        raise ToolError(f"Line {line_id} not found for customer {customer_id}")
    return _line(db, line_id)


def _bills_with_status(db: Any, customer: Any, status: str) -> list[Any]:
    return [b for b in (_bill(db, i) for i in customer["bill_ids"]) if b["status"] == status]


def _customer_by_phone(db: Any, phone_number: str) -> Any:
    """Customer by contact number, or by a line's number, checked customer by customer."""
    for customer in db["customers"]:
        if customer["phone_number"] == phone_number:
            return customer
        for line_id in customer["line_ids"]:
            if _line(db, line_id)["phone_number"] == phone_number:
                return customer
    raise ToolError(f"Customer with phone number {phone_number} not found")


# ----------------------------------------------------------------------------- read tools
def get_customer_by_phone(ctx: Any, phone_number: str) -> Any:
    return _customer_by_phone(ctx.db, phone_number)


def get_customer_by_id(ctx: Any, customer_id: str) -> Any:
    return _customer(ctx.db, customer_id)


def get_customer_by_name(ctx: Any, full_name: str, dob: str) -> list[Any]:
    """Every customer with this full name (case-insensitive) and date of birth."""
    return [c for c in ctx.db["customers"]
            if c["full_name"].lower() == full_name.lower() and c["date_of_birth"] == dob]


# The kind of record an id names, by its first letter.
_ID_PREFIXES = {"L": ("lines", "line_id", "Line"), "D": ("devices", "device_id", "Device"),
                "B": ("bills", "bill_id", "Bill"), "C": ("customers", "customer_id", "Customer"),
                "P": ("plans", "plan_id", "Plan")}


def get_details_by_id(ctx: Any, id: str) -> Any:  # noqa: A002 - τ²-bench's parameter name
    kind = _ID_PREFIXES.get(id[:1])
    if kind is None:
        raise ToolError(f"Unknown ID format or type: {id}")
    return _by_id(ctx.db, kind[0], kind[1], kind[2], id)


def get_bills_for_customer(ctx: Any, customer_id: str, limit: int = 12) -> list[Any]:
    """The customer's bills, latest issue date first (ties in the customer's order)."""
    db = ctx.db
    customer = _customer(db, customer_id)
    bills = sorted((_bill(db, i) for i in customer["bill_ids"]), key=lambda b: b["issue_date"],
                   reverse=True)
    if isinstance(limit, float):
        raise ToolError("slice indices must be integers or None or have an __index__ method")
    return bills[:limit]


def get_data_usage(ctx: Any, customer_id: str, line_id: str) -> str:
    line = _target_line(ctx.db, customer_id, line_id)
    plan = _plan(ctx.db, line["plan_id"])
    today = _today(ctx)
    # The last day of this month; in December τ²-bench's formula gives the 31st of the
    # previous December (kept: it is the reference).
    cycle_end = date(today.year, today.month + 1 if today.month < 12 else 1, 1) - timedelta(days=1)
    return _dict_text({"line_id": line_id, "data_used_gb": line["data_used_gb"],
                       "data_limit_gb": plan["data_limit_gb"],
                       "data_refueling_gb": line["data_refueling_gb"],
                       "cycle_end_date": cycle_end.isoformat()})


# ---------------------------------------------------------------------------- write tools
def suspend_line(ctx: Any, customer_id: str, line_id: str, reason: str) -> str:
    line = _target_line(ctx.db, customer_id, line_id)
    if line["status"] != "Active":
        raise ToolError("Line must be active to suspend")
    line["status"] = "Suspended"
    line["suspension_start_date"] = _today(ctx).isoformat()
    return _dict_text({"message": SUSPENDED_MESSAGE, "line": line}, records=("line",))


def resume_line(ctx: Any, customer_id: str, line_id: str) -> str:
    line = _target_line(ctx.db, customer_id, line_id)
    if line["status"] not in ("Suspended", "Pending Activation"):
        raise ToolError("Line must be suspended to resume")
    line["status"] = "Active"
    line["suspension_start_date"] = None
    return _dict_text({"message": "Line resumed successfully", "line": line}, records=("line",))


def send_payment_request(ctx: Any, customer_id: str, bill_id: str) -> str:
    """The bill becomes 'Awaiting Payment' (whatever its status: the policy asks the agent to
    check that it is overdue); `sync` shows the request on the phone."""
    db = ctx.db
    customer = _customer(db, customer_id)
    if _bills_with_status(db, customer, "Awaiting Payment"):
        raise ToolError("A bill is already awaiting payment for this customer")
    if bill_id not in customer["bill_ids"]:
        raise ToolError(f"Bill {bill_id} not found for customer {customer_id}")
    bill = _bill(db, bill_id)
    bill["status"] = "Awaiting Payment"
    return f"Payment request sent to the customer for bill {bill['bill_id']}"


def enable_roaming(ctx: Any, customer_id: str, line_id: str) -> str:
    line = _target_line(ctx.db, customer_id, line_id)
    if line["roaming_enabled"]:
        return "Roaming was already enabled"
    line["roaming_enabled"] = True
    return "Roaming enabled successfully"


def disable_roaming(ctx: Any, customer_id: str, line_id: str) -> str:
    line = _target_line(ctx.db, customer_id, line_id)
    if not line["roaming_enabled"]:
        return "Roaming was already disabled"
    line["roaming_enabled"] = False
    return "Roaming disabled successfully"


def transfer_to_human_agents(ctx: Any, summary: str) -> str:
    return "Transfer successful"


def refuel_data(ctx: Any, customer_id: str, line_id: str, gb_amount: float) -> str:
    """Add data to the line for this cycle; the charge goes on the customer's draft bill."""
    db = ctx.db
    line = _target_line(db, customer_id, line_id)
    if gb_amount <= 0:
        raise ToolError("Refuel amount must be positive")
    plan = _plan(db, line["plan_id"])
    price = plan["data_refueling_price_per_gb"]
    charge = gb_amount * price
    line["data_refueling_gb"] = line["data_refueling_gb"] + gb_amount
    _one_time_charge(ctx, customer_id, charge, f"Data refueling: {gb_amount} GB at ${price}/GB")
    return _dict_text({
        "message": f"Successfully added {gb_amount} GB of data for line {line_id} for ${charge:.2f}",
        "new_data_refueling_gb": line["data_refueling_gb"],
        "charge": charge,
    })


def _next_month(today: date) -> date:
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


def _one_time_charge(ctx: Any, customer_id: str, amount: float, description: str) -> None:
    """Add a charge (or, negative, a credit) to the customer's first draft bill; without one,
    open a draft bill for next month. τ²-bench names that bill `B` + 8 random hex digits; here
    the 8 hex digits come from the state and the call (deterministic)."""
    db = ctx.db
    customer = _customer(db, customer_id)
    try:
        draft = next((b for b in (_bill(db, i) for i in customer["bill_ids"]) if b["status"] == "Draft"), None)
    except ToolError as exc:  # the line was refuelled already: τ²-bench keeps that
        raise ToolError(exc.message, keep_changes=True) from None
    today = _today(ctx)
    if draft is None:
        start = _next_month(today)
        end = _next_month(start) - timedelta(days=1)
        bill_id = "B" + hashlib.sha256(ctx.new_id("B", 12).encode()).hexdigest()[:8]
        db["bills"].append({
            "bill_id": bill_id, "customer_id": customer_id, "period_start": start.isoformat(),
            "period_end": end.isoformat(), "issue_date": start.isoformat(), "total_due": 0.0,
            "due_date": (start + timedelta(days=14)).isoformat(), "line_items": [],
            "status": "Draft",
        })
        customer["bill_ids"].append(bill_id)
        draft = db["bills"][len(db["bills"]) - 1]
    draft["line_items"].append({"description": description, "amount": amount,
                                "date": today.isoformat(),
                                "item_type": "Credit" if amount < 0 else "Charge"})
    draft["total_due"] = draft["total_due"] + amount


# ------------------------------------------------------- environment actions (task setup)
def set_data_usage(ctx: Any, customer_id: str, line_id: str, data_used_gb: float) -> str:
    _target_line(ctx.db, customer_id, line_id)["data_used_gb"] = data_used_gb
    return f"Data usage set to {data_used_gb} GB for line {line_id}"


def suspend_line_for_overdue_bill(ctx: Any, customer_id: str, line_id: str, new_bill_id: str,
                                  contract_ended: bool) -> str:
    """Suspend the line for last month's unpaid plan charge, billed as `new_bill_id`
    (overdue); with `contract_ended`, the line's contract ended last month too."""
    db = ctx.db
    line = _line(db, line_id)
    if line["status"] != "Active":
        raise ToolError("Line must be active to suspend for unpaid bill")
    plan = _plan(db, line["plan_id"])
    amount = plan["price_per_month"]
    if amount <= 0:
        raise ToolError("Amount must be positive for overdue bill")
    customer = _customer(db, customer_id)
    if _bills_with_status(db, customer, "Overdue"):
        raise ToolError("Customer already has an overdue bill")
    today = _today(ctx)
    last_month_end = today.replace(day=1) - timedelta(days=1)
    last_month_start = last_month_end.replace(day=1)
    db["bills"].append({
        "bill_id": new_bill_id, "customer_id": customer_id,
        "period_start": last_month_start.isoformat(), "period_end": last_month_end.isoformat(),
        "issue_date": last_month_start.isoformat(), "total_due": 0.0 + amount,
        "due_date": (last_month_start + timedelta(days=14)).isoformat(),
        "line_items": [{"description": f"Charge for line {line['line_id']}", "amount": amount,
                        "date": today.isoformat(), "item_type": "Charge" if amount > 0 else "Credit"}],
        "status": "Overdue",
    })
    customer["bill_ids"].append(new_bill_id)
    line["status"] = "Suspended"
    line["suspension_start_date"] = today.isoformat()
    if contract_ended:
        line["contract_end_date"] = last_month_end.isoformat()
    return f"Line {line_id} suspended for unpaid bill {new_bill_id}. Contract ended: {contract_ended}"


# ------------------------------------------------------- environment actions (assertions)
def assert_data_refueling_amount(ctx: Any, customer_id: str, line_id: str, expected_amount: float) -> bool:
    return abs(_target_line(ctx.db, customer_id, line_id)["data_refueling_gb"] - expected_amount) < 1e-6


def assert_line_status(ctx: Any, customer_id: str, line_id: str, expected_status: str) -> bool:
    return _target_line(ctx.db, customer_id, line_id)["status"] == expected_status


def assert_overdue_bill_exists(ctx: Any, customer_id: str, overdue_bill_id: str) -> bool:
    customer = _customer(ctx.db, customer_id)
    if overdue_bill_id not in customer["bill_ids"]:
        raise ToolError(f"Overdue bill {overdue_bill_id} not found")
    if _bill(ctx.db, overdue_bill_id)["status"] != "Overdue":
        raise ToolError(f"Overdue bill {overdue_bill_id} is not overdue")
    return True


def assert_no_overdue_bill(ctx: Any, overdue_bill_id: str) -> bool:
    """The bill is gone or paid."""
    bill = find(ctx.db["bills"], "bill_id", overdue_bill_id)
    return bill is None or bill["status"] == "Paid"


# ------------------------------------------------------------------------------ dual control
def sync(ctx: Any) -> None:
    """Carry the carrier's facts about the phone's line onto the phone (τ²-bench's
    `sync_tools`; the phone searches the network only when the customer acts on it)."""
    user_db = getattr(ctx, "user_db", None)
    if user_db is None:
        return
    db = ctx.db
    surroundings = user_db["surroundings"]
    number = surroundings.get("phone_number")
    if number is None:
        return
    line = find(db["lines"], "phone_number", number)
    if line is None:
        raise ToolError(f"Line with phone number {number} not found")
    surroundings["line_active"] = line["status"] == "Active"
    surroundings["roaming_allowed"] = bool(line["roaming_enabled"])
    plan = _plan(db, line["plan_id"])
    surroundings["mobile_data_usage_exceeded"] = (
        line["data_used_gb"] >= plan["data_limit_gb"] + line["data_refueling_gb"])
    request = surroundings.get("payment_request")
    if request is not None and request["paid"]:
        _bill(db, request["bill_id"])["status"] = "Paid"
        surroundings["payment_request"] = None
    if surroundings.get("payment_request") is None:
        awaiting = _bills_with_status(db, _customer_by_phone(db, number), "Awaiting Payment")
        if awaiting:
            surroundings["payment_request"] = {"bill_id": awaiting[0]["bill_id"],
                                               "amount_due": float(awaiting[0]["total_due"]),
                                               "paid": False}
