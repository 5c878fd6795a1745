"""User-side tools of the telecom domain: what the customer does on their own phone.

They act on `ctx.user_db` (`device`: the phone's settings; `surroundings`: where the phone is
and what the carrier allows) and return what the customer would see, as text. Each tool that
changes a setting recomputes the phone's derived network fields at once (`phone.refresh_phone`)
so its answer already reflects the change; facts owned by the carrier (line active, roaming
service, data allowance, payment requests) reach the phone through `tools.sync`.

Simplification: airplane mode switches off the cellular radio only; Wi-Fi keeps its own switch.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.env.errors import ToolError


def _load_sibling(stem: str) -> ModuleType:
    """Load a helper module next to this file by path, under a domain-unique name."""
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

BARS = {"none": 0, "poor": 1, "fair": 2, "good": 3, "excellent": 4}


def _parts(ctx: Any) -> tuple[Any, Any]:
    return ctx.user_db["device"], ctx.user_db["surroundings"]


def _refresh(ctx: Any) -> tuple[Any, Any]:
    device, surroundings = _parts(ctx)
    phone.refresh_phone(device, surroundings)
    return device, surroundings


def _on(flag: Any) -> str:
    return "ON" if flag else "OFF"


# ------------------------------------------------------------------------------ status checks
def check_status_bar(ctx: Any) -> str:
    device, surroundings = _parts(ctx)
    items = []
    if device["airplane_mode"]:
        items.append("airplane mode icon")
    status = device["network_connection_status"]
    if status == "connected":
        items.append(f"{device['network_technology_connected']} signal "
                     f"{BARS[device['network_signal_strength']]}/4 bars")
    elif status == "emergency_only":
        items.append("'Emergency calls only'")
    else:
        items.append("'No service'")
    if device["network_connection_status"] == "connected" and device["data_enabled"]:
        working = phone.mobile_data_problem(device, surroundings) is None
        items.append("mobile data icon" if working else "mobile data icon with an exclamation mark")
    if device["data_saver_mode"]:
        items.append("data saver icon")
    if device["wifi_connected"]:
        items.append(f"Wi-Fi {BARS[device['wifi_signal_strength']]}/4 bars")
    if device["vpn_connected"]:
        items.append("VPN key icon")
    items.append(f"battery {device['battery_level']}%")
    return "Status bar shows: " + ", ".join(items) + "."


def check_network_status(ctx: Any) -> str:
    device, surroundings = _parts(ctx)
    status, tech, strength, reason = phone.registration(device, surroundings)
    data_problem = phone.mobile_data_problem(device, surroundings)
    wifi = (f"connected to {device.get('wifi_ssid')}" if device["wifi_connected"]
            else _on(device["wifi_enabled"]))
    lines = [
        f"Airplane mode: {_on(device['airplane_mode'])}",
        f"Cellular: {status} ({reason})",
        f"Technology: {tech}, signal: {strength}",
        f"Mobile data switch: {_on(device['data_enabled'])}; data roaming switch: "
        f"{_on(device['roaming_enabled'])}",
        "Mobile data: working" if data_problem is None else "Mobile data: not working",
        f"Wi-Fi: {wifi}",
    ]
    return "\n".join(lines)


def check_network_mode_preference(ctx: Any) -> str:
    device, _ = _parts(ctx)
    return f"Preferred network mode: {device['network_mode_preference']}"


def set_network_mode_preference(ctx: Any, mode: str) -> str:
    if mode not in phone.ALLOWED_TECH:
        raise ToolError("mode must be one of: " + ", ".join(phone.ALLOWED_TECH))
    device, _ = _parts(ctx)
    device["network_mode_preference"] = mode
    device, _ = _refresh(ctx)
    return (f"Preferred network mode set to {mode}. Now: {device['network_connection_status']}"
            f" on {device['network_technology_connected']}.")


def run_speed_test(ctx: Any) -> str:
    device, surroundings = _parts(ctx)
    if device["wifi_connected"]:
        mbps, over = phone.wifi_speed_mbps(device), f"Wi-Fi ({device.get('wifi_ssid')})"
    else:
        mbps, over = phone.mobile_speed_mbps(device, surroundings), "mobile data"
    if mbps <= 0:
        return "Speed test failed: no internet connection."
    return f"Speed test over {over}: download {mbps:.2f} Mbps ({phone.speed_label(mbps)})."


def check_sim_status(ctx: Any) -> str:
    device, _ = _parts(ctx)
    status = device["sim_card_status"]
    text = {
        "active": "SIM card detected and active.",
        "missing": "No SIM card detected.",
        "locked_pin": "SIM card is locked: the PIN is required.",
        "locked_puk": "SIM card is locked: the PUK code is required (too many wrong PINs).",
    }[status]
    return text


def check_data_restriction_status(ctx: Any) -> str:
    device, surroundings = _parts(ctx)
    text = f"Data saver mode: {_on(device['data_saver_mode'])}."
    if surroundings["mobile_data_usage_exceeded"]:
        text += " Carrier notice: the plan's data allowance for this cycle is used up."
    return text


def check_apn_settings(ctx: Any) -> str:
    device, _ = _parts(ctx)
    apn = device["active_apn_settings"]
    return ("APN settings: " + ", ".join(f"{k}={apn.get(k)}" for k in (
        "apn_name", "mms_apn", "mmsc_url", "mms_proxy", "mms_port", "reset_at_reboot")))


def check_wifi_status(ctx: Any) -> str:
    device, _ = _parts(ctx)
    if device["wifi_connected"]:
        return (f"Wi-Fi is ON and connected to {device.get('wifi_ssid')} "
                f"(signal {device['wifi_signal_strength']}).")
    return f"Wi-Fi is {_on(device['wifi_enabled'])} and not connected."


def check_wifi_calling_status(ctx: Any) -> str:
    device, _ = _parts(ctx)
    return (f"Wi-Fi calling: {_on(device['wifi_calling_enabled'])}; MMS over Wi-Fi: "
            f"{_on(device['wifi_calling_mms_over_wifi'])}.")


def check_vpn_status(ctx: Any) -> str:
    device, _ = _parts(ctx)
    details = device.get("vpn_details")
    if not device["vpn_connected"]:
        profile = "a VPN profile is configured" if details is not None else "no VPN profile"
        return f"VPN is not connected ({profile})."
    return (f"VPN connected to {details.get('server_address')} over {details.get('protocol')} "
            f"(server performance: {details.get('server_performance', 'unknown')}).")


def check_installed_apps(ctx: Any) -> str:
    device, _ = _parts(ctx)
    return "Installed apps: " + ", ".join(sorted(device["app_statuses"]))


def _app(ctx: Any, app_name: str) -> Any:
    device, _ = _parts(ctx)
    app = device["app_statuses"].get(app_name)
    if app is None:
        raise ToolError(f"no app named {app_name!r} is installed")
    return app


def check_app_status(ctx: Any, app_name: str) -> str:
    app = _app(ctx, app_name)
    perms = app["permissions"]
    return (f"App {app_name}: installed; permissions: "
            + ", ".join(f"{p}={'granted' if perms[p] else 'denied'}" for p in phone.PERMISSIONS))


def check_app_permissions(ctx: Any, app_name: str) -> str:
    perms = _app(ctx, app_name)["permissions"]
    granted = [p for p in phone.PERMISSIONS if perms[p]]
    return f"Permissions granted to {app_name}: " + (", ".join(granted) if granted else "none")


def can_send_mms(ctx: Any) -> str:
    device, surroundings = _parts(ctx)
    problem = phone.mms_problem(device, surroundings)
    if problem is None:
        return "Yes: a picture message can be sent."
    return f"No: picture messages cannot be sent ({problem})."


def check_payment_request(ctx: Any) -> str:
    _, surroundings = _parts(ctx)
    request = surroundings.get("payment_request")
    if request is None:
        return "No payment request on the phone."
    state = "already paid" if request.get("paid") else "waiting for payment"
    return (f"Payment request for bill {request['bill_id']}: amount "
            f"{float(request['amount_due']):.2f}, {state}.")


# ------------------------------------------------------------------------------ phone actions
def _toggle(ctx: Any, key: str, label: str) -> str:
    device, _ = _parts(ctx)
    device[key] = not device[key]
    device, _ = _refresh(ctx)
    return f"{label} is now {_on(device[key])}."


def toggle_airplane_mode(ctx: Any) -> str:
    text = _toggle(ctx, "airplane_mode", "Airplane mode")
    device, _ = _parts(ctx)
    return text + f" Cellular status: {device['network_connection_status']}."


def toggle_data(ctx: Any) -> str:
    return _toggle(ctx, "data_enabled", "Mobile data")


def toggle_roaming(ctx: Any) -> str:
    return _toggle(ctx, "roaming_enabled", "Data roaming")


def toggle_data_saver_mode(ctx: Any) -> str:
    return _toggle(ctx, "data_saver_mode", "Data saver mode")


def toggle_wifi_calling(ctx: Any) -> str:
    return _toggle(ctx, "wifi_calling_enabled", "Wi-Fi calling")


def toggle_wifi(ctx: Any) -> str:
    text = _toggle(ctx, "wifi_enabled", "Wi-Fi")
    device, _ = _parts(ctx)
    if device["wifi_enabled"] and not device["wifi_connected"]:
        text += " No known network in range."
    elif device["wifi_connected"]:
        text += f" Connected to {device.get('wifi_ssid')}."
    return text


def reseat_sim_card(ctx: Any) -> str:
    device, _ = _parts(ctx)
    device["sim_card_missing"] = False
    if device["sim_card_status"] == "missing":
        device["sim_card_status"] = "active"
    device, _ = _refresh(ctx)
    return "SIM card removed and re-inserted. " + check_sim_status(ctx)


def set_apn_settings(ctx: Any, apn_settings: dict[str, Any]) -> str:
    device, _ = _parts(ctx)
    settings = phone.default_apn()
    unknown = set(apn_settings) - set(settings)
    if unknown:
        raise ToolError("unknown APN setting(s): " + ", ".join(sorted(unknown)))
    settings.update(apn_settings)
    device["active_apn_settings"] = settings
    _refresh(ctx)
    return "APN settings saved. " + check_apn_settings(ctx)


def reset_apn_settings(ctx: Any) -> str:
    device, _ = _parts(ctx)
    device["active_apn_settings"]["reset_at_reboot"] = True
    return "APN settings will be reset to the carrier defaults when the phone restarts."


def reboot_device(ctx: Any) -> str:
    """Restart: applies a pending APN reset, re-reads the SIM, reconnects an always-on VPN."""
    device, _ = _parts(ctx)
    if device["active_apn_settings"]["reset_at_reboot"]:
        device["active_apn_settings"] = phone.default_apn()
    if device["sim_card_status"] == "missing" and not device["sim_card_missing"]:
        device["sim_card_status"] = "active"
    phone.put(device, "vpn_connected",
              bool(device["vpn_enabled_setting"] and device.get("vpn_details") is not None))
    device, _ = _refresh(ctx)
    return ("Phone restarted. Cellular status: "
            f"{device['network_connection_status']} on {device['network_technology_connected']}.")


def connect_vpn(ctx: Any) -> str:
    device, _ = _parts(ctx)
    if device.get("vpn_details") is None:
        raise ToolError("no VPN profile is configured on this phone")
    if device["vpn_connected"]:
        raise ToolError("the VPN is already connected")
    device["vpn_enabled_setting"] = True
    device["vpn_connected"] = True
    return "VPN connected. " + check_vpn_status(ctx)


def disconnect_vpn(ctx: Any) -> str:
    device, _ = _parts(ctx)
    if not device["vpn_connected"]:
        raise ToolError("the VPN is not connected")
    device["vpn_enabled_setting"] = False
    device["vpn_connected"] = False
    return "VPN disconnected."


def grant_app_permission(ctx: Any, app_name: str, permission: str) -> str:
    if permission not in phone.PERMISSIONS:
        raise ToolError("permission must be one of: " + ", ".join(phone.PERMISSIONS))
    perms = _app(ctx, app_name)["permissions"]
    if perms[permission]:
        raise ToolError(f"{app_name} already has the {permission} permission")
    perms[permission] = True
    return f"Granted the {permission} permission to {app_name}."


def make_payment(ctx: Any) -> str:
    """Pay the pending request; `tools.sync` then marks the bill paid in the carrier's records."""
    _, surroundings = _parts(ctx)
    request = surroundings.get("payment_request")
    if request is None:
        raise ToolError("there is no payment request to pay")
    if request.get("paid"):
        raise ToolError("this payment request has already been paid")
    request["paid"] = True
    return f"Paid {float(request['amount_due']):.2f} for bill {request['bill_id']}."
