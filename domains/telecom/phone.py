"""The customer's phone as τ²-bench simulates it (dual control).

The user database holds the phone's settings (`device`) and the world around it
(`surroundings`). The phone's network fields (`network_connection_status`,
`network_technology_connected`, `network_signal_strength`) change only when the phone searches
for a network (`network_search`): toggling data, roaming, airplane mode or the network mode,
reseating the SIM, resetting or setting the APN, rebooting. Facts the carrier owns (line
active, roaming allowed, data allowance used up, payment requests) reach `surroundings`
through `tools.sync`, which does *not* search, so a resumed line shows service only after
the next search (a reboot, for instance), exactly as in τ²-bench.

Everything here works on plain dicts and on the runtime's copy-on-write views alike (item
access and `.get`). Values are τ²-bench's enum values as strings.
"""

from __future__ import annotations

from typing import Any, MutableMapping

Obj = MutableMapping[str, Any]

NETWORK_MODES: tuple[str, ...] = ("4g_5g_preferred", "4g_only", "3g_only", "2g_only")
PERMISSIONS: tuple[str, ...] = ("sms", "storage", "phone", "network")
# The technology each network mode connects on (4g_5g_preferred: 5G, or 4G without 5G signal).
MODE_TECHNOLOGY = {"4g_only": "4G", "3g_only": "3G", "2g_only": "2G"}

# Download speed range (Mbps) of each technology and the share of it each signal gives.
TECH_SPEED: dict[str, tuple[float, float]] = {
    "2G": (0.1, 0.4), "3G": (1.0, 5.0), "4G": (10.0, 100.0), "5G": (50.0, 500.0),
    "none": (0.0, 0.0),
}
SIGNAL_FACTOR: dict[str, float] = {"poor": 0.2, "fair": 0.5, "good": 0.8, "excellent": 1.0, "none": 0.0}
SPEED_ADVICE: dict[str, str] = {
    "Very Poor": "Connection is very slow. Basic web browsing might be difficult.",
    "Poor": "Connection is slow. Web browsing may be sluggish, streaming difficult.",
    "Fair": "Connection is okay for web browsing and some standard definition streaming.",
    "Good": "Connection is good for most activities, including HD streaming.",
    "Excellent": "Connection is very fast.",
}
SIGNAL_ICONS: dict[str, str] = {
    "none": "📵 No Signal", "poor": "📶¹ Poor", "fair": "📶² Fair", "good": "📶³ Good",
    "excellent": "📶⁴ Excellent",
}
# The VPN profile `connect_vpn` connects to.
DEFAULT_VPN: dict[str, Any] = {"server_address": "192.168.1.1", "protocol": "OpenVPN",
                               "server_performance": "excellent"}


def default_apn() -> dict[str, Any]:
    """The carrier's standard APN profile (what a reboot after a reset restores)."""
    return {"apn_name": "internet", "reset_at_reboot": False, "mms_apn": "mms",
            "mmsc_url": "http://mms.carrier.com/mms/wapenc", "mms_proxy": None, "mms_port": None}


def default_apps() -> dict[str, Any]:
    """Apps every phone ships with, with the permissions they hold."""
    return {
        "messaging": {"app_name": "messaging",
                      "permissions": {"sms": True, "storage": True, "phone": True, "network": False}},
        "browser": {"app_name": "browser",
                    "permissions": {"sms": False, "storage": True, "phone": False, "network": True}},
    }


def default_signal() -> dict[str, str]:
    return {"2G": "poor", "3G": "fair", "4G": "good", "5G": "excellent"}


def default_device() -> dict[str, Any]:
    """A phone with factory settings (τ²-bench's `MockPhoneAttributes()`)."""
    return {
        "sim_card_status": "active", "sim_card_missing": False, "airplane_mode": False,
        "network_signal_strength": "good", "network_technology_connected": "5G",
        "network_connection_status": "connected", "battery_level": 80, "data_enabled": True,
        "roaming_enabled": False, "network_mode_preference": "4g_5g_preferred",
        "active_apn_settings": default_apn(), "wifi_enabled": False, "wifi_connected": False,
        "wifi_ssid": None, "wifi_signal_strength": "none", "wifi_calling_enabled": False,
        "wifi_calling_mms_over_wifi": False, "data_saver_mode": False,
        "vpn_enabled_setting": False, "vpn_connected": False, "vpn_details": None,
        "app_statuses": default_apps(),
    }


def default_surroundings() -> dict[str, Any]:
    return {"name": None, "phone_number": None, "is_abroad": False, "roaming_allowed": False,
            "signal_strength": default_signal(), "mobile_data_usage_exceeded": False,
            "line_active": True, "payment_request": None}


# ------------------------------------------------------------------------------ the network
def sim_status(device: Obj) -> str:
    return "missing" if device["sim_card_missing"] else device["sim_card_status"]


def _no_service(device: Obj) -> None:
    device["network_connection_status"] = "no_service"
    device["network_technology_connected"] = "none"
    device["network_signal_strength"] = "none"


def network_search(device: Obj, surroundings: Obj) -> None:
    """Search for a network: set the phone's network fields from its settings and
    surroundings (τ²-bench's `simulate_network_search`)."""
    signal = surroundings["signal_strength"]
    if sim_status(device) == "active":
        device["network_connection_status"] = "connected"
        mode = device["network_mode_preference"]
        if mode == "4g_5g_preferred":
            tech = "4G" if signal.get("5G", "none") == "none" else "5G"
        else:
            tech = MODE_TECHNOLOGY.get(mode, "4G")
        device["network_technology_connected"] = tech
        device["network_signal_strength"] = signal.get(tech, "none")
    else:  # missing or PIN/PUK-locked
        _no_service(device)
    if (device["airplane_mode"] or device["active_apn_settings"]["apn_name"] == "broken"
            or not surroundings["line_active"]):
        _no_service(device)


def flip_airplane_mode(device: Obj, surroundings: Obj) -> bool:
    """Airplane mode on or off, then a network search; the new state. Turning it on drops
    Wi-Fi and the VPN; turning it off goes through "searching" and drops Wi-Fi too (it
    reconnects only when switched on again)."""
    was_on = bool(device["airplane_mode"])
    device["airplane_mode"] = not was_on
    if was_on:
        device["network_connection_status"] = "searching"
    if not was_on or device["wifi_enabled"]:
        device["wifi_connected"] = False
        device["wifi_ssid"] = None
        device["wifi_signal_strength"] = "none"
    if not was_on:
        drop_vpn(device)
    network_search(device, surroundings)
    return not was_on


def flip(device: Obj, surroundings: Obj, key: str, search: bool) -> bool:
    """Flip a switch of the phone (then search, for the switches that make it search); the
    new state."""
    device[key] = not device[key]
    if search:
        network_search(device, surroundings)
    return bool(device[key])


def drop_vpn(device: Obj) -> bool:
    """Disconnect the VPN; False when none was connected."""
    if not device["vpn_connected"]:
        return False
    device["vpn_connected"] = False
    device["vpn_details"] = None
    return True


def mobile_data_working(device: Obj, surroundings: Obj) -> bool:
    if device["airplane_mode"] or device["network_signal_strength"] == "none":
        return False
    if device["network_connection_status"] == "no_service":
        return False
    if surroundings["is_abroad"] and not (device["roaming_enabled"] and surroundings["roaming_allowed"]):
        return False
    return bool(device["data_enabled"]) and not surroundings["mobile_data_usage_exceeded"]


def speed_test(device: Obj, surroundings: Obj) -> tuple[float | None, str]:
    """(download Mbps, description), or (None, 'No Connection') without mobile data."""
    if not mobile_data_working(device, surroundings):
        return None, "No Connection"
    vpn = device.get("vpn_details")
    factor = 0.1 if device["vpn_connected"] and vpn and vpn.get("server_performance") == "poor" else 1.0
    if device["data_saver_mode"]:
        factor *= 0.2
    low, high = TECH_SPEED.get(device["network_technology_connected"], (0.0, 0.0))
    speed = round((low + high) / 2.0 * SIGNAL_FACTOR.get(device["network_signal_strength"], 0.0) * factor, 2)
    for limit, label in ((1, "Very Poor"), (5, "Poor"), (25, "Fair"), (100, "Good")):
        if speed < limit:
            return speed, label
    return speed, "Excellent"


def can_send_mms(device: Obj, surroundings: Obj) -> bool:
    """MMS needs working mobile data on 3G or better, no Wi-Fi calling MMS (the carrier does
    not support it), an MMSC URL, and the messaging app's sms and storage permissions."""
    if not mobile_data_working(device, surroundings):
        return False
    if device["network_technology_connected"] == "2G":
        return False
    if device["wifi_calling_enabled"] and device["wifi_calling_mms_over_wifi"]:
        return False
    if device["active_apn_settings"].get("mmsc_url") is None:
        return False
    messaging = device["app_statuses"].get("messaging")
    if messaging is None:
        return False
    return bool(messaging["permissions"]["storage"] and messaging["permissions"]["sms"])


def status_bar(device: Obj) -> str:
    """The icons of the phone's status bar, as one line."""
    icons = []
    if device["airplane_mode"]:
        icons.append("✈️ Airplane Mode")
    else:
        icons.append(SIGNAL_ICONS.get(device["network_signal_strength"], "📵 No Signal"))
        tech = device["network_technology_connected"]
        if tech != "none":
            icons.append(tech)
        if device["data_enabled"] and tech != "none":
            icons.append("📱 Data Enabled")
            if device["data_saver_mode"]:
                icons.append("🔽 Data Saver")
        else:
            icons.append("📵 Data Disabled")
    if device["wifi_enabled"] and device["wifi_connected"]:
        ssid = device.get("wifi_ssid")
        icons.append(f"📡 Connected to {ssid}" if ssid else "📡 Enabled")
    if device["vpn_connected"]:
        icons.append("🔒 VPN Connected")
    icons.append(f"🔋 {device['battery_level']}%")
    return " | ".join(icons)
