"""The customer's phone as a small physical model (dual control).

The user database holds the phone's settings (`device`) and the world around it
(`surroundings`). Some phone fields are *derived*: which network the phone is registered on,
with which technology and signal, and whether the SIM reads as present. `refresh_phone`
recomputes them from the settings and surroundings; it runs after every user action and, via
`tools.sync`, after every agent action, so both sides always agree.

Everything here works on plain dicts and on the runtime's copy-on-write views alike (item
access and `.get`), and assigns a field only when its value changes, so a refresh that changes
nothing leaves the state untouched. Optional fields are read with `.get`: τ²-bench's TOML
files cannot hold null, so fields that are null are simply absent there.

Connectivity rules (one place, used by the tools, the sync and the generator):
- airplane mode on                          -> no service
- SIM missing                               -> no service;  SIM PIN/PUK locked -> emergency only
- no technology allowed by the network-mode preference has signal  -> no service
- line not active in the carrier's records (suspended, closed...)  -> emergency only
- abroad while the line has no roaming service                      -> emergency only
- otherwise connected, on the best allowed technology with signal.
Mobile data additionally needs: data switched on, the phone's own roaming switch on when
abroad, a working APN, and the plan's data allowance not used up.
"""

from __future__ import annotations

from typing import Any, MutableMapping

Obj = MutableMapping[str, Any]

TECH_ORDER: tuple[str, ...] = ("5G", "4G", "3G", "2G")
ALLOWED_TECH: dict[str, tuple[str, ...]] = {
    "4g_5g_preferred": ("5G", "4G", "3G", "2G"),
    "4g_only": ("4G",),
    "3g_only": ("3G",),
    "2g_only": ("2G",),
}
PERMISSIONS: tuple[str, ...] = ("sms", "storage", "phone", "network")

# Nominal download speeds (Mbps) at excellent signal, and the share kept at each strength.
TECH_SPEED: dict[str, float] = {"2G": 0.2, "3G": 8.0, "4G": 60.0, "5G": 300.0}
WIFI_SPEED = 150.0
SIGNAL_FACTOR: dict[str, float] = {
    "none": 0.0, "poor": 0.15, "fair": 0.4, "good": 0.75, "excellent": 1.0,
}
VPN_FACTOR: dict[str, float] = {
    "unknown": 0.8, "poor": 0.08, "fair": 0.5, "good": 0.85, "excellent": 0.95,
}
DATA_SAVER_CAP_MBPS = 1.0


def default_apn() -> dict[str, Any]:
    """The carrier's standard APN profile (what a reset restores)."""
    return {
        "apn_name": "internet",
        "reset_at_reboot": False,
        "mms_apn": "mms",
        "mmsc_url": "http://mms.carrier.com/mms/wapenc",
        "mms_proxy": None,
        "mms_port": None,
    }


def default_apps() -> dict[str, Any]:
    """Apps every phone ships with, with the permissions they normally hold."""
    return {
        "messaging": {"app_name": "messaging",
                      "permissions": {"sms": True, "storage": True, "phone": True,
                                      "network": False}},
        "browser": {"app_name": "browser",
                    "permissions": {"sms": False, "storage": True, "phone": False,
                                    "network": True}},
    }


def default_signal() -> dict[str, str]:
    return {"2G": "poor", "3G": "fair", "4G": "good", "5G": "good"}


def default_device() -> dict[str, Any]:
    """A healthy phone with factory settings."""
    return {
        "sim_card_status": "active",
        "sim_card_missing": False,
        "airplane_mode": False,
        "network_signal_strength": "good",
        "network_technology_connected": "5G",
        "network_connection_status": "connected",
        "battery_level": 80,
        "data_enabled": True,
        "roaming_enabled": False,
        "network_mode_preference": "4g_5g_preferred",
        "active_apn_settings": default_apn(),
        "wifi_enabled": False,
        "wifi_connected": False,
        "wifi_ssid": None,
        "wifi_signal_strength": "none",
        "wifi_calling_enabled": False,
        "wifi_calling_mms_over_wifi": False,
        "data_saver_mode": False,
        "vpn_enabled_setting": False,
        "vpn_connected": False,
        "vpn_details": None,
        "app_statuses": default_apps(),
    }


def default_surroundings() -> dict[str, Any]:
    return {
        "name": None,
        "phone_number": None,
        "is_abroad": False,
        "roaming_allowed": False,
        "signal_strength": default_signal(),
        "mobile_data_usage_exceeded": False,
        "line_active": True,
        "payment_request": None,
    }


def put(obj: Obj, key: str, value: Any) -> None:
    """Assign only on change: keeps no-op refreshes from touching the state."""
    if obj.get(key) != value:
        obj[key] = value


# ------------------------------------------------------------------------------ derivation
def best_technology(device: Obj, surroundings: Obj) -> tuple[str, str]:
    """(technology, signal) of the best network the mode preference allows, or ('none','none')."""
    signal = surroundings.get("signal_strength") or {}
    for tech in ALLOWED_TECH.get(device["network_mode_preference"], TECH_ORDER):
        strength = signal.get(tech, "none")
        if strength != "none":
            return tech, strength
    return "none", "none"


def registration(device: Obj, surroundings: Obj) -> tuple[str, str, str, str]:
    """(status, technology, signal, reason) of the phone's cellular registration."""
    if device["airplane_mode"]:
        return "no_service", "none", "none", "airplane mode is on"
    if device["sim_card_missing"] or device["sim_card_status"] == "missing":
        return "no_service", "none", "none", "no SIM card detected"
    tech, strength = best_technology(device, surroundings)
    if device["sim_card_status"] in ("locked_pin", "locked_puk"):
        kind = "PIN" if device["sim_card_status"] == "locked_pin" else "PUK"
        return "emergency_only", "none", strength, f"the SIM card is {kind}-locked"
    if tech == "none":
        return "no_service", "none", "none", "no signal for the selected network mode"
    # The two network-side refusals read the same on the phone: it cannot tell why.
    if not surroundings["line_active"]:
        return "emergency_only", "none", strength, "the network refused registration"
    if surroundings["is_abroad"] and not surroundings["roaming_allowed"]:
        return "emergency_only", "none", strength, "the roaming network refused registration"
    return "connected", tech, strength, "registered on the network"


def refresh_phone(device: Obj, surroundings: Obj) -> None:
    """Recompute the derived phone fields from settings and surroundings (idempotent)."""
    if device["sim_card_missing"]:
        put(device, "sim_card_status", "missing")
    status, tech, strength, _ = registration(device, surroundings)
    put(device, "network_connection_status", status)
    put(device, "network_technology_connected", tech)
    put(device, "network_signal_strength", strength)
    connected = bool(device["wifi_enabled"] and device.get("wifi_ssid"))
    put(device, "wifi_connected", connected)
    if not connected:
        put(device, "wifi_signal_strength", "none")
    elif device["wifi_signal_strength"] == "none":
        put(device, "wifi_signal_strength", "good")


def mobile_data_problem(device: Obj, surroundings: Obj) -> str | None:
    """Why mobile data does not work, or None when it does."""
    status, _, _, reason = registration(device, surroundings)
    if status != "connected":
        return reason
    if not device["data_enabled"]:
        return "mobile data is switched off"
    if surroundings["is_abroad"] and not device["roaming_enabled"]:
        return "abroad, and data roaming is switched off on the phone"
    if device["active_apn_settings"]["apn_name"] != "internet":
        return "the APN settings are not valid for this carrier"
    if surroundings["mobile_data_usage_exceeded"]:
        return "the plan's data allowance is used up"
    return None


def mobile_speed_mbps(device: Obj, surroundings: Obj) -> float:
    """Expected mobile download speed, 0.0 without mobile data."""
    if mobile_data_problem(device, surroundings) is not None:
        return 0.0
    speed = TECH_SPEED[device["network_technology_connected"]]
    speed *= SIGNAL_FACTOR[device["network_signal_strength"]]
    return _apply_modifiers(device, speed)


def wifi_speed_mbps(device: Obj) -> float:
    if not device["wifi_connected"]:
        return 0.0
    return _apply_modifiers(device, WIFI_SPEED * SIGNAL_FACTOR[device["wifi_signal_strength"]])


def _apply_modifiers(device: Obj, speed: float) -> float:
    if device["vpn_connected"] and device.get("vpn_details") is not None:
        speed *= VPN_FACTOR[device["vpn_details"].get("server_performance", "unknown")]
    if device["data_saver_mode"]:
        speed = min(speed, DATA_SAVER_CAP_MBPS)
    return round(speed, 2)


def speed_label(mbps: float) -> str:
    if mbps <= 0:
        return "no connection"
    for limit, label in ((1.0, "very poor"), (5.0, "poor"), (25.0, "fair"), (100.0, "good")):
        if mbps < limit:
            return label
    return "excellent"


def mms_problem(device: Obj, surroundings: Obj) -> str | None:
    """Why picture messages cannot be sent, or None when they can."""
    apps = device["app_statuses"]
    messaging = apps.get("messaging")
    if messaging is not None:
        perms = messaging["permissions"]
        missing = [p for p in ("sms", "storage") if not perms[p]]
        if missing:
            return "the messaging app lacks the permission(s): " + ", ".join(missing)
    apn = device["active_apn_settings"]
    if not apn.get("mmsc_url") or not apn.get("mms_apn"):
        return "the APN settings have no MMS configuration"
    over_wifi = (device["wifi_calling_enabled"] and device["wifi_calling_mms_over_wifi"]
                 and device["wifi_connected"])
    if over_wifi:
        return None
    problem = mobile_data_problem(device, surroundings)
    if problem is not None:
        return problem
    if device["network_technology_connected"] == "2G":
        return "picture messages need at least a 3G connection"
    return None
