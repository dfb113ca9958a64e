"""What a session tells about its device: the facts of the login, the channel map in
hikd's numbering, model and firmware (the ``online`` health event's attributes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hikd.devices.capabilities.channels import ChannelMap
from hikd.isapi_xml import text_of
from hikd.sdk.errors import SdkError
from hikd.sdk.login import DeviceFacts
from hikd.sdk.passthrough import IsapiReply


def read_model_and_firmware(isapi: Callable[..., IsapiReply]) -> tuple[str, str] | None:
    """Model and firmware are not in DEVICEINFO_V40: ask /ISAPI/System/deviceInfo.
    Best effort: older private-protocol devices may not answer it (None)."""
    try:
        reply = isapi("GET", "/ISAPI/System/deviceInfo", timeout_ms=3000, buffer=16 * 1024)
    except SdkError:
        return None
    return text_of(reply.body, "model"), text_of(reply.body, "firmwareVersion")


def describe(
    facts: DeviceFacts | None, channels: ChannelMap, model: str, firmware: str
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
    return {**described, "model": model, "firmware": firmware}
