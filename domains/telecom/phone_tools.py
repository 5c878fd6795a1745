"""User-side tools of the telecom domain: what the customer does on their own phone, worded
exactly as τ²-bench's phone answers (the phone's environment actions are in
`phone_actions.py`).

Tools act on `ctx.user_db` (`device`, `surroundings`) through `phone.py`. Most answers end with
the status bar. A setting that affects the network makes the phone search again; facts the
carrier owns reach the phone through `tools.sync`.
"""

from __future__ import annotations

from typing import Any

from runtime.env.errors import ToolError
from runtime.env.impls import load_sibling


phone = load_sibling(__file__, "phone")


def _parts(ctx: Any) -> tuple[Any, Any]:
    return ctx.user_db["device"], ctx.user_db["surroundings"]


def _search(ctx: Any) -> None:
    phone.network_search(*_parts(ctx))


def _with_bar(ctx: Any, text: str) -> str:
    return f"{text}\nStatus Bar: {phone.status_bar(ctx.user_db['device'])}"


def _on(flag: Any) -> str:
    return "ON" if flag else "OFF"


def _yes(flag: Any) -> str:
    return "Yes" if flag else "No"


def assert_outcome(condition: bool) -> None:
    """τ²-bench's tools `assert` their outcome: a failure is an AssertionError (empty text)
    after the changes were made, and the changes stay."""
    if not condition:
        raise ToolError("", keep_changes=True)


# ------------------------------------------------------------------------------ status checks
def check_status_bar(ctx: Any) -> str:
    return f"Status Bar: {phone.status_bar(ctx.user_db['device'])}"


def check_network_status(ctx: Any) -> str:
    device, _ = _parts(ctx)
    lines = [
        f"Airplane Mode: {_on(device['airplane_mode'])}",
        f"SIM Card Status: {phone.sim_status(device)}",
        f"Cellular Connection: {device['network_connection_status']}",
        f"Cellular Signal: {device['network_signal_strength']}",
        f"Cellular Network Type: {device['network_technology_connected']}",
        f"Mobile Data Enabled: {_yes(device['data_enabled'])}",
        f"Data Roaming Enabled: {_yes(device['roaming_enabled'])}",
        f"Wi-Fi Radio: {_on(device['wifi_enabled'])}",
        f"Wi-Fi Connected: {_yes(device['wifi_connected'])}",
    ]
    if device["wifi_connected"]:
        lines.append(f"Connected Wi-Fi Network: {device.get('wifi_ssid')}")
    return "\n".join(lines)


def check_network_mode_preference(ctx: Any) -> str:
    return f"Network Mode Preference: {ctx.user_db['device']['network_mode_preference']}"


def run_speed_test(ctx: Any) -> str:
    speed, label = phone.speed_test(*_parts(ctx))
    if speed is None:
        return f"Speed test failed: {label or 'Could not determine speed'}."
    return f"Speed Test Result: {speed:.2f} Mbps ({label}). {phone.SPEED_ADVICE.get(label, '')}"


def check_sim_status(ctx: Any) -> str:
    status = phone.sim_status(ctx.user_db["device"])
    return {
        "active": "Your SIM card is active and working.",
        "missing": "No SIM card detected in the phone.",
        "locked_pin": "The SIM card is locked with a PIN code.",
        "locked_puk": "The SIM card is locked with a PUK code.",
    }.get(status, f"Unknown SIM status: {status}")


def check_data_restriction_status(ctx: Any) -> str:
    if ctx.user_db["device"]["data_saver_mode"]:
        return "Data Saver mode is ON (limits data usage)."
    return "Data Saver mode is OFF."


def check_apn_settings(ctx: Any) -> str:
    apn = ctx.user_db["device"]["active_apn_settings"]
    return (f"Current APN Name: {apn['apn_name'] or 'Not Set'}\n"
            f"MMSC URL (for picture messages): {apn.get('mmsc_url') or 'Not Set'}\n"
            "(These are technical settings, usually best left unchanged.)")


def check_wifi_status(ctx: Any) -> str:
    device, _ = _parts(ctx)
    if not device["wifi_enabled"]:
        return "Wi-Fi is turned OFF."
    if device["wifi_connected"]:
        return (f"Wi-Fi is ON and connected to '{device.get('wifi_ssid')}'. "
                f"Signal strength: {device['wifi_signal_strength']}.")
    return "Wi-Fi is ON but not connected to any network."


def check_wifi_calling_status(ctx: Any) -> str:
    return f"Wi-Fi Calling is currently turned {_on(ctx.user_db['device']['wifi_calling_enabled'])}."


def _vpn_repr(details: Any) -> str:
    """The VPN details as τ²-bench prints them: the repr of a pydantic dump, whose
    performance level is still an enum member."""
    level = details.get("server_performance", "unknown")
    return (f"{{'server_address': {details.get('server_address')!r}, "
            f"'protocol': {details.get('protocol')!r}, "
            f"'server_performance': <PerformanceLevel.{str(level).upper()}: {level!r}>}}")


def check_vpn_status(ctx: Any) -> str:
    device, _ = _parts(ctx)
    if device["vpn_connected"]:
        details = device.get("vpn_details")
        if details:
            return f"VPN is ON and connected. Details: {_vpn_repr(details)}"
        return "VPN is ON and connected (no specific details available)."
    if device["vpn_enabled_setting"]:
        return "VPN is turned ON in settings, but currently not connected."
    return "VPN is turned OFF."


def check_installed_apps(ctx: Any) -> str:
    return ("The following apps are installed on the phone: "
            + ", ".join(ctx.user_db["device"]["app_statuses"]))


def _granted(app: Any) -> list[str]:
    return [name.replace("_", " ").lower() for name, allowed in app["permissions"].items() if allowed]


def check_app_status(ctx: Any, app_name: str) -> str:
    app = ctx.user_db["device"]["app_statuses"].get(app_name)
    if not app:
        return f"App '{app_name}' not found on this phone."
    lines = [f"Status for App: {app_name}"]
    granted = _granted(app)
    if not granted:
        lines.append(" - Permissions: None granted.")
    else:
        lines.append(" - Permissions Granted:")
        lines += [f"   - {p}" for p in granted]
    return "\n".join(lines)


def check_app_permissions(ctx: Any, app_name: str) -> str:
    app = ctx.user_db["device"]["app_statuses"].get(app_name)
    if not app:
        return f"App '{app_name}' not found on this phone."
    granted = _granted(app)
    if not granted:
        return f"App '{app_name}' currently has no permissions granted."
    return f"App '{app_name}' has permission for: {', '.join(granted)}."


def can_send_mms(ctx: Any) -> str:
    if phone.can_send_mms(*_parts(ctx)):
        return "Your messaging app can send MMS messages."
    return "Your messaging app cannot send MMS messages."


def check_payment_request(ctx: Any) -> str:
    request = ctx.user_db["surroundings"].get("payment_request")
    if request is None:
        return "No payment request has been made."
    return f"You have a payment request for bill {request['bill_id']} of {float(request['amount_due'])} USD."


# ------------------------------------------------------------------------------ phone actions
def toggle_airplane_mode(ctx: Any) -> str:
    return _with_bar(ctx, f"Airplane Mode is now {_on(phone.flip_airplane_mode(*_parts(ctx)))}.")


def toggle_data(ctx: Any) -> str:
    return _with_bar(ctx, f"Mobile Data is now {_on(phone.flip(*_parts(ctx), 'data_enabled', True))}.")


def toggle_roaming(ctx: Any) -> str:
    return _with_bar(ctx, f"Data Roaming is now {_on(phone.flip(*_parts(ctx), 'roaming_enabled', True))}.")


def toggle_data_saver_mode(ctx: Any) -> str:
    return _with_bar(ctx, f"Data Saver Mode is now {_on(phone.flip(*_parts(ctx), 'data_saver_mode', False))}.")


def toggle_wifi_calling(ctx: Any) -> str:
    return _with_bar(ctx, f"Wi-Fi Calling is now {_on(phone.flip(*_parts(ctx), 'wifi_calling_enabled', False))}.")


def toggle_wifi(ctx: Any) -> str:
    device, _ = _parts(ctx)
    if device["airplane_mode"]:
        return _with_bar(ctx, "Cannot change Wi-Fi settings while Airplane Mode is ON.")
    on = not device["wifi_enabled"]
    device["wifi_enabled"] = on
    if not on:
        device["wifi_connected"] = False
        device["wifi_ssid"] = None
        device["wifi_signal_strength"] = "none"
    return _with_bar(ctx, f"Wi-Fi is now {_on(on)}.")


def set_network_mode_preference(ctx: Any, mode: str) -> str:
    if mode not in phone.NETWORK_MODES:
        return _with_bar(ctx, f"Failed to set network mode: '{mode}' is not a valid option. "
                              f"Please use one of: {', '.join(phone.NETWORK_MODES)}")
    ctx.user_db["device"]["network_mode_preference"] = mode
    _search(ctx)
    return _with_bar(ctx, f"Preferred Network Mode set to: {mode}")


def reseat_sim_card(ctx: Any) -> str:
    device, _ = _parts(ctx)
    device["sim_card_missing"] = False
    _search(ctx)
    assert_outcome(phone.sim_status(device) != "missing")
    return _with_bar(ctx, "SIM card re-seated successfully.")


def set_apn_settings(ctx: Any, apn_settings: dict[str, Any]) -> str:
    settings = phone.default_apn() | dict(apn_settings)
    ctx.user_db["device"]["active_apn_settings"] = settings
    _search(ctx)
    return _with_bar(ctx, f"APN settings set to: {settings['apn_name']}")


def reset_apn_settings(ctx: Any) -> str:
    ctx.user_db["device"]["active_apn_settings"]["reset_at_reboot"] = True
    _search(ctx)
    return _with_bar(ctx, "APN settings will reset at reboot.")


def reboot_device(ctx: Any) -> str:
    device, _ = _parts(ctx)
    lines = []
    if device["active_apn_settings"]["reset_at_reboot"]:
        lines.append("Resetting APN settings...")
        device["active_apn_settings"] = phone.default_apn()
    lines.append("Restarting network services...")
    device["network_connection_status"] = "searching"
    _search(ctx)
    return _with_bar(ctx, "\n".join(lines))


def connect_vpn(ctx: Any) -> str:
    device, _ = _parts(ctx)
    if device["vpn_connected"]:
        return "VPN already connected."
    device["vpn_connected"] = True
    device["vpn_details"] = dict(phone.DEFAULT_VPN)
    return _with_bar(ctx, "VPN connected successfully.")


def disconnect_vpn(ctx: Any) -> str:
    dropped = phone.drop_vpn(ctx.user_db["device"])
    return _with_bar(ctx, "VPN disconnected successfully." if dropped
                     else "No active VPN connection to disconnect.")


def grant_app_permission(ctx: Any, app_name: str, permission: str) -> str:
    permission = permission.lower()
    app = ctx.user_db["device"]["app_statuses"].get(app_name)
    if not app:
        text = f"Error. App '{app_name}' not found. Cannot grant permission."
    elif permission not in app["permissions"]:
        text = (f"Error. Permission '{permission}' not tracked for app '{app_name}', "
                f"available permissions: {list(app['permissions'])}")
    else:
        app["permissions"][permission] = True
        text = f"Success. Permission '{permission}' granted to app '{app_name}'."
    return _with_bar(ctx, text)


def make_payment(ctx: Any) -> str:
    """Pay the pending request; `tools.sync` then marks the bill paid in the carrier's records."""
    request = ctx.user_db["surroundings"].get("payment_request")
    if request is None:
        return "You do not have a payment request."
    request["paid"] = True
    return f"Payment of {float(request['amount_due'])} USD has been made for bill {request['bill_id']}."
