"""The phone's environment actions: τ²-bench's task set-up (`set_user_info`, `turn_data_off`,
`break_apn_settings`, `break_vpn`, ...) and its env assertions (`assert_mobile_data_status`,
`assert_can_send_mms`, ...). The environment runs them (`env.act`); no model is offered them.
Each does what τ²-bench's function does, side effects of its toggles included.
"""

from __future__ import annotations

from typing import Any

from runtime.env.errors import ToolError
from runtime.env.impls import load_sibling


phone = load_sibling(__file__, "phone")
phone_tools = load_sibling(__file__, "phone_tools")
assert_outcome = phone_tools.assert_outcome


def _parts(ctx: Any) -> tuple[Any, Any]:
    return ctx.user_db["device"], ctx.user_db["surroundings"]


def _on(flag: Any) -> str:
    return "ON" if flag else "OFF"


# ------------------------------------------------------------------------------ set-up
def set_user_info(ctx: Any, name: str, phone_number: str) -> None:
    surroundings = ctx.user_db["surroundings"]
    surroundings["name"] = name
    surroundings["phone_number"] = phone_number


def set_user_location(ctx: Any, abroad: bool) -> None:
    ctx.user_db["surroundings"]["is_abroad"] = abroad


def simulate_network_search(ctx: Any) -> None:
    phone.network_search(*_parts(ctx))


def _turn(ctx: Any, key: str, on: bool, search: bool) -> None:
    """τ²-bench's `turn_X_on/off`: toggle, and toggle back when that gave the wrong state
    (each toggle with its side effects)."""
    if key == "airplane_mode":
        if phone.flip_airplane_mode(*_parts(ctx)) != on:
            phone.flip_airplane_mode(*_parts(ctx))
    elif phone.flip(*_parts(ctx), key, search) != on:
        phone.flip(*_parts(ctx), key, search)


def turn_airplane_mode_on(ctx: Any) -> str:
    _turn(ctx, "airplane_mode", True, True)
    return "Airplane Mode is now ON."


def turn_airplane_mode_off(ctx: Any) -> str:
    _turn(ctx, "airplane_mode", False, True)
    return "Airplane Mode is now OFF."


def unseat_sim_card(ctx: Any) -> str:
    device, _ = _parts(ctx)
    device["sim_card_missing"] = True
    phone.network_search(*_parts(ctx))
    return "SIM card un-seated successfully."


def lock_sim_card(ctx: Any, mode: str) -> str:
    """'pin' or 'puk'; no tool of the phone can undo it."""
    device, _ = _parts(ctx)
    if mode in ("pin", "puk"):
        device["sim_card_status"] = f"locked_{mode}"
    phone.network_search(*_parts(ctx))
    if mode in ("pin", "puk"):
        assert_outcome(device["sim_card_status"] == f"locked_{mode}")
    return f"SIM card locked successfully in {mode} mode."


def turn_data_on(ctx: Any) -> str:
    ctx.user_db["device"]["data_enabled"] = True  # no network search, as in τ²-bench
    return "Data connection restored."


def turn_data_off(ctx: Any) -> str:
    _turn(ctx, "data_enabled", False, True)
    return "Data connection broken."


def turn_roaming_on(ctx: Any) -> str:
    _turn(ctx, "roaming_enabled", True, True)
    return "Data Roaming is now ON."


def turn_roaming_off(ctx: Any) -> str:
    _turn(ctx, "roaming_enabled", False, True)
    return "Data Roaming is now OFF."


def turn_data_saver_mode_on(ctx: Any) -> str:
    _turn(ctx, "data_saver_mode", True, False)
    return "Data Saver Mode is now ON."


def turn_data_saver_mode_off(ctx: Any) -> str:
    _turn(ctx, "data_saver_mode", False, False)
    return "Data Saver Mode is now OFF."


def break_apn_settings(ctx: Any) -> str:
    device, _ = _parts(ctx)
    device["active_apn_settings"]["apn_name"] = "broken"
    phone.network_search(*_parts(ctx))
    assert_outcome(device["network_connection_status"] == "no_service")
    return "APN settings broken. Please call reset_apn_settings() to fix."


def break_apn_mms_setting(ctx: Any) -> str:
    ctx.user_db["device"]["active_apn_settings"]["mmsc_url"] = None
    assert_outcome(not phone.can_send_mms(*_parts(ctx)))
    return "APN MMS setting broken. Please call reset_apn_settings() to fix."


def set_wifi_calling(ctx: Any, enabled: bool, mms_over_wifi: bool | None = None) -> str:
    device, _ = _parts(ctx)
    if device["wifi_calling_enabled"] != enabled:
        device["wifi_calling_enabled"] = not device["wifi_calling_enabled"]
    text = f"Wi-Fi Calling is now {_on(enabled)}."
    if mms_over_wifi is not None:
        device["wifi_calling_mms_over_wifi"] = mms_over_wifi
        text += f"\nMMS over Wi-Fi is now {_on(mms_over_wifi)}."
    return text


def break_vpn(ctx: Any) -> str:
    """Connect the VPN (if it is not already) and make its server perform poorly: slow data."""
    device, _ = _parts(ctx)
    phone_tools.connect_vpn(ctx)
    if device.get("vpn_details") is None:  # τ²-bench: AttributeError on None
        raise ToolError("'NoneType' object has no attribute 'server_performance'", keep_changes=True)
    device["vpn_details"]["server_performance"] = "poor"
    return "VPN connection broken."


def remove_app_permission(ctx: Any, app_name: str, permission: str) -> str:
    permission = permission.lower()
    app = ctx.user_db["device"]["app_statuses"].get(app_name)
    if not app:
        return f"App '{app_name}' not found. Cannot remove permission."
    if permission not in app["permissions"]:
        return f"Permission '{permission}' not tracked for app '{app_name}'."
    app["permissions"][permission] = False
    return f"Permission '{permission}' removed from app '{app_name}'."


# ------------------------------------------------------------------------------ assertions
def assert_airplane_mode_status(ctx: Any, expected_status: bool) -> bool:
    return ctx.user_db["device"]["airplane_mode"] == expected_status


NETWORK_STATUSES = ("connected", "searching", "no_service", "emergency_only")


def assert_service_status(ctx: Any, expected_status: str) -> bool:
    if expected_status not in NETWORK_STATUSES:
        raise ToolError(f"{expected_status!r} is not a valid NetworkStatus")
    return ctx.user_db["device"]["network_connection_status"] == expected_status


def assert_mobile_data_status(ctx: Any, expected_status: bool) -> bool:
    return phone.mobile_data_working(*_parts(ctx)) == expected_status


def assert_mobile_roaming_status(ctx: Any, expected_status: bool) -> bool:
    return ctx.user_db["device"]["roaming_enabled"] == expected_status


def assert_mobile_data_saver_mode_status(ctx: Any, expected_status: bool) -> bool:
    return ctx.user_db["device"]["data_saver_mode"] == expected_status


def assert_internet_speed(ctx: Any, expected_speed: float, expected_desc: str | None = None) -> bool:
    speed, label = phone.speed_test(*_parts(ctx))
    speed = speed or 0.0
    if expected_desc is None:
        return speed >= expected_speed
    return speed >= expected_speed and label.lower() == expected_desc.lower()


def assert_internet_not_excellent(ctx: Any) -> bool:
    return phone.speed_test(*_parts(ctx))[1].lower() != "excellent"


def assert_can_send_mms(ctx: Any, expected_status: bool) -> bool:
    return phone.can_send_mms(*_parts(ctx)) == expected_status


def assert_mobile_data_usage_exceeded(ctx: Any, expected_status: bool) -> bool:
    return ctx.user_db["surroundings"]["mobile_data_usage_exceeded"] == expected_status
