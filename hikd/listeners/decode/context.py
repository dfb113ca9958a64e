"""What a decoder knows about the device an alarm came from, and the events every
decoder builds the same way (malformed payloads, unknown commands)."""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from hikd.devices.capabilities.channels import ChannelMap
from hikd.events import DeviceRef, Event
from hikd.listeners.decode.commands import command_name
from hikd.listeners.decode.stats import DecodeStats
from hikd.listeners.decode.types import UNKNOWN
from hikd.sdk.raw import RawAlarm


@dataclass(frozen=True)
class DecodeContext:
    device: DeviceRef
    start_channel: int = 1
    """DEVICEINFO byStartChan: the number of the first analog channel."""
    start_ip_channel: int = 1
    """DEVICEINFO byStartDChan: the number of the first IP channel."""
    utc_offset: tzinfo | None = None
    """The configured device timezone, for device times that carry no offset."""
    picture_dir: Path | None = None
    """Where pictures are written; None keeps only their sizes in attributes."""
    channels: ChannelMap | None = None
    """The device's channel map: alarms leave in hikd's channel numbering. None (a
    device not logged in yet): channels as the alarm states them."""


def received_at(raw: RawAlarm) -> datetime:
    return datetime.fromtimestamp(raw.received_ns / 1e9, UTC)


def device_tz(ctx: DecodeContext) -> tzinfo:
    return ctx.utc_offset if ctx.utc_offset is not None else UTC


def local_time(
    ctx: DecodeContext,
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    tz: tzinfo | None = None,
) -> datetime | None:
    """A device wall-clock time made timezone-aware, or None when the fields are no date
    (zeroed structs, garbage)."""
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz or device_tz(ctx))
    except (ValueError, OverflowError):
        return None


def raw_binary(raw: RawAlarm) -> dict[str, Any]:
    return {
        "command": raw.command,
        "encoding": "base64",
        "payload": base64.b64encode(raw.payload).decode("ascii"),
    }


def malformed(
    raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats, reason: str, **attributes: Any
) -> Event:
    """A health event for a payload hikd cannot read: never a disconnect, never dropped."""
    count = stats.malformed(ctx.device.name)
    return Event(
        kind="health",
        type="malformed_alarm",
        state="pulse",
        device=ctx.device,
        time=received_at(raw),
        received=received_at(raw),
        attributes={
            "command": raw.command,
            "command_name": command_name(raw.command),
            "reason": reason,
            "count": count,
            "size": len(raw.payload),
            **attributes,
        },
        raw=raw_binary(raw),
    )


def unknown_command(raw: RawAlarm, ctx: DecodeContext) -> Event:
    """An alarm hikd has no decoder for, passed on with its bytes."""
    return Event(
        kind="alarm",
        type=UNKNOWN,
        state="pulse",
        device=ctx.device,
        time=received_at(raw),
        received=received_at(raw),
        attributes={
            "command": raw.command,
            "command_name": command_name(raw.command),
            "size": len(raw.payload),
        },
        raw=raw_binary(raw),
    )


_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z\d])([A-Z])")
_NON_WORD = re.compile(r"[^0-9a-zA-Z]+")


@functools.lru_cache(maxsize=4096)  # element names repeat: the regexes ran ~18 times per alert
def snake(name: str) -> str:
    """``inputIOPortID`` -> ``input_io_port_id``, ``hikdSimSentNs`` -> ``hikd_sim_sent_ns``."""
    s = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name))
    return _NON_WORD.sub("_", s).strip("_").lower()
