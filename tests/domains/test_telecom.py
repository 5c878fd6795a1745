"""The telecom domain: schema, agent tools and user (phone) tools with every refusal,
dual-control sync, trajectory rules, generators, and τ²-bench compatibility.

Tool tests run on a small hand-written world (`WORLD`) whose prices and states are known, with
the phone of Maya's line L1 built by the domain's own `build_user`. Each refusal is checked
twice: with the domain's preconditions, and with them stripped, so the tools' own checks
(`ToolError`) are shown to hold the same rules.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from eigenlang.domain import load_domain
from eigenlang.expr import compile_expr
from eigenlang.types import ModelT
from runtime.env import Environment, State
from runtime.env.impls import load_impl

DOMAIN_DIR = Path(__file__).resolve().parents[2] / "domains" / "telecom"
REFERENCE = Path("/work/shared/reference/tau2_interfaces.json")
AGENT_WRITES = ("suspend_line", "resume_line", "send_payment_request", "enable_roaming",
                "disable_roaming", "refuel_data")

# ------------------------------------------------------------------------------ a small world


def _bill(bill_id: str, customer: str, month: int, status: str, items: list[tuple]) -> dict:
    line_items = [{"description": d, "amount": a, "date": f"2025-{month:02d}-01", "item_type": t}
                  for d, a, t in items]
    end = {1: 31, 2: 28, 3: 31}[month]
    return {"bill_id": bill_id, "customer_id": customer, "period_start": f"2025-{month:02d}-01",
            "period_end": f"2025-{month:02d}-{end}", "issue_date": f"2025-{month + 1:02d}-01",
            "total_due": round(sum(a for _, a, _ in items), 2),
            "due_date": f"2025-{month + 1:02d}-21", "line_items": line_items, "status": status}


def _line(line_id: str, number: str, status: str, plan: str, device: str, used: float,
          roaming: bool = False) -> dict:
    return {"line_id": line_id, "phone_number": number, "status": status, "plan_id": plan,
            "device_id": device, "data_used_gb": used, "data_refueling_gb": 0.0,
            "roaming_enabled": roaming, "contract_end_date": None, "last_plan_change_date": None,
            "last_sim_replacement_date": None,
            "suspension_start_date": "2025-03-01" if status == "Suspended" else None}


def _customer(cid: str, name: str, dob: str, number: str, status: str, lines: list[str],
              bills: list[str]) -> dict:
    return {"customer_id": cid, "full_name": name, "date_of_birth": dob,
            "email": name.lower().replace(" ", ".") + "@example.com", "phone_number": number,
            "address": {"street": "12 Oak Street", "city": "Austin", "state": "TX",
                        "zip_code": "78701"},
            "account_status": status,
            "payment_methods": [{"method_type": "Credit Card", "account_number_last_4": "4242",
                                 "expiration_date": "08/2027"}],
            "line_ids": lines, "bill_ids": bills, "created_at": "2023-05-02T10:00:00",
            "last_extension_date": None, "goodwill_credit_used_this_year": 0.0}


def _device(did: str, kind: str, model: str) -> dict:
    return {"device_id": did, "device_type": kind, "model": model, "imei": "351234567890123",
            "is_esim_capable": True, "activated": True, "activation_date": "2023-05-02T10:30:00",
            "last_esim_transfer_date": None}


WORLD: dict[str, Any] = {
    "plans": [
        {"plan_id": "P1", "name": "Everyday 10GB", "data_limit_gb": 10.0, "price_per_month": 40.0,
         "data_refueling_price_per_gb": 8.0},
        {"plan_id": "P2", "name": "Basic 2GB", "data_limit_gb": 2.0, "price_per_month": 25.0,
         "data_refueling_price_per_gb": 10.0},
    ],
    "customers": [
        _customer("C1", "Maya Patel", "1990-04-12", "512-555-0101", "Active", ["L1", "L2"],
                  ["B1", "B2", "B3"]),
        _customer("C2", "Omar Lee", "1985-09-30", "303-555-0201", "Active", ["L3"], ["B4"]),
        _customer("C3", "Sara Kim", "1979-01-05", "206-555-0301", "Closed", ["L4"], ["B5"]),
        _customer("C4", "Maya Patel", "2001-07-19", "617-555-0401", "Active", ["L5"], []),
    ],
    "lines": [
        _line("L1", "512-555-0101", "Active", "P1", "D1", 4.0),
        _line("L2", "512-555-0102", "Suspended", "P2", "D2", 0.0),
        _line("L3", "303-555-0201", "Active", "P2", "D3", 2.5, roaming=True),
        _line("L4", "206-555-0301", "Closed", "P2", "D4", 0.0),
        _line("L5", "617-555-0401", "Pending Activation", "P1", "D5", 0.0),
    ],
    "bills": [
        _bill("B1", "C1", 1, "Paid", [("Plan charge L1", 40.0, "Plan Charge"),
                                      ("Plan charge L2", 25.0, "Plan Charge")]),
        _bill("B2", "C1", 2, "Overdue", [("Plan charge L1", 40.0, "Plan Charge"),
                                         ("Plan charge L2", 25.0, "Plan Charge"),
                                         ("Late fee", 5.0, "Late Fee")]),
        _bill("B3", "C1", 3, "Draft", [("Plan charge L1", 40.0, "Plan Charge")]),
        _bill("B4", "C2", 2, "Issued", [("Plan charge L3", 25.0, "Plan Charge")]),
        _bill("B5", "C3", 1, "Paid", [("Plan charge L4", 25.0, "Plan Charge")]),
    ],
    "devices": [_device("D1", "phone", "Pixel 8"), _device("D2", "phone", "iPhone 15"),
                _device("D3", "phone", "Galaxy S24"), _device("D4", "tablet", "iPad Air"),
                _device("D5", "watch", "Galaxy Watch 6")],
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

    return dataclasses.replace(domain, tools=strip(domain.tools),
                               user_tools=strip(domain.user_tools))


@pytest.fixture(scope="module")
def build(domain):
    return load_impl(domain.generate)


@pytest.fixture(scope="module")
def build_user(domain):
    return load_impl(domain.generate_user)


def make_env(domain, build_user, line_id: str = "L1", world: dict | None = None,
             **faults: Any) -> Environment:
    world = copy.deepcopy(world or WORLD)
    phone = build_user(7, 1.0, world, line_id=line_id, **faults)
    return Environment(domain, State.from_json(world), State.from_json(phone))


@pytest.fixture
def env(domain, build_user) -> Environment:
    return make_env(domain, build_user)


@pytest.fixture(params=["preconditions", "tools"])
def strict_env(request, domain, bare_domain, build_user) -> Environment:
    """The same world, refusals enforced by the preconditions or by the tools alone."""
    return make_env(domain if request.param == "preconditions" else bare_domain, build_user)


def ok(env: Environment, tool: str, side: str = "agent", **args: Any) -> Any:
    r = env.call(tool, args, side)
    assert r.ok, r.content
    try:
        return json.loads(r.content)
    except ValueError:
        return r.content


def user(env: Environment, tool: str, **args: Any) -> str:
    return ok(env, tool, "user", **args)


def refused(env: Environment, tool: str, expect: str, side: str = "agent", **args: Any) -> str:
    """The call fails with a message containing `expect`, and nothing changes."""
    before = env.hash()
    r = env.call(tool, args, side)
    assert not r.ok, f"{tool} should have been refused: {r.content}"
    assert r.error in ("precondition", "tool_error"), r
    assert expect.lower() in r.content.lower(), r.content
    assert env.hash() == before
    return r.content


def db(env: Environment) -> dict:
    return env.db.to_json()


def phone(env: Environment) -> dict:
    return env.user_db.to_json()


def rec(env: Environment, collection: str, key: str, value: str) -> dict:
    return next(x for x in db(env)[collection] if x[key] == value)


# ------------------------------------------------------------------------------ the program


def test_domain_loads_without_diagnostics():
    spec, diags = load_domain(DOMAIN_DIR)
    assert spec is not None and [str(d) for d in diags] == []
    assert len(spec.tools) == 13 and len(spec.user_tools) == 30
    assert spec.sync is not None and spec.generate_user is not None
    assert spec.policy.startswith("# Telecom support desk policy")
    assert set(spec.rules) >= {"confirm_before_write", "transfer_ends_conversation"}


def test_world_fixtures_match_schemas(domain, build_user):
    assert domain.schema.validate(WORLD, ModelT("TelecomDB")) == []
    assert domain.user_schema.validate(build_user(1, 1.0, copy.deepcopy(WORLD), line_id="L1"),
                                       ModelT("TelecomUserDB")) == []


def test_generator_now_matches_domain(domain, build):
    generate_module = load_impl(domain.generate).__globals__
    assert generate_module["NOW"].isoformat() == domain.now


def test_read_calls_leave_the_state_alone(env):
    """`sync` runs after every call; on a consistent state it changes nothing."""
    before = env.hash()
    ok(env, "get_customer_by_id", customer_id="C1")
    for tool in ("check_status_bar", "check_network_status", "run_speed_test", "can_send_mms"):
        user(env, tool)
    assert env.hash() == before


# ------------------------------------------------------------------------------ agent: reads


def test_get_customer_by_phone(strict_env):
    env = strict_env
    assert ok(env, "get_customer_by_phone", phone_number="512-555-0101")["customer_id"] == "C1"
    # the number of a second line finds its owner too
    assert ok(env, "get_customer_by_phone", phone_number="512-555-0102")["customer_id"] == "C1"
    refused(env, "get_customer_by_phone", "no customer found", phone_number="999-555-0000")


def test_get_customer_by_id_and_name(strict_env):
    env = strict_env
    assert ok(env, "get_customer_by_id", customer_id="C2")["full_name"] == "Omar Lee"
    refused(env, "get_customer_by_id", "not found", customer_id="C99")
    found = ok(env, "get_customer_by_name", full_name="maya PATEL", dob="2001-07-19")
    assert [c["customer_id"] for c in found] == ["C4"]
    assert ok(env, "get_customer_by_name", full_name="Maya Patel", dob="1999-01-01") == []


def test_get_details_by_id(strict_env):
    env = strict_env
    assert ok(env, "get_details_by_id", id="C3")["account_status"] == "Closed"
    assert ok(env, "get_details_by_id", id="L3")["roaming_enabled"] is True
    assert ok(env, "get_details_by_id", id="B2")["status"] == "Overdue"
    assert ok(env, "get_details_by_id", id="D4")["device_type"] == "tablet"
    assert ok(env, "get_details_by_id", id="P2")["data_limit_gb"] == 2.0
    refused(env, "get_details_by_id", "no customer, line, bill, device or plan", id="X1")


def test_get_bills_for_customer(strict_env):
    env = strict_env
    bills = ok(env, "get_bills_for_customer", customer_id="C1")
    assert [b["bill_id"] for b in bills] == ["B3", "B2", "B1"]  # newest period first
    assert [b["bill_id"] for b in ok(env, "get_bills_for_customer", customer_id="C1", limit=2)] == ["B3", "B2"]
    refused(env, "get_bills_for_customer", "not found", customer_id="C99")
    refused(env, "get_bills_for_customer", "limit must be at least 1", customer_id="C1", limit=0)


def test_get_data_usage(strict_env):
    env = strict_env
    usage = ok(env, "get_data_usage", customer_id="C2", line_id="L3")
    assert usage["data_remaining_gb"] == 0.0 and usage["usage_exceeded"] is True
    assert usage["cycle_end_date"] == "2025-03-31" and usage["data_limit_gb"] == 2.0
    assert ok(env, "get_data_usage", customer_id="C1", line_id="L1")["data_remaining_gb"] == 6.0
    refused(env, "get_data_usage", "not found", customer_id="C1", line_id="L99")
    refused(env, "get_data_usage", "does not belong", customer_id="C1", line_id="L3")


def test_schema_errors(env):
    assert env.call("get_customer_by_id", {"id": "C1"}).error == "schema"
    assert env.call("refuel_data", {"customer_id": "C1", "line_id": "L1", "gb_amount": "two"}).error == "schema"
    assert env.call("set_network_mode_preference", {"mode": "6g_only"}, "user").error == "schema"


# ------------------------------------------------------------------------------ agent: lines


def test_suspend_line(env):
    result = ok(env, "suspend_line", customer_id="C1", line_id="L1", reason="lost device")
    assert result["line"]["status"] == "Suspended"
    line = rec(env, "lines", "line_id", "L1")
    assert line["status"] == "Suspended" and line["suspension_start_date"] == "2025-03-15"


def test_suspend_line_refusals(strict_env):
    env = strict_env
    refused(env, "suspend_line", "not found", customer_id="C99", line_id="L1", reason="x")
    refused(env, "suspend_line", "closed", customer_id="C3", line_id="L4", reason="x")
    refused(env, "suspend_line", "not found", customer_id="C1", line_id="L99", reason="x")
    refused(env, "suspend_line", "does not belong", customer_id="C1", line_id="L3", reason="x")
    refused(env, "suspend_line", "active", customer_id="C1", line_id="L2", reason="x")
    refused(env, "suspend_line", "active", customer_id="C4", line_id="L5", reason="x")
    refused(env, "suspend_line", "reason", customer_id="C1", line_id="L1", reason="")


def test_resume_line_refusals(strict_env):
    env = strict_env
    refused(env, "resume_line", "not found", customer_id="C99", line_id="L2")
    refused(env, "resume_line", "closed", customer_id="C3", line_id="L4")
    refused(env, "resume_line", "does not belong", customer_id="C2", line_id="L2")
    refused(env, "resume_line", "only a suspended line", customer_id="C1", line_id="L1")
    refused(env, "resume_line", "unpaid overdue bills", customer_id="C1", line_id="L2")


def test_pay_overdue_bill_then_resume(domain, build_user):
    """The full dual-control payment: request → phone shows it → customer pays → bill paid."""
    env = make_env(domain, build_user)
    assert "No payment request" in user(env, "check_payment_request")
    text = ok(env, "send_payment_request", customer_id="C1", bill_id="B2")
    assert "B2" in text and "70.00" in text
    assert rec(env, "bills", "bill_id", "B2")["status"] == "Awaiting Payment"
    assert phone(env)["surroundings"]["payment_request"] == {"bill_id": "B2", "amount_due": 70.0,
                                                            "paid": False}
    assert "70.00" in user(env, "check_payment_request")
    refused(env, "resume_line", "unpaid overdue bills", customer_id="C1", line_id="L2")
    assert "Paid 70.00" in user(env, "make_payment")
    assert rec(env, "bills", "bill_id", "B2")["status"] == "Paid"
    assert phone(env)["surroundings"]["payment_request"] is None
    refused(env, "make_payment", "no payment request", side="user")
    assert ok(env, "resume_line", customer_id="C1", line_id="L2")["line"]["status"] == "Active"
    line = rec(env, "lines", "line_id", "L2")
    assert line["suspension_start_date"] is None


def test_send_payment_request_refusals(strict_env):
    env = strict_env
    refused(env, "send_payment_request", "not found", customer_id="C99", bill_id="B2")
    refused(env, "send_payment_request", "not found", customer_id="C1", bill_id="B99")
    refused(env, "send_payment_request", "closed", customer_id="C3", bill_id="B5")
    refused(env, "send_payment_request", "does not belong", customer_id="C2", bill_id="B2")
    for bill in ("B1", "B3"):  # paid, draft
        refused(env, "send_payment_request", "only an overdue bill", customer_id="C1", bill_id=bill)
    ok(env, "send_payment_request", customer_id="C1", bill_id="B2")
    world = db(env)
    world["bills"].append(dict(world["bills"][1], bill_id="B6", status="Overdue"))
    again = Environment(env.domain, State.from_json(world), env.user_db)
    refused(again, "send_payment_request", "already pending", customer_id="C1", bill_id="B6")


def test_make_payment_refuses_a_paid_request(domain, build_user):
    env = make_env(domain, build_user)
    state = phone(env)
    state["surroundings"]["payment_request"] = {"bill_id": "B2", "amount_due": 70.0, "paid": True}
    env = Environment(domain, env.db, State.from_json(state))
    refused(env, "make_payment", "already been paid", side="user")


# ------------------------------------------------------------------------------ agent: roaming, data


def test_enable_and_disable_roaming(env):
    assert ok(env, "enable_roaming", customer_id="C1", line_id="L1")["roaming_enabled"] is True
    assert rec(env, "lines", "line_id", "L1")["roaming_enabled"] is True
    assert "disabled" in ok(env, "disable_roaming", customer_id="C1", line_id="L1")
    assert rec(env, "lines", "line_id", "L1")["roaming_enabled"] is False


def test_roaming_refusals(strict_env):
    env = strict_env
    refused(env, "enable_roaming", "not found", customer_id="C99", line_id="L1")
    refused(env, "enable_roaming", "closed", customer_id="C3", line_id="L4")
    refused(env, "enable_roaming", "does not belong", customer_id="C1", line_id="L3")
    refused(env, "enable_roaming", "active", customer_id="C1", line_id="L2")
    refused(env, "enable_roaming", "already enabled", customer_id="C2", line_id="L3")
    refused(env, "disable_roaming", "not found", customer_id="C1", line_id="L99")
    refused(env, "disable_roaming", "closed", customer_id="C3", line_id="L4")
    refused(env, "disable_roaming", "does not belong", customer_id="C2", line_id="L1")
    refused(env, "disable_roaming", "already disabled", customer_id="C1", line_id="L1")


def test_refuel_data_charges_the_draft_bill(env):
    result = ok(env, "refuel_data", customer_id="C1", line_id="L1", gb_amount=1.5)
    assert result["charge"] == 12.0 and result["bill_id"] == "B3"
    assert rec(env, "lines", "line_id", "L1")["data_refueling_gb"] == 1.5
    bill = rec(env, "bills", "bill_id", "B3")
    assert bill["total_due"] == 52.0 and bill["line_items"][-1]["item_type"] == "Data Refuel"
    assert bill["line_items"][-1]["amount"] == 12.0


def test_refuel_data_opens_a_draft_bill_when_missing(env):
    result = ok(env, "refuel_data", customer_id="C2", line_id="L3", gb_amount=2)
    bill = rec(env, "bills", "bill_id", result["bill_id"])
    assert bill["status"] == "Draft" and bill["total_due"] == 20.0
    assert bill["period_start"] == "2025-03-01" and bill["period_end"] == "2025-03-31"
    assert result["bill_id"] in rec(env, "customers", "customer_id", "C2")["bill_ids"]


def test_refuel_data_refusals(strict_env):
    env = strict_env
    refused(env, "refuel_data", "not found", customer_id="C99", line_id="L1", gb_amount=1)
    refused(env, "refuel_data", "closed", customer_id="C3", line_id="L4", gb_amount=1)
    refused(env, "refuel_data", "does not belong", customer_id="C1", line_id="L3", gb_amount=1)
    refused(env, "refuel_data", "active", customer_id="C1", line_id="L2", gb_amount=1)
    refused(env, "refuel_data", "at most 2", customer_id="C1", line_id="L1", gb_amount=2.5)
    refused(env, "refuel_data", "more than 0", customer_id="C1", line_id="L1", gb_amount=0)


def test_transfer_to_human_agents(strict_env):
    env = strict_env
    before = env.hash()
    assert ok(env, "transfer_to_human_agents", summary="wants a plan change") == "Transfer successful"
    assert env.hash() == before
    refused(env, "transfer_to_human_agents", "summary", summary="")


# ------------------------------------------------------------------------------ dual control (sync)


def test_airplane_mode_drops_and_restores_service(env):
    assert phone(env)["device"]["network_connection_status"] == "connected"
    assert "ON" in user(env, "toggle_airplane_mode")
    device = phone(env)["device"]
    assert device["network_connection_status"] == "no_service"
    assert device["network_technology_connected"] == "none"
    assert "airplane mode icon" in user(env, "check_status_bar")
    assert "no internet" in user(env, "run_speed_test")
    user(env, "toggle_airplane_mode")
    assert phone(env)["device"]["network_connection_status"] == "connected"


def test_suspending_the_line_cuts_the_phone_and_resuming_restores_it(domain, build_user):
    world = copy.deepcopy(WORLD)
    world["bills"][1]["status"] = "Paid"  # nothing owed: the line can come back
    env = make_env(domain, build_user, world=world)
    ok(env, "suspend_line", customer_id="C1", line_id="L1", reason="customer travelling")
    surroundings, device = phone(env)["surroundings"], phone(env)["device"]
    assert surroundings["line_active"] is False
    assert device["network_connection_status"] == "emergency_only"
    assert "Emergency calls only" in user(env, "check_status_bar")
    ok(env, "resume_line", customer_id="C1", line_id="L1")
    assert phone(env)["device"]["network_connection_status"] == "connected"
    assert "Mbps" in user(env, "run_speed_test")


def test_enabling_roaming_gives_an_abroad_phone_data(domain, build_user):
    env = make_env(domain, build_user, abroad=True)
    assert phone(env)["device"]["network_connection_status"] == "emergency_only"
    assert "no internet" in user(env, "run_speed_test")
    ok(env, "enable_roaming", customer_id="C1", line_id="L1")
    assert phone(env)["surroundings"]["roaming_allowed"] is True
    assert phone(env)["device"]["network_connection_status"] == "connected"
    assert "Mbps" in user(env, "run_speed_test")
    # the phone's own data-roaming switch also matters abroad
    assert "OFF" in user(env, "toggle_roaming")
    assert "no internet" in user(env, "run_speed_test")


def test_refuel_restores_data_when_the_allowance_is_used_up(domain, build_user):
    env = make_env(domain, build_user, line_id="L3")
    assert phone(env)["surroundings"]["mobile_data_usage_exceeded"] is True
    assert "used up" in user(env, "check_data_restriction_status")
    assert "no internet" in user(env, "run_speed_test")
    ok(env, "refuel_data", customer_id="C2", line_id="L3", gb_amount=1)
    assert phone(env)["surroundings"]["mobile_data_usage_exceeded"] is False
    assert "Mbps" in user(env, "run_speed_test")


# ------------------------------------------------------------------------------ user tools


def test_sim_card(domain, build_user):
    env = make_env(domain, build_user, sim_missing=True)
    assert "No SIM" in user(env, "check_sim_status")
    assert phone(env)["device"]["network_connection_status"] == "no_service"
    assert "detected and active" in user(env, "reseat_sim_card")
    assert phone(env)["device"]["network_connection_status"] == "connected"
    locked = make_env(domain, build_user, sim_locked="locked_puk")
    assert "PUK" in user(locked, "check_sim_status")
    assert phone(locked)["device"]["network_connection_status"] == "emergency_only"


def test_mobile_data_switch_and_data_saver(env):
    assert "OFF" in user(env, "toggle_data")
    assert "not working" in user(env, "check_network_status")
    user(env, "toggle_data")
    fast = user(env, "run_speed_test")
    assert "ON" in user(env, "toggle_data_saver_mode")
    assert "Data saver mode: ON" in user(env, "check_data_restriction_status")
    slow = user(env, "run_speed_test")
    assert "1.00 Mbps" in slow and fast != slow


def test_apn_settings_reset_at_reboot(domain, build_user):
    env = make_env(domain, build_user, bad_apn=True)
    assert "apn_name=broken" in user(env, "check_apn_settings")
    assert "no internet" in user(env, "run_speed_test")
    assert "when the phone restarts" in user(env, "reset_apn_settings")
    assert "no internet" in user(env, "run_speed_test")  # not before the restart
    assert "connected" in user(env, "reboot_device")
    assert phone(env)["device"]["active_apn_settings"]["apn_name"] == "internet"
    assert "Mbps" in user(env, "run_speed_test")


def test_set_apn_settings(domain, build_user):
    env = make_env(domain, build_user, bad_apn=True)
    assert "apn_name=internet" in user(env, "set_apn_settings", apn_settings={"apn_name": "internet"})
    assert phone(env)["device"]["active_apn_settings"]["mmsc_url"] == "http://mms.carrier.com/mms/wapenc"
    assert env.call("set_apn_settings", {"apn_settings": {"apn": "internet"}}, "user").error == "schema"


def test_network_mode_preference(env):
    assert "4g_5g_preferred" in user(env, "check_network_mode_preference")
    assert "on 2G" in user(env, "set_network_mode_preference", mode="2g_only")
    assert "3G" in user(env, "can_send_mms")
    assert phone(env)["device"]["network_technology_connected"] == "2G"


def test_wifi_and_wifi_calling(domain, build_user):
    env = make_env(domain, build_user, wifi=True)
    assert "connected to" in user(env, "check_wifi_status")
    assert "Wi-Fi (" in user(env, "run_speed_test")
    assert "OFF" in user(env, "toggle_wifi")
    assert "not connected" in user(env, "check_wifi_status")
    assert "Connected to" in user(env, "toggle_wifi")
    assert "Wi-Fi calling: OFF" in user(env, "check_wifi_calling_status")
    assert "ON" in user(env, "toggle_wifi_calling")
    no_home_wifi = make_env(domain, build_user)
    assert "No known network" in user(no_home_wifi, "toggle_wifi")


def test_vpn(domain, build_user):
    env = make_env(domain, build_user, vpn="poor")
    assert "performance: poor" in user(env, "check_vpn_status")
    slow = user(env, "run_speed_test")
    refused(env, "connect_vpn", "already connected", side="user")
    assert "disconnected" in user(env, "disconnect_vpn")
    assert user(env, "run_speed_test") != slow
    refused(env, "disconnect_vpn", "not connected", side="user")
    assert "VPN connected" in user(env, "connect_vpn")
    user(env, "disconnect_vpn")
    assert phone(env)["device"]["vpn_enabled_setting"] is False


def test_vpn_refusals(domain, bare_domain, build_user):
    for d in (domain, bare_domain):
        env = make_env(d, build_user)
        refused(env, "connect_vpn", "no VPN profile", side="user")
        refused(env, "disconnect_vpn", "not connected", side="user")


def test_apps_and_mms(domain, build_user):
    env = make_env(domain, build_user, messaging_permissions_missing=True)
    assert "browser, messaging" in user(env, "check_installed_apps")
    assert "sms=denied" in user(env, "check_app_status", app_name="messaging")
    assert user(env, "check_app_permissions", app_name="messaging").endswith("phone")
    assert "permission" in user(env, "can_send_mms")
    user(env, "grant_app_permission", app_name="messaging", permission="sms")
    user(env, "grant_app_permission", app_name="messaging", permission="storage")
    assert user(env, "can_send_mms").startswith("Yes")
    broken = make_env(domain, build_user, mms_apn_missing=True)
    assert "MMS configuration" in user(broken, "can_send_mms")


def test_app_refusals(domain, bare_domain, build_user):
    for d in (domain, bare_domain):
        env = make_env(d, build_user)
        refused(env, "check_app_status", "no app", side="user", app_name="camera")
        refused(env, "check_app_permissions", "no app", side="user", app_name="camera")
        refused(env, "grant_app_permission", "no app", side="user", app_name="camera", permission="sms")
        refused(env, "grant_app_permission", "permission must be one of", side="user",
                app_name="messaging", permission="camera")
    env = make_env(domain, build_user)
    refused(env, "grant_app_permission", "already has", side="user", app_name="messaging", permission="sms")


def test_make_payment_without_request(domain, bare_domain, build_user):
    for d in (domain, bare_domain):
        refused(make_env(d, build_user), "make_payment", "no payment request", side="user")


# ------------------------------------------------------------------------------ trajectory rules


def _call(name: str, turn: int, ok: bool = True, confirmed: bool = False, **arguments: Any) -> dict:
    kind = "write" if name in AGENT_WRITES else "read"
    return {"name": name, "kind": kind, "arguments": arguments, "ok": ok, "error": None,
            "confirmed": confirmed, "turn": turn}


def _rule(domain, name: str, calls: list[dict]) -> bool:
    return compile_expr(domain.rules[name].expr)({"calls": calls, "messages": [], "db": WORLD,
                                                 "initial_db": WORLD})


def test_rules(domain):
    look = _call("get_customer_by_phone", 1, phone_number="512-555-0101")
    suspend = _call("suspend_line", 2, confirmed=True, customer_id="C1", line_id="L1", reason="lost")
    toggle = _call("toggle_airplane_mode", 2)
    assert _rule(domain, "confirm_before_write", [look, suspend, toggle])
    assert not _rule(domain, "confirm_before_write", [look, dict(suspend, confirmed=False)])

    assert _rule(domain, "identify_before_account_action", [look, suspend])
    assert not _rule(domain, "identify_before_account_action", [suspend, dict(look, turn=3)])
    assert not _rule(domain, "identify_before_account_action", [dict(look, ok=False), suspend])

    transfer = _call("transfer_to_human_agents", 3, summary="x")
    assert _rule(domain, "transfer_ends_conversation", [look, suspend, transfer])
    assert not _rule(domain, "transfer_ends_conversation", [transfer, dict(look, turn=4)])
    assert _rule(domain, "single_transfer", [look, transfer])
    assert not _rule(domain, "single_transfer", [transfer, transfer])

    refuel = _call("refuel_data", 2, confirmed=True, customer_id="C1", line_id="L1", gb_amount=1.0)
    other = dict(refuel, arguments=dict(refuel["arguments"], line_id="L2"))
    assert _rule(domain, "one_refuel_per_line", [refuel, other, dict(refuel, ok=False)])
    assert not _rule(domain, "one_refuel_per_line", [refuel, dict(refuel, turn=4)])


# ------------------------------------------------------------------------------ generators


def test_generator_is_deterministic(build):
    a, b, c = (State.from_json(build(s, 0.05)) for s in (11, 11, 12))
    assert a.hash() == b.hash() and a.hash() != c.hash()


def test_generated_worlds_validate_and_cohere(domain, build, build_user):
    for seed, size in ((0, 0.05), (5, 0.1)):
        world = build(seed, size)
        assert domain.schema.validate(world, ModelT("TelecomDB")) == []
        lines = {line["line_id"]: line for line in world["lines"]}
        bills = {b["bill_id"]: b for b in world["bills"]}
        devices = {d["device_id"] for d in world["devices"]}
        plans = {p["plan_id"] for p in world["plans"]}
        owned = [lid for c in world["customers"] for lid in c["line_ids"]]
        assert sorted(owned) == sorted(lines)  # every line has exactly one owner
        assert all(line["device_id"] in devices and line["plan_id"] in plans for line in lines.values())
        for c in world["customers"]:
            assert all(bills[b]["customer_id"] == c["customer_id"] for b in c["bill_ids"])
        for b in bills.values():
            assert round(sum(i["amount"] for i in b["line_items"]), 2) == b["total_due"]
        phone_db = build_user(seed, size, world)
        assert domain.user_schema.validate(phone_db, ModelT("TelecomUserDB")) == []
        assert phone_db["device"]["network_connection_status"] == "connected"


def test_generator_scale_at_size_1(domain, build, build_user):
    start = time.perf_counter()
    world = build(3, 1.0)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    assert 5 <= len(world["plans"]) <= 10 and len(world["customers"]) >= 100
    assert 160 <= len(world["lines"]) <= 260 and len(world["devices"]) >= len(world["lines"])
    assert len(world["bills"]) >= 2 * len(world["customers"])
    statuses = {b["status"] for b in world["bills"]}
    assert {"Paid", "Overdue", "Issued", "Draft"} <= statuses
    assert domain.schema.validate(world, ModelT("TelecomDB")) == []
    env = Environment.from_domain(domain, seed=3, size=1.0)
    assert env.db.hash() == State.from_json(world).hash()
    assert env.user_db.to_json() == build_user(3, 1.0, world)


def test_build_user_faults(domain, build, build_user):
    world = build(2, 0.1)
    for faults, status in (({"airplane_mode": True}, "no_service"),
                           ({"sim_missing": True}, "no_service"),
                           ({"sim_locked": "locked_pin"}, "emergency_only"),
                           ({"data_off": True}, "connected"),
                           ({"bad_apn": True}, "connected"),
                           ({"weak_signal": True}, "connected"),
                           ({"network_mode": "3g_only"}, "connected")):
        phone_db = build_user(2, 0.1, world, **faults)
        assert domain.user_schema.validate(phone_db, ModelT("TelecomUserDB")) == [], faults
        assert phone_db["device"]["network_connection_status"] == status, faults
    assert build_user(2, 0.1, world, weak_signal=True)["device"]["network_signal_strength"] == "poor"
    abroad = build_user(2, 0.1, world, abroad=True, phone_roaming=False)
    assert abroad["surroundings"]["is_abroad"] and not abroad["device"]["roaming_enabled"]
    with pytest.raises(ValueError):
        build_user(2, 0.1, world, line_id="nope")


# ------------------------------------------------------------------------------ τ²-bench compatibility


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


def _fill(ref: dict, type_text: str, field: str, allowed: dict, n: int) -> Any:
    """A value of a τ²-bench type string, made from the reference's field list only."""
    t = type_text.strip()
    enums = {name: [m["value"] for m in e["members"]] for name, e in ref["enums"].items()}
    head, _, rest = t.partition("[")
    inner = rest[:-1]
    if head == "Optional":
        return _fill(ref, inner, field, allowed, n) if n % 2 else None
    if head in ("List", "list"):
        return [_fill(ref, inner, field, allowed, n + i) for i in range(2)]
    if head in ("Dict", "dict"):
        key_type, value_type = (s.strip() for s in inner.split(",", 1))
        keys = enums.get(key_type) or [f"{field}_{n}_{i}" for i in range(2)]
        return {k: _fill(ref, value_type, field, allowed, n + i) for i, k in enumerate(keys)}
    if t in enums:
        return enums[t][n % len(enums[t])]
    if t in ref["models"]:
        model = ref["models"][t]
        return {name: _fill(ref, ftype, name, model.get("allowed_values", {}), n)
                for name, ftype in model["fields"].items()}
    return {"str": f"{field}-{n}", "float": 10.5 + n, "int": n, "bool": n % 2 == 0,
            "datetime.date": f"2025-01-{n + 1:02d}",
            "datetime.datetime": f"2025-01-{n + 1:02d}T09:30:00"}[t]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for this ASCII data
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()
                           if x is not None) + "}"


def _to_toml(data: dict) -> str:
    """τ²-bench's file layout: arrays of tables / tables at the top, nulls left out (TOML has
    no null). Only what the fixtures need; `tomllib` reading it back is the check."""
    out = []
    for key, value in data.items():
        rows = value if isinstance(value, list) else [value]
        for row in rows:
            out.append(f"[[{key}]]" if isinstance(value, list) else f"[{key}]")
            out += [f"{json.dumps(k)} = {_toml_value(x)}" for k, x in row.items() if x is not None]
            out.append("")
    return "\n".join(out)


def _tau2_world(ref: dict) -> tuple[dict, dict]:
    """Both databases filled from the reference's field list, then linked so tools apply."""
    agent, users = ref["db"], ref["user_db"]
    for part in (agent, users):
        part["enums"] = {**ref["db"]["enums"], **ref["user_db"]["enums"]}
    world = {name: [_fill(agent, ftype[5:-1], name, {}, i) for i in range(3)]
             for name, ftype in agent["models"][agent["root"]]["fields"].items()}
    for i, (customer, line, bill) in enumerate(zip(world["customers"], world["lines"], world["bills"])):
        customer.update(customer_id=f"C{i}", line_ids=[f"L{i}"], bill_ids=[f"B{i}"])
        line.update(line_id=f"L{i}", plan_id=world["plans"][i]["plan_id"], status="Active",
                    phone_number=f"555-000-000{i}", roaming_enabled=False)
        bill.update(bill_id=f"B{i}", customer_id=f"C{i}", status="Overdue")
    phone_db = _fill(users, users["root"], "root", {}, 1)
    phone_db["surroundings"].update(phone_number="555-000-0000", payment_request=None,
                                    line_active=True, is_abroad=True)
    return world, phone_db


def test_tau2_toml_files_load_and_replay(domain, tmp_path):
    """Databases filled only from τ²-bench's field list, written as τ²-bench writes them
    (TOML, nulls left out), load through `Environment.from_files`, validate, and replay a
    τ²-bench-style task's actions."""
    import tomllib

    world, phone_db = _tau2_world(_reference())
    (tmp_path / "db.toml").write_text(_to_toml(world))
    (tmp_path / "user_db.toml").write_text(_to_toml(phone_db))
    assert tomllib.loads((tmp_path / "db.toml").read_text())["lines"][0]["line_id"] == "L0"
    env = Environment.from_files(domain, tmp_path / "db.toml", tmp_path / "user_db.toml")
    assert domain.schema.validate(env.db.to_json(), ModelT("TelecomDB")) == []
    assert domain.user_schema.validate(env.user_db.to_json(), ModelT("TelecomUserDB")) == []
    actions = [
        {"name": "get_customer_by_phone", "arguments": {"phone_number": "555-000-0000"}},
        {"name": "get_details_by_id", "arguments": {"id": "L0"}},
        {"name": "get_bills_for_customer", "arguments": {"customer_id": "C0"}},
        {"name": "enable_roaming", "arguments": {"customer_id": "C0", "line_id": "L0"}},
        {"name": "send_payment_request", "arguments": {"customer_id": "C0", "bill_id": "B0"}},
        {"name": "check_payment_request", "arguments": {}, "side": "user"},
        {"name": "make_payment", "arguments": {}, "side": "user"},
        {"name": "refuel_data", "arguments": {"customer_id": "C0", "line_id": "L0", "gb_amount": 2.0}},
        {"name": "toggle_roaming", "arguments": {}, "side": "user"},
    ]
    results = env.replay(actions)
    assert all(r.ok for r in results), [r.content for r in results if not r.ok]
    assert rec(env, "bills", "bill_id", "B0")["status"] == "Paid"
    assert phone(env)["surroundings"]["roaming_allowed"] is True
