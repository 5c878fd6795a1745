"""Phone troubleshooting for the telecom task recipes (scenarios.py): which stage of a phone
fails (service, mobile data, speed, MMS), and one fix at a time for each, planned on a private
copy of the world with the domain's own tool implementations (`Phone`), so that each planned
step is exactly what the tools will do there."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

from runtime.env.errors import ToolError
from runtime.env.impls import load_sibling
from runtime.workers.offline.intents import gold_call

phone = load_sibling(__file__, "phone")
phone_tools = load_sibling(__file__, "phone_tools")
tools = load_sibling(__file__, "tools")

SYMPTOMS = {"service": "no service", "data": "no mobile data", "slow": "slow mobile data",
            "mms": "picture messages fail"}
# What the customer checks at the end to see that the problem is gone.
CHECK_AFTER = {"service": "check_status_bar", "data": "run_speed_test", "slow": "run_speed_test",
               "mms": "can_send_mms"}


def stage_ok(stage: str, device: Any, sur: Any) -> bool:
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


def failing_stage(device: Any, sur: Any) -> str | None:
    """The first of service, data, speed, MMS that does not work."""
    return next((s for s in ("service", "data", "slow", "mms") if not stage_ok(s, device, sur)), None)


def reportable(device: Any, sur: Any) -> list[str]:
    """The stages a customer may complain about: the first failing one, or a later one it
    breaks too (no service: no data, no MMS); "slow" only while data works."""
    first = failing_stage(device, sur)
    if first is None:
        return []
    later = [s for s in ("data", "mms") if s != first and ("service", "data", "slow", "mms").index(s)
             > ("service", "data", "slow", "mms").index(first) and not stage_ok(s, device, sur)]
    return [first] + later


class Phone:
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


def fix_service(p: Phone, customer: Any, line: Any) -> bool:
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


def _lift_suspension(p: Phone, customer: Any, line: Any) -> bool:
    """Pay what is overdue on the phone, resume the line, restart the phone; a line whose
    contract ended (or that is not merely suspended) goes to a human."""
    cid, lid = customer["customer_id"], line["line_id"]
    p.do("get_details_by_id", "agent", id=lid)
    record = tools.find(p.ctx.db["lines"], "line_id", lid)
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


def fix_data(p: Phone, customer: Any, line: Any) -> bool:
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
        record = tools.find(p.ctx.db["lines"], "line_id", lid)
        plan = tools.find(p.ctx.db["plans"], "plan_id", record["plan_id"])
        missing = record["data_used_gb"] - plan["data_limit_gb"] - record["data_refueling_gb"]
        if missing >= 2.0:  # more than a refuel may add: a plan change, not ours
            return False
        p.do("refuel_data", "agent", customer_id=cid, line_id=lid, gb_amount=2.0)
    else:
        return False
    return True


def fix_speed(p: Phone) -> bool:
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


def fix_mms(p: Phone) -> bool:
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
