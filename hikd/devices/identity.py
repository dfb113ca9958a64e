"""What a session tells about its device: the facts of the login, the channel map in
hikd's numbering, model, versions, MAC address and the alarm types it sends (the
``online`` health event's attributes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hikd.devices.capabilities.channels import ChannelMap
from hikd.devices.capabilities.event_triggers import TRIGGERS_URL, event_triggers, supported_types
from hikd.isapi_xml import text_of
from hikd.sdk.errors import SdkError
from hikd.sdk.login import DeviceFacts
from hikd.sdk.passthrough import IsapiReply


def _get(isapi: Callable[..., IsapiReply], url: str, buffer: int) -> bytes | None:
    try:
        return isapi("GET", url, timeout_ms=3000, buffer=buffer).body
    except SdkError:
        return None


def read_identity(isapi: Callable[..., IsapiReply], channels: ChannelMap) -> dict[str, Any]:
    """``model``, ``firmware``, ``hardware``, ``mac`` (not in DEVICEINFO_V40: from
    ``/ISAPI/System/deviceInfo``) and ``supported_types`` (from the event triggers).
    Best effort: older private-protocol devices may answer neither (empty values)."""
    info = _get(isapi, "/ISAPI/System/deviceInfo", 16 * 1024) or b""
    triggers = _get(isapi, TRIGGERS_URL, 1024 * 1024)
    return {
        "model": text_of(info, "model"),
        "firmware": text_of(info, "firmwareVersion"),
        "hardware": text_of(info, "hardwareVersion"),
        "mac": text_of(info, "macAddress"),
        "supported_types": supported_types(event_triggers(triggers, channels) if triggers else []),
    }


def describe(
    facts: DeviceFacts | None, channels: ChannelMap, identity: dict[str, Any]
) -> dict[str, Any]:
    """The device as the ``online`` health event describes it."""
    described = facts.to_dict() if facts else {}
    if facts and channels:
        # Channels in hikd's numbering (analog 1..A, IP A+1..), whatever the library's
        # start numbers were; each channel's ids on the device are in `channels`.
        analog = [c.number for c in channels.channels if c.kind == "analog"]
        ip = [c.number for c in channels.channels if c.kind == "ip"]
        described.update(analog_channels=len(analog), ip_channels=len(ip), start_channel=1)
        described["start_ip_channel"] = ip[0] if ip else 0
        described["channels"] = channels.to_list()
        described["channel_names"] = {str(k): v for k, v in channels.names().items()}
    return {**described, "model": "", "firmware": "", **identity}
