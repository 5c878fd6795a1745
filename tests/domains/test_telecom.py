"""The telecom domain behaves as τ²-bench's telecom: agent tools and the phone's tools with
τ²-bench's exact answers and error texts, the dual-control sync, the phone's network search,
the environment actions (τ²-bench's task set-up and env assertions), the policy checks that
record an over-eager agent, trajectory rules, and the generators (broken phones made with
τ²-bench's own breakages) with the troubleshooting recipe that fixes them.

The whole τ²-bench corpus (114 tasks) is replayed by tests/tau2/test_conformance.py; here the
tools run on a small hand-written world (`WORLD`, τ²-bench's canonical form) whose phone, the
line L1002's, is built by the domain's own `build_user`. The expected texts are τ²-bench's
formats, written out by hand. Refusals are checked twice: by the domain's `requires:` and,
with them stripped, by the tools themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from eigenlang.domain import load_domain
from eigenlang.expr import compile_expr
from eigenlang.types import ModelT
from runtime.env import Environment, State
from runtime.env.impls import load_impl

DOMAIN_DIR = Path(__file__).resolve().parents[2] / "domains" / "telecom"
TAU2 = (Path(__file__).resolve().parents[2] / ".." / "shared" / "tau2").resolve()
REFERENCE = (Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "tau2_interfaces.json").resolve()
AGENT_WRITES = ("suspend_line", "resume_line", "send_payment_request", "enable_roaming",
                "disable_roaming", "refuel_data")
BAR = "Status Bar: 📶⁴ Excellent | 5G | 📱 Data Enabled | 🔋 80%"

# ------------------------------------------------------------------------------ a small world


def _line(line_id: str, number: str, status: str, plan: str, device: str, used: float,
          roaming: bool = False, contract_end: str | None = None) -> dict:
    return {"line_id": line_id, "phone_number": number, "status": status, "plan_id": plan,
            "device_id": device, "data_used_gb": used, "data_refueling_gb": 0.0,
            "roaming_enabled": roaming, "contract_end_date": contract_end, "last_plan_change_date": None,
            "last_sim_replacement_date": None,
            "suspension_start_date": "2025-02-10" if status == "Suspended" else None}


def _customer(cid: str, name: str, dob: str, number: str, status: str, lines: list[str],
              bills: list[str]) -> dict:
    return {"customer_id": cid, "full_name": name, "date_of_birth": dob,
            "email": name.lower().replace(" ", ".") + "@example.com", "phone_number": number,
            "address": {"street": "123 Main St", "city": "Anytown", "state": "CA", "zip_code": "90210"},
            "account_status": status,
            "payment_methods": [{"method_type": "Credit Card", "account_number_last_4": "1235",
                                 "expiration_date": "12/2026"}],
            "line_ids": lines, "bill_ids": bills, "created_at": "2025-01-15 10:30:00",
            "last_extension_date": None, "goodwill_credit_used_this_year": 0.0}


def _bill(bill_id: str, customer: str, month: int, status: str, amount: float) -> dict:
    draft = status == "Draft"
    items = [] if draft else [{"description": "Premium Plan - Line 555-123-2002", "amount": amount,
                               "date": f"2025-{month:02d}-05", "item_type": "Plan Charge"}]
    issue = f"2025-{month:02d}-{'01' if draft else '05'}"
    return {"bill_id": bill_id, "customer_id": customer, "period_start": f"2025-{month:02d}-01",
            "period_end": f"2025-{month:02d}-{ {1: 31, 2: 28, 3: 31}[month]}", "issue_date": issue,
            "total_due": amount, "due_date": f"2025-{month:02d}-{'15' if draft else '19'}",
            "line_items": items, "status": status}


def _device(did: str) -> dict:
    return {"device_id": did, "device_type": "phone", "model": "Pixel 8", "imei": "351234567890123",
            "is_esim_capable": True, "activated": True, "activation_date": "2025-01-20 14:30:00",
            "last_esim_transfer_date": None}


WORLD: dict[str, Any] = {
    "plans": [
        {"plan_id": "P1001", "name": "Basic Plan", "data_limit_gb": 5.0, "price_per_month": 40.0,
         "data_refueling_price_per_gb": 5.0},
        {"plan_id": "P1002", "name": "Premium Plan", "data_limit_gb": 15.0, "price_per_month": 65.0,
         "data_refueling_price_per_gb": 2.0},
    ],
    "customers": [
        _customer("C1001", "John Smith", "1985-06-15", "555-123-2002", "Active", ["L1001", "L1002"],
                  ["B1001", "B1002", "B1003"]),
        _customer("C1002", "Sarah Johnson", "1990-11-22", "555-123-1002", "Active", ["L1003"], ["B1004"]),
        _customer("C1003", "Mia Lee", "1978-04-30", "555-123-3001", "Closed", ["L1004"], []),
        _customer("C1004", "John Smith", "2001-07-19", "555-123-4001", "Active", ["L1005"], []),
    ],
    "lines": [
        _line("L1001", "555-123-2001", "Active", "P1001", "D1001", 1.2),
        _line("L1002", "555-123-2002", "Active", "P1002", "D1002", 8.7, roaming=True,
              contract_end="2026-12-31"),
        _line("L1003", "555-123-1002", "Suspended", "P1001", "D1003", 0.0, contract_end="2025-01-31"),
        _line("L1004", "555-123-3001", "Closed", "P1001", "D1004", 0.0),
        _line("L1005", "555-123-4001", "Pending Activation", "P1001", "D1005", 0.0),
    ],
    "bills": [
        _bill("B1001", "C1001", 1, "Paid", 65.0),
        _bill("B1002", "C1001", 2, "Issued", 65.0),
        _bill("B1003", "C1001", 3, "Draft", 0.0),
        _bill("B1004", "C1002", 1, "Overdue", 40.0),
    ],
    "devices": [_device(f"D100{i}") for i in range(1, 6)],
}

# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def domain():
    spec, diags = load_domain(DOMAIN_DIR)
    assert spec is not None, [str(d) for d in diags]
    return spec


@pytest.fixture(scope="module")
def bare_domain(domain):
    """The domain with every precondition removed: refusals must come from the tools."""
    def strip(tools: dict) -> dict:
        return {n: dataclasses.replace(t, requires=[]) for n, t in tools.items()}

    return dataclasses.replace(domain, tools=strip(domain.tools), user_tools=strip(domain.user_tools))


@pytest.fixture(scope="module")
def build(domain):
    return load_impl(domain.generate)


@pytest.fixture(scope="module")
def build_user(domain):
    return load_impl(domain.generate_user)


@pytest.fixture(scope="module")
def recipes(domain):
    """scenarios.py's module namespace (the recipes and their helpers)."""
    return load_impl(dataclasses.replace(domain.generate, file=DOMAIN_DIR / "scenarios.py",
                                         function="seed")).__globals__


def make_env(domain, build_user, line_id: str = "L1002", world: dict | None = None,
             faults: list[str] | None = None) -> Environment:
    world = copy.deepcopy(world or WORLD)
    phone = build_user(7, 1.0, world, line_id=line_id, faults=faults or [])
    phone["device"]["battery_level"] = 80  # τ²-bench's phone
    return Environment(domain, State.from_json(world), State.from_json(phone))


@pytest.fixture
def env(domain, build_user) -> Environment:
    return make_env(domain, build_user)


@pytest.fixture(params=["preconditions", "tools"])
def strict_env(request, domain, bare_domain, build_user) -> Environment:
    """The same world, refusals enforced by the preconditions or by the tools alone."""
    return make_env(domain if request.param == "preconditions" else bare_domain, build_user)


def text(env: Environment, tool: str, side: str = "agent", **args: Any) -> str:
    r = env.call(tool, args, side)
    assert r.ok, r.content
    return r.content


def user(env: Environment, tool: str, **args: Any) -> str:
    return text(env, tool, "user", **args)


def data(env: Environment, tool: str, **args: Any) -> Any:
    return json.loads(text(env, tool, **args))


def refused(env: Environment, tool: str, expect: str, side: str = "agent", **args: Any) -> None:
    """The call fails with exactly `Error: <expect>` and nothing changes."""
    before = env.hash()
    r = env.call(tool, args, side)
    assert not r.ok and r.error in ("precondition", "tool_error"), r
    assert r.content == f"Error: {expect}"
    assert env.hash() == before


def act(env: Environment, name: str, side: str, **args: Any) -> Any:
    r = env.act(name, args, side)
    assert r.ok, r.error
    return r.value


def rec(env: Environment, collection: str, key: str, value: str) -> dict:
    return next(x for x in env.db.to_json()[collection] if x[key] == value)


def device(env: Environment) -> dict:
    return env.user_db.to_json()["device"]


def surroundings(env: Environment) -> dict:
    return env.user_db.to_json()["surroundings"]


def rules_broken(env: Environment) -> list[str]:
    return [v.rule for v in env.stats.violations]


# ------------------------------------------------------------------------------ the program


def test_domain_loads_without_diagnostics(domain):
    spec, diags = load_domain(DOMAIN_DIR)
    assert spec is not None and [str(d) for d in diags] == []
    assert len(spec.tools) == 13 and len(spec.user_tools) == 30
    assert {"set_user_info", "turn_data_off", "break_vpn", "suspend_line_for_overdue_bill",
            "assert_mobile_data_status", "assert_can_send_mms", "assert_no_overdue_bill"} <= set(spec.actions)
    assert spec.sync is not None and spec.generate_user is not None
    assert spec.now == "2025-02-25T12:08:00"  # τ²-bench's clock
    assert {c.rule for c in spec.tools["refuel_data"].policy} == {"account_open", "line_active", "at_most_2gb"}
    assert set(spec.rules) >= {"confirm_before_write", "transfer_ends_conversation"}


def test_world_fixture_matches_schemas(domain, build_user):
    assert domain.schema.validate(WORLD, ModelT("TelecomDB")) == []
    phone = build_user(1, 1.0, copy.deepcopy(WORLD), line_id="L1002", faults=[])
    assert domain.user_schema.validate(phone, ModelT("TelecomUserDB")) == []


def test_generator_now_matches_domain(domain):
    assert load_impl(domain.generate).__globals__["NOW"].isoformat() == domain.now


def test_tau2_user_db_loads_with_default_surroundings(domain):
    """τ²-bench's user_db.toml has no `surroundings`: the declared default fills it, in
    τ²-bench's field order, and the phone's tools work on it."""
    if not TAU2.is_dir():
        pytest.skip("τ²-bench reference folder not available")
    files = TAU2 / "data" / "telecom"
    env = Environment.from_data(domain, files / "db.toml", files / "user_db.toml")
    want = json.loads((TAU2 / "conformance" / "initial_dumps" / "telecom_user_db.json").read_text())
    assert json.dumps(env.user_db.to_json()) == json.dumps(want)
    assert user(env, "check_status_bar") == "Status Bar: 📶³ Good | 5G | 📱 Data Enabled | 🔋 80%"


def test_reads_and_sync_leave_a_synced_state_alone(env):
    before = env.hash()
    text(env, "get_customer_by_id", customer_id="C1001")
    for tool in ("check_status_bar", "check_network_status", "run_speed_test", "can_send_mms",
                 "check_payment_request", "check_vpn_status"):
        user(env, tool)
    assert env.hash() == before


# ------------------------------------------------------------------------------ agent: reads


def test_customer_lookups(strict_env):
    env = strict_env
    assert data(env, "get_customer_by_phone", phone_number="555-123-2002")["customer_id"] == "C1001"
    assert data(env, "get_customer_by_phone", phone_number="555-123-2001")["customer_id"] == "C1001"
    refused(env, "get_customer_by_phone", "Customer with phone number 999 not found", phone_number="999")
    assert text(env, "get_customer_by_id", customer_id="C1001") == json.dumps(WORLD["customers"][0])
    refused(env, "get_customer_by_id", "Customer with ID C9 not found", customer_id="C9")
    found = data(env, "get_customer_by_name", full_name="john SMITH", dob="2001-07-19")
    assert [c["customer_id"] for c in found] == ["C1004"]
    assert text(env, "get_customer_by_name", full_name="John Smith", dob="1999-01-01") == "[]"


def test_get_details_by_id(strict_env):
    env = strict_env
    for record in (WORLD["customers"][2], WORLD["lines"][2], WORLD["bills"][3], WORLD["devices"][0],
                   WORLD["plans"][1]):
        rid = next(v for k, v in record.items() if k.endswith("_id"))
        assert text(env, "get_details_by_id", id=rid) == json.dumps(record)
    for rid, kind in (("L9", "Line"), ("D9", "Device"), ("B9", "Bill"), ("C9", "Customer"), ("P9", "Plan")):
        refused(env, "get_details_by_id", f"{kind} with ID {rid} not found", id=rid)
    refused(env, "get_details_by_id", "Unknown ID format or type: X1", id="X1")
    refused(env, "get_details_by_id", "Unknown ID format or type: ", id="")


def test_get_bills_for_customer(strict_env):
    env = strict_env
    bills = data(env, "get_bills_for_customer", customer_id="C1001")
    assert [b["bill_id"] for b in bills] == ["B1003", "B1002", "B1001"]  # latest issue date first
    assert [b["bill_id"] for b in data(env, "get_bills_for_customer", customer_id="C1001", limit=1)] == ["B1003"]
    refused(env, "get_bills_for_customer", "Customer with ID C9 not found", customer_id="C9")


def test_get_data_usage(strict_env):
    env = strict_env
    assert text(env, "get_data_usage", customer_id="C1001", line_id="L1002") == (
        '{"line_id": "L1002", "data_used_gb": "8.7", "data_limit_gb": "15.0", '
        '"data_refueling_gb": "0.0", "cycle_end_date": "2025-02-28"}')
    refused(env, "get_data_usage", "Line L1003 not found for customer C1001", customer_id="C1001",
            line_id="L1003")


# ------------------------------------------------------------------------------ agent: writes


def test_suspend_and_resume_line(env):
    line = dict(WORLD["lines"][0], status="Suspended", suspension_start_date="2025-02-25")
    assert text(env, "suspend_line", customer_id="C1001", line_id="L1001", reason="lost") == json.dumps(
        {"message": "Line suspended successfully. $5/month holding fee will apply.", "line": line})
    line.update(status="Active", suspension_start_date=None)
    assert text(env, "resume_line", customer_id="C1001", line_id="L1001") == json.dumps(
        {"message": "Line resumed successfully", "line": line})
    assert rec(env, "lines", "line_id", "L1001") == line
    assert rules_broken(env) == []


def test_line_refusals(strict_env):
    env = strict_env
    refused(env, "suspend_line", "Customer with ID C9 not found", customer_id="C9", line_id="L1001", reason="x")
    refused(env, "suspend_line", "Line L1003 not found for customer C1001", customer_id="C1001",
            line_id="L1003", reason="x")
    refused(env, "suspend_line", "Line must be active to suspend", customer_id="C1004", line_id="L1005", reason="x")
    refused(env, "resume_line", "Line must be suspended to resume", customer_id="C1001", line_id="L1001")
    refused(env, "refuel_data", "Refuel amount must be positive", customer_id="C1001", line_id="L1002",
            gb_amount=0.0)


def test_payment_request_and_payment_on_the_phone(env):
    """τ²-bench's sync puts the request on the phone, and the payment back on the bill."""
    assert text(env, "send_payment_request", customer_id="C1001", bill_id="B1002") == \
        "Payment request sent to the customer for bill B1002"
    assert rules_broken(env) == ["bill_overdue"]  # B1002 is only issued: the policy says no
    assert surroundings(env)["payment_request"] == {"bill_id": "B1002", "amount_due": 65.0, "paid": False}
    refused(env, "send_payment_request", "A bill is already awaiting payment for this customer",
            customer_id="C1001", bill_id="B1001")
    assert user(env, "check_payment_request") == "You have a payment request for bill B1002 of 65.0 USD."
    assert user(env, "make_payment") == "Payment of 65.0 USD has been made for bill B1002."
    assert rec(env, "bills", "bill_id", "B1002")["status"] == "Paid"
    assert surroundings(env)["payment_request"] is None
    assert user(env, "make_payment") == "You do not have a payment request."
    assert user(env, "check_payment_request") == "No payment request has been made."


def test_payment_request_refusals(strict_env):
    env = strict_env
    refused(env, "send_payment_request", "Customer with ID C9 not found", customer_id="C9", bill_id="B1004")
    refused(env, "send_payment_request", "Bill B1004 not found for customer C1001", customer_id="C1001",
            bill_id="B1004")


def test_roaming(env):
    assert text(env, "enable_roaming", customer_id="C1001", line_id="L1002") == "Roaming was already enabled"
    assert text(env, "disable_roaming", customer_id="C1001", line_id="L1002") == "Roaming disabled successfully"
    assert surroundings(env)["roaming_allowed"] is False
    assert text(env, "disable_roaming", customer_id="C1001", line_id="L1002") == "Roaming was already disabled"
    assert text(env, "enable_roaming", customer_id="C1001", line_id="L1002") == "Roaming enabled successfully"
    assert surroundings(env)["roaming_allowed"] is True


def test_refuel_data_charges_the_draft_bill(env):
    assert text(env, "refuel_data", customer_id="C1001", line_id="L1002", gb_amount=2.0) == (
        '{"message": "Successfully added 2.0 GB of data for line L1002 for $4.00", '
        '"new_data_refueling_gb": "2.0", "charge": "4.0"}')
    draft = rec(env, "bills", "bill_id", "B1003")
    assert draft["total_due"] == 4.0 and draft["line_items"] == [
        {"description": "Data refueling: 2.0 GB at $2.0/GB", "amount": 4.0, "date": "2025-02-25",
         "item_type": "Charge"}]


def test_refuel_data_opens_next_months_draft_when_none(domain, build_user):
    env = make_env(domain, build_user, line_id="L1003")
    text(env, "resume_line", customer_id="C1002", line_id="L1003")
    text(env, "refuel_data", customer_id="C1002", line_id="L1003", gb_amount=1.0)
    new = env.db.to_json()["bills"][-1]
    assert new["bill_id"].startswith("B") and len(new["bill_id"]) == 9
    assert int(new["bill_id"][1:], 16) >= 0 and rec(env, "customers", "customer_id", "C1002")["bill_ids"][-1] == new["bill_id"]
    assert {k: new[k] for k in ("period_start", "period_end", "issue_date", "due_date", "total_due", "status")} == {
        "period_start": "2025-03-01", "period_end": "2025-03-31", "issue_date": "2025-03-01",
        "due_date": "2025-03-15", "total_due": 5.0, "status": "Draft"}
    # deterministic: the same call on the same state names the same bill
    again = make_env(domain, build_user, line_id="L1003")
    text(again, "resume_line", customer_id="C1002", line_id="L1003")
    text(again, "refuel_data", customer_id="C1002", line_id="L1003", gb_amount=1.0)
    assert again.hash() == env.hash()


def test_transfer_to_human_agents(env):
    assert text(env, "transfer_to_human_agents", summary="anything") == "Transfer successful"


def test_an_over_eager_agent_is_recorded_not_refused(env):
    """What the policy forbids goes through, as in τ²-bench; the trajectory records it."""
    r = env.call("refuel_data", {"customer_id": "C1001", "line_id": "L1002", "gb_amount": 3.0})
    assert r.ok and "Successfully added 3.0 GB" in r.content and "polic" not in r.content.lower()
    text(env, "resume_line", customer_id="C1002", line_id="L1003")  # overdue bill, contract ended
    text(env, "resume_line", customer_id="C1004", line_id="L1005")  # pending activation
    text(env, "enable_roaming", customer_id="C1003", line_id="L1004")  # closed account and line
    assert rules_broken(env) == ["at_most_2gb", "bills_paid_first", "contract_not_ended", "only_suspended",
                                 "account_open", "line_active"]
    v = env.stats.violations[0]
    assert (v.tool, v.rule) == ("refuel_data", "at_most_2gb")


# ------------------------------------------------------------------------------ the phone


def test_status_bar_and_network_status(env):
    assert user(env, "check_status_bar") == BAR
    assert user(env, "check_network_status") == (
        "Airplane Mode: OFF\nSIM Card Status: active\nCellular Connection: connected\n"
        "Cellular Signal: excellent\nCellular Network Type: 5G\nMobile Data Enabled: Yes\n"
        "Data Roaming Enabled: No\nWi-Fi Radio: OFF\nWi-Fi Connected: No")
    assert user(env, "check_network_mode_preference") == "Network Mode Preference: 4g_5g_preferred"
    assert user(env, "check_sim_status") == "Your SIM card is active and working."
    assert user(env, "check_data_restriction_status") == "Data Saver mode is OFF."
    assert user(env, "check_wifi_status") == "Wi-Fi is turned OFF."
    assert user(env, "check_wifi_calling_status") == "Wi-Fi Calling is currently turned OFF."
    assert user(env, "check_vpn_status") == "VPN is turned OFF."
    assert user(env, "check_installed_apps") == "The following apps are installed on the phone: messaging, browser"
    assert user(env, "check_apn_settings") == (
        "Current APN Name: internet\nMMSC URL (for picture messages): http://mms.carrier.com/mms/wapenc\n"
        "(These are technical settings, usually best left unchanged.)")


def test_airplane_mode(env):
    assert user(env, "toggle_airplane_mode") == "Airplane Mode is now ON.\nStatus Bar: ✈️ Airplane Mode | 🔋 80%"
    assert device(env)["network_connection_status"] == "no_service"
    assert user(env, "toggle_wifi") == ("Cannot change Wi-Fi settings while Airplane Mode is ON.\n"
                                        "Status Bar: ✈️ Airplane Mode | 🔋 80%")
    assert user(env, "run_speed_test") == "Speed test failed: No Connection."
    assert user(env, "toggle_airplane_mode") == f"Airplane Mode is now OFF.\n{BAR}"


def test_speed_and_mode_preference(env):
    assert user(env, "run_speed_test") == "Speed Test Result: 275.00 Mbps (Excellent). Connection is very fast."
    assert user(env, "set_network_mode_preference", mode="3g_only") == (
        "Preferred Network Mode set to: 3g_only\nStatus Bar: 📶² Fair | 3G | 📱 Data Enabled | 🔋 80%")
    assert user(env, "run_speed_test") == (
        "Speed Test Result: 1.50 Mbps (Poor). Connection is slow. Web browsing may be sluggish, streaming difficult.")
    assert user(env, "set_network_mode_preference", mode="6g") == (
        "Failed to set network mode: '6g' is not a valid option. Please use one of: 4g_5g_preferred, "
        "4g_only, 3g_only, 2g_only\nStatus Bar: 📶² Fair | 3G | 📱 Data Enabled | 🔋 80%")
    user(env, "set_network_mode_preference", mode="4g_5g_preferred")
    assert user(env, "toggle_data_saver_mode") == (
        "Data Saver Mode is now ON.\nStatus Bar: 📶⁴ Excellent | 5G | 📱 Data Enabled | 🔽 Data Saver | 🔋 80%")
    assert user(env, "check_data_restriction_status") == "Data Saver mode is ON (limits data usage)."
    assert user(env, "run_speed_test").startswith("Speed Test Result: 55.00 Mbps (Good).")


def test_mobile_data_and_roaming_switches(env):
    assert user(env, "toggle_data") == "Mobile Data is now OFF.\nStatus Bar: 📶⁴ Excellent | 5G | 📵 Data Disabled | 🔋 80%"
    assert user(env, "can_send_mms") == "Your messaging app cannot send MMS messages."
    assert user(env, "toggle_data") == f"Mobile Data is now ON.\n{BAR}"
    act(env, "set_user_location", "user", abroad=True)
    assert user(env, "run_speed_test") == "Speed test failed: No Connection."  # phone roaming off
    assert user(env, "toggle_roaming") == f"Data Roaming is now ON.\n{BAR}"
    assert user(env, "can_send_mms") == "Your messaging app can send MMS messages."


def test_sim_card(env):
    assert act(env, "unseat_sim_card", "user") == "SIM card un-seated successfully."
    assert user(env, "check_sim_status") == "No SIM card detected in the phone."
    assert user(env, "check_status_bar") == "Status Bar: 📵 No Signal | 📵 Data Disabled | 🔋 80%"
    assert user(env, "reseat_sim_card") == f"SIM card re-seated successfully.\n{BAR}"
    assert act(env, "lock_sim_card", "user", mode="puk") == "SIM card locked successfully in puk mode."
    assert user(env, "check_sim_status") == "The SIM card is locked with a PUK code."
    assert device(env)["network_connection_status"] == "no_service"


def test_a_failed_phone_assertion_keeps_its_changes(domain, build_user):
    """τ²-bench's `reseat_sim_card` asserts the SIM is found: with the SIM's own status
    'missing' that fails after the search, as an empty AssertionError, and the changes stay."""
    world = copy.deepcopy(WORLD)
    phone = build_user(7, 1.0, world, line_id="L1002", faults=["unseat_sim_card"])
    phone["device"]["sim_card_status"] = "missing"
    env = Environment(domain, State.from_json(world), State.from_json(phone))
    r = env.call("reseat_sim_card", {}, "user")
    assert (r.ok, r.content) == (False, "Error: ")
    assert device(env)["sim_card_missing"] is False


def test_apn_settings(env):
    act(env, "break_apn_settings", "user")
    assert user(env, "check_apn_settings").startswith("Current APN Name: broken\n")
    assert user(env, "reset_apn_settings") == ("APN settings will reset at reboot.\n"
                                               "Status Bar: 📵 No Signal | 📵 Data Disabled | 🔋 80%")
    assert user(env, "reboot_device") == ("Resetting APN settings...\nRestarting network services...\n" + BAR)
    assert device(env)["active_apn_settings"]["apn_name"] == "internet"
    assert user(env, "set_apn_settings", apn_settings={"apn_name": "broken", "mms_port": 8080}) == (
        "APN settings set to: broken\nStatus Bar: 📵 No Signal | 📵 Data Disabled | 🔋 80%")
    assert device(env)["active_apn_settings"] == {"apn_name": "broken", "reset_at_reboot": False, "mms_apn": "mms",
                                                  "mmsc_url": "http://mms.carrier.com/mms/wapenc",
                                                  "mms_proxy": None, "mms_port": 8080}
    assert user(env, "reboot_device") == "Restarting network services...\nStatus Bar: 📵 No Signal | 📵 Data Disabled | 🔋 80%"


def test_vpn(env):
    assert user(env, "connect_vpn") == (
        "VPN connected successfully.\nStatus Bar: 📶⁴ Excellent | 5G | 📱 Data Enabled | 🔒 VPN Connected | 🔋 80%")
    assert user(env, "connect_vpn") == "VPN already connected."
    assert user(env, "check_vpn_status") == (
        "VPN is ON and connected. Details: {'server_address': '192.168.1.1', 'protocol': 'OpenVPN', "
        "'server_performance': <PerformanceLevel.EXCELLENT: 'excellent'>}")
    assert user(env, "disconnect_vpn") == f"VPN disconnected successfully.\n{BAR}"
    assert user(env, "disconnect_vpn") == f"No active VPN connection to disconnect.\n{BAR}"
    assert act(env, "break_vpn", "user") == "VPN connection broken."
    assert "<PerformanceLevel.POOR: 'poor'>" in user(env, "check_vpn_status")
    assert user(env, "run_speed_test").startswith("Speed Test Result: 27.50 Mbps (Good).")


def test_wifi_calling_and_apps(env):
    assert user(env, "toggle_wifi") == f"Wi-Fi is now ON.\n{BAR}"
    assert user(env, "check_wifi_status") == "Wi-Fi is ON but not connected to any network."
    act(env, "set_wifi_calling", "user", enabled=True, mms_over_wifi=True)
    assert user(env, "can_send_mms") == "Your messaging app cannot send MMS messages."
    assert user(env, "toggle_wifi_calling") == f"Wi-Fi Calling is now OFF.\n{BAR}"
    assert act(env, "remove_app_permission", "user", app_name="messaging", permission="SMS") == \
        "Permission 'sms' removed from app 'messaging'."
    assert user(env, "check_app_permissions", app_name="messaging") == \
        "App 'messaging' has permission for: storage, phone."
    assert user(env, "check_app_status", app_name="browser") == \
        "Status for App: browser\n - Permissions Granted:\n   - storage\n   - network"
    assert user(env, "check_app_status", app_name="camera") == "App 'camera' not found on this phone."
    assert user(env, "grant_app_permission", app_name="camera", permission="sms") == \
        f"Error. App 'camera' not found. Cannot grant permission.\n{BAR}"
    assert user(env, "grant_app_permission", app_name="messaging", permission="gps") == (
        "Error. Permission 'gps' not tracked for app 'messaging', available permissions: "
        f"['sms', 'storage', 'phone', 'network']\n{BAR}")
    assert user(env, "grant_app_permission", app_name="messaging", permission="sms") == \
        f"Success. Permission 'sms' granted to app 'messaging'.\n{BAR}"
    assert user(env, "can_send_mms") == "Your messaging app can send MMS messages."


def test_the_phone_searches_the_network_only_when_it_acts(env):
    """τ²-bench's sync copies the line's state onto the phone but does not search: a line
    suspended for a bill shows no service after the next search, and a resumed one after a
    restart."""
    act(env, "suspend_line_for_overdue_bill", "agent", customer_id="C1001", line_id="L1002",
        new_bill_id="B9", contract_ended=False)
    assert surroundings(env)["line_active"] is False and device(env)["network_connection_status"] == "connected"
    act(env, "simulate_network_search", "user")
    assert user(env, "check_status_bar") == "Status Bar: 📵 No Signal | 📵 Data Disabled | 🔋 80%"
    text(env, "send_payment_request", customer_id="C1001", bill_id="B9")
    user(env, "make_payment")
    text(env, "resume_line", customer_id="C1001", line_id="L1002")
    assert surroundings(env)["line_active"] is True and device(env)["network_connection_status"] == "no_service"
    assert user(env, "reboot_device") == f"Restarting network services...\n{BAR}"
    assert act(env, "assert_no_overdue_bill", "agent", overdue_bill_id="B9") is True
    assert rules_broken(env) == []


# ------------------------------------------------------------------------------ environment actions


def test_set_up_actions(env):
    act(env, "set_data_usage", "agent", customer_id="C1001", line_id="L1002", data_used_gb=15.1)
    assert surroundings(env)["mobile_data_usage_exceeded"] is True
    assert act(env, "assert_mobile_data_status", "user", expected_status=False) is True
    assert act(env, "turn_data_off", "user") == "Data connection broken."
    assert act(env, "turn_data_saver_mode_on", "user") == "Data Saver Mode is now ON."
    assert act(env, "turn_roaming_on", "user") == "Data Roaming is now ON."
    assert act(env, "turn_airplane_mode_on", "user") == "Airplane Mode is now ON."
    d = device(env)
    assert (d["data_enabled"], d["data_saver_mode"], d["roaming_enabled"], d["airplane_mode"]) == (False, True, True, True)
    assert act(env, "assert_airplane_mode_status", "user", expected_status=True) is True
    assert act(env, "assert_service_status", "user", expected_status="no_service") is True
    assert env.act("assert_service_status", {"expected_status": "bogus"}, "user").ok is False
    act(env, "break_apn_mms_setting", "user")
    assert device(env)["active_apn_settings"]["mmsc_url"] is None
    assert act(env, "assert_can_send_mms", "user", expected_status=True) is False
    assert act(env, "assert_internet_speed", "user", expected_speed=1) is False
    assert act(env, "assert_internet_not_excellent", "user") is True


def test_suspend_line_for_overdue_bill(env):
    assert act(env, "suspend_line_for_overdue_bill", "agent", customer_id="C1001", line_id="L1002",
               new_bill_id="B1234321", contract_ended=True) == \
        "Line L1002 suspended for unpaid bill B1234321. Contract ended: True"
    assert rec(env, "bills", "bill_id", "B1234321") == {
        "bill_id": "B1234321", "customer_id": "C1001", "period_start": "2025-01-01",
        "period_end": "2025-01-31", "issue_date": "2025-01-01", "total_due": 65.0, "due_date": "2025-01-15",
        "line_items": [{"description": "Charge for line L1002", "amount": 65.0, "date": "2025-02-25",
                        "item_type": "Charge"}], "status": "Overdue"}
    line = rec(env, "lines", "line_id", "L1002")
    assert (line["status"], line["suspension_start_date"], line["contract_end_date"]) == \
        ("Suspended", "2025-02-25", "2025-01-31")
    assert act(env, "assert_overdue_bill_exists", "agent", customer_id="C1001", overdue_bill_id="B1234321")
    assert act(env, "assert_line_status", "agent", customer_id="C1001", line_id="L1002",
               expected_status="Suspended") is True
    r = env.act("suspend_line_for_overdue_bill", {"customer_id": "C1001", "line_id": "L1002",
                                                  "new_bill_id": "B2", "contract_ended": False}, "agent")
    assert not r.ok and r.error == "Line must be active to suspend for unpaid bill"


def test_assertion_actions_on_the_records(env):
    assert act(env, "assert_data_refueling_amount", "agent", customer_id="C1001", line_id="L1002",
               expected_amount=0.0) is True
    assert act(env, "assert_no_overdue_bill", "agent", overdue_bill_id="B1004") is False
    assert act(env, "assert_no_overdue_bill", "agent", overdue_bill_id="B0") is True
    r = env.act("assert_overdue_bill_exists", {"customer_id": "C1001", "overdue_bill_id": "B1002"}, "agent")
    assert not r.ok and r.error == "Overdue bill B1002 is not overdue"


# ------------------------------------------------------------------------------ rules


def _call(name: str, turn: int, ok: bool = True, confirmed: bool = False, **arguments: Any) -> dict:
    kind = "write" if name in AGENT_WRITES else "read"
    return {"name": name, "kind": kind, "arguments": arguments, "ok": ok, "error": None,
            "confirmed": confirmed, "turn": turn}


def _rule(domain, name: str, calls: list[dict]) -> bool:
    return compile_expr(domain.rules[name].expr)({"calls": calls, "messages": [], "db": WORLD,
                                                 "initial_db": WORLD})


def test_rules(domain):
    look = _call("get_customer_by_phone", 1, phone_number="555-123-2002")
    suspend = _call("suspend_line", 2, confirmed=True, customer_id="C1001", line_id="L1001", reason="lost")
    toggle = _call("toggle_airplane_mode", 2)
    assert _rule(domain, "confirm_before_write", [look, suspend, toggle])
    assert not _rule(domain, "confirm_before_write", [look, dict(suspend, confirmed=False)])
    assert _rule(domain, "identify_before_account_action", [look, suspend])
    assert not _rule(domain, "identify_before_account_action", [suspend, dict(look, turn=3)])
    transfer = _call("transfer_to_human_agents", 3, summary="x")
    assert _rule(domain, "transfer_ends_conversation", [look, suspend, transfer])
    assert not _rule(domain, "transfer_ends_conversation", [transfer, dict(look, turn=4)])
    assert not _rule(domain, "single_transfer", [transfer, transfer])
    refuel = _call("refuel_data", 2, confirmed=True, customer_id="C1001", line_id="L1002", gb_amount=1.0)
    other = dict(refuel, arguments=dict(refuel["arguments"], line_id="L1001"))
    assert _rule(domain, "one_refuel_per_line", [refuel, other, dict(refuel, ok=False)])
    assert not _rule(domain, "one_refuel_per_line", [refuel, dict(refuel, turn=4)])


# ------------------------------------------------------------------------------ generators


def test_generator_is_deterministic(build, build_user):
    a, b, c = (State.from_json(build(s, 0.05)) for s in (11, 11, 12))
    assert a.hash() == b.hash() and a.hash() != c.hash()
    world = build(11, 0.05)
    assert build_user(11, 0.05, world) == build_user(11, 0.05, copy.deepcopy(world))


def test_generated_worlds_validate_and_cohere(domain, build, build_user):
    for seed, size in ((0, 0.05), (5, 0.1)):
        world = build(seed, size)
        assert domain.schema.validate(world, ModelT("TelecomDB")) == []
        lines = {line["line_id"]: line for line in world["lines"]}
        bills = {b["bill_id"]: b for b in world["bills"]}
        devices = {d["device_id"] for d in world["devices"]}
        owned = [lid for c in world["customers"] for lid in c["line_ids"]]
        assert sorted(owned) == sorted(lines)  # every line has exactly one owner
        assert all(line["device_id"] in devices for line in lines.values())
        for c in world["customers"]:
            assert all(bills[b]["customer_id"] == c["customer_id"] for b in c["bill_ids"])
            assert " " in c["created_at"]  # τ²-bench's canonical datetime
        for b in bills.values():
            assert round(sum(i["amount"] for i in b["line_items"]), 2) == b["total_due"]
        untouched = copy.deepcopy(world)
        phone = build_user(seed, size, world)
        assert world == untouched  # the records are only read
        assert domain.user_schema.validate(phone, ModelT("TelecomUserDB")) == []


def test_generator_scale_at_size_1(domain, build, build_user):
    world = build(3, 1.0)
    assert len(world["customers"]) == 120 and 160 <= len(world["lines"]) <= 260
    assert len(world["bills"]) >= 2 * len(world["customers"])
    assert {"Paid", "Overdue", "Issued", "Draft"} <= {b["status"] for b in world["bills"]}
    env = Environment.from_domain(domain, seed=3, size=1.0)
    assert env.user_db.to_json() == build_user(3, 1.0, world)


def _phone_world(build, build_user, faults: list[str], seed: int = 2) -> SimpleNamespace:
    db = build(seed, 0.2)
    return SimpleNamespace(db=db, user_db=build_user(seed, 0.2, db, faults=faults), now="2025-02-25T12:08:00")


# τ²-bench breakage → the problem the customer sees, and whether the agent can fix it
FAULT_SYMPTOMS = {
    "airplane_mode_on": ("no service", True), "unseat_sim_card": ("no service", True),
    "lock_sim_card_pin": ("no service", False), "lock_sim_card_puk": ("no service", False),
    "break_apn_settings": ("no service", True), "data_mode_off": ("no mobile data", True),
    "user_abroad_roaming_off": ("no mobile data", True), "user_abroad_roaming_on": ("no mobile data", True),
    "data_saver_mode_on": ("slow mobile data", True), "bad_network_preference": ("slow mobile data", True),
    "bad_vpn": ("slow mobile data", True), "break_apn_mms_setting": ("picture messages fail", True),
    "bad_wifi_calling": ("picture messages fail", True), "break_app_sms_permission": ("picture messages fail", True),
    "break_app_storage_permission": ("picture messages fail", True),
}


def test_every_breakage_is_troubleshot(domain, build, build_user, recipes):
    """Each of τ²-bench's breakages gives its symptom, and the troubleshooting recipe's gold
    path, replayed on the environment, fixes it (or hands a locked SIM to a human)."""
    assert set(FAULT_SYMPTOMS) == set(load_impl(domain.generate_user).__globals__["FAULTS"])
    healthy = _phone_world(build, build_user, [])
    assert recipes["troubleshoot"].reportable(healthy.user_db["device"], healthy.user_db["surroundings"]) == []
    for fault, (symptom, fixable) in FAULT_SYMPTOMS.items():
        world = _phone_world(build, build_user, [fault])
        if fault == "user_abroad_roaming_on" and not world.db["lines"]:
            continue
        stages = recipes["troubleshoot"].reportable(world.user_db["device"], world.user_db["surroundings"])
        assert recipes["troubleshoot"].SYMPTOMS[stages[0]] == symptom, fault
        seed = recipes["_seed_fix"](random.Random(0), world, {})
        plan = recipes["_plan_fix"](random.Random(0), world, dict(seed, symptom=symptom), {"level": "medium"})
        env = Environment(domain, State.from_json(world.db), State.from_json(world.user_db))
        results = env.replay(plan["gold_calls"])
        assert all(r.ok for r in results) and rules_broken(env) == [], (fault, plan["gold_calls"])
        handover = plan["gold_calls"][-1]["name"] == "transfer_to_human_agents"
        assert handover != fixable, fault
        after = env.user_db.to_json()
        stage = {v: k for k, v in recipes["troubleshoot"].SYMPTOMS.items()}[symptom]
        assert recipes["troubleshoot"].stage_ok(stage, after["device"], after["surroundings"]) == fixable, fault


def test_every_generated_phone_is_broken_and_every_intent_plans(domain, recipes):
    """A run has one world: its phone is always broken, so troubleshooting is on offer."""
    seen = set()
    for seed in range(6):
        env = Environment.from_domain(domain, seed=seed, size=0.3)
        world = SimpleNamespace(db=env.db.to_json(), user_db=env.user_db.to_json(), now=domain.now, domain=domain)
        assert recipes["troubleshoot"].reportable(world.user_db["device"], world.user_db["surroundings"])
        for i in range(12):
            rng = random.Random(seed * 100 + i)
            s = recipes["seed"](rng, world, {"level": "medium", "tool_calls": 4})
            plan = recipes["task"](rng, world, {**s, "difficulty": {"level": "medium"}})
            assert plan["gold_calls"], s
            seen.add(s["intent"])
    assert seen == set(recipes["INTENTS"])


# ------------------------------------------------------------------------------ τ²-bench interface


def _reference() -> dict:
    if not REFERENCE.is_file():
        pytest.skip("τ²-bench interface reference not available")
    return json.loads(REFERENCE.read_text())["domains"]["telecom"]


def test_names_match_reference(domain):
    ref = _reference()
    for side, tools in (("tools", domain.tools), ("user_tools", domain.user_tools)):
        assert [t["name"] for t in ref[side]] == list(tools), side
        for t in ref[side]:
            spec = tools[t["name"]]
            assert [p["name"] for p in t["params"]] == list(spec.params), t["name"]
            assert [p["required"] for p in t["params"]] == [p.required for p in spec.params.values()]
            assert t["kind"] == spec.kind, t["name"]
    for key, schema in (("db", domain.schema), ("user_db", domain.user_schema)):
        models = ref[key]["models"]
        assert ref[key]["root"] == schema.root and set(models) == set(schema.models)
        for name, model in models.items():
            assert list(model["fields"]) == list(schema.models[name]), name
            for field_name in model["fields"]:
                assert schema.models[name][field_name].required == (field_name in model["required"]), \
                    (name, field_name)
        assert set(ref[key]["enums"]) <= set(schema.aliases)
