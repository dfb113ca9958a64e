"""COMM_ALARM, COMM_ALARM_V30 and COMM_ALARM_V40: the private protocol's alarms (guide
5.16, table 5.30), read by `hikd.sdk.alarm_structs`.

Whatever part of COMM_ALARM_V40's variable-length list is missing is said in
``attributes["list_incomplete"]``; the alarm is never dropped for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hikd.events import Event, State
from hikd.listeners.decode import commands, types
from hikd.listeners.decode.binary.common import too_short
from hikd.listeners.decode.context import (
    DecodeContext,
    device_tz,
    local_time,
    raw_binary,
    received_at,
)
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk import alarm_types
from hikd.sdk.alarm_structs import (
    AlarmInfo,
    PayloadTooShort,
    read_alarm_info,
    read_alarm_info_v30,
    read_alarm_info_v40,
)
from hikd.sdk.raw import RawAlarm

MAX_ANALOG_CHANNUM = 32
"""NET_DVR_ALARMINFO_V30 arrays hold the analog channels in their first 32 slots and the
IP channels after them (HCNetSDK.h MAX_ANALOG_CHANNUM; guide 3.2 numbers IP channels from
byStartDChan)."""


@dataclass
class _Alarm:
    """What COMM_ALARM, COMM_ALARM_V30 and COMM_ALARM_V40 have in common."""

    alarm_type: int
    time: datetime
    channels: list[int] = field(default_factory=list)
    disks: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    record_channels: list[int] = field(default_factory=list)
    alarm_input: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _alarm_events(alarm: _Alarm, raw: RawAlarm, ctx: DecodeContext) -> list[Event]:
    """One event per channel, per disk (disk alarms) or per alarm input (signal alarms);
    one without a channel when the alarm names none."""
    ours = types.ALARM_TYPES.get(alarm.alarm_type)
    state: State = "start"
    if alarm.alarm_type in types.ALARM_TYPES_STOP:
        state = "stop"
    elif alarm.alarm_type in types.ALARM_TYPES_ONE_SHOT:
        state = "pulse"
    attributes: dict[str, Any] = {
        "alarm_type": alarm.alarm_type,
        "command_name": commands.command_name(raw.command),
        **alarm.extra,
    }
    for key, values in (
        ("channels", alarm.channels),
        ("disks", alarm.disks),
        ("alarm_outputs", alarm.outputs),
        ("record_channels", alarm.record_channels),
    ):
        if values:
            attributes[key] = values
    raw_part = None
    if ours is None:
        ours = types.UNKNOWN
        attributes["event_type"] = f"alarm_type_{alarm.alarm_type}"
        raw_part = raw_binary(raw)

    targets: list[tuple[int | None, dict[str, Any]]]
    if alarm.alarm_type in types.ALARM_TYPES_PER_DISK and alarm.disks:
        targets = [(None, {"disk": disk}) for disk in alarm.disks]
    elif alarm.alarm_input is not None:
        targets = [(None, {"alarm_input": alarm.alarm_input})]
    elif alarm.channels:
        targets = [(channel, {}) for channel in alarm.channels]
    else:
        targets = [(None, {})]
    received = received_at(raw)
    return [
        Event(
            kind="alarm",
            type=ours,
            state=state,
            device=ctx.device,
            channel=channel,
            time=alarm.time,
            received=received,
            attributes={**attributes, **own},
            raw=raw_part,
        )
        for channel, own in targets
    ]


def _v30_channel(ctx: DecodeContext, index: int) -> int:
    if index < MAX_ANALOG_CHANNUM:
        return ctx.start_channel + index
    return ctx.start_ip_channel + index - MAX_ANALOG_CHANNUM


def _alarm_input(info: AlarmInfo) -> int | None:
    # dwAlarmInputNumber counts from 0 (the vendor's demos print it + 1).
    if info.alarm_type in alarm_types.IO_TYPES:
        return info.alarm_input_number + 1
    return None


def _flag_alarm(
    info: AlarmInfo, raw: RawAlarm, ctx: DecodeContext, channel: Callable[[int], int]
) -> list[Event]:
    """COMM_ALARM and COMM_ALARM_V30 alike: flag arrays, numbered from 0 (`channel` turns a
    slot into hikd's channel number), and no time: the receive time is the best there is."""
    alarm = _Alarm(
        alarm_type=info.alarm_type,
        time=received_at(raw),
        channels=[channel(i) for i in info.channels],
        disks=[i + 1 for i in info.disks],
        outputs=[i + 1 for i in info.outputs],
        record_channels=[channel(i) for i in info.record_channels],
        alarm_input=_alarm_input(info),
    )
    return _alarm_events(alarm, raw, ctx)


def decode_alarm_v30(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    try:
        info = read_alarm_info_v30(raw.payload)
    except PayloadTooShort as exc:
        return too_short(raw, ctx, stats, exc)
    return _flag_alarm(info, raw, ctx, lambda slot: _v30_channel(ctx, slot))


def decode_alarm(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    """COMM_ALARM: NET_DVR_ALARMINFO of devices before V3.0 (16 analog channels, DWORD
    flags; the guide's 4.7 example reads dwChannel[i] == 1 as channel i + 1)."""
    try:
        info = read_alarm_info(raw.payload)
    except PayloadTooShort as exc:
        return too_short(raw, ctx, stats, exc)
    return _flag_alarm(info, raw, ctx, lambda slot: ctx.start_channel + slot)


def decode_alarm_v40(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    try:
        info = read_alarm_info_v40(raw.payload)
    except PayloadTooShort as exc:
        return too_short(raw, ctx, stats, exc)
    # Without the header's own offset the time is the device's wall clock in its
    # configured zone.
    tz = info.utc_offset
    when = local_time(ctx, *info.clock, tz=tz or device_tz(ctx))
    alarm = _Alarm(alarm_type=info.alarm_type, time=when or received_at(raw))
    if when is None:
        alarm.extra["device_time_invalid"] = True
    alarm.outputs, alarm.record_channels = info.outputs, info.record_channels
    if info.alarm_input_no is not None:
        # Counted from 0 like V30's dwAlarmInputNumber (doubt: some vendor demos print
        # it as is); the device's own value stays in the attributes.
        alarm.alarm_input = info.alarm_input_no + 1
        alarm.extra["alarm_input_no"] = info.alarm_input_no
    # The lists hold channel and disk numbers as the device numbers them (not flags).
    alarm.channels = [v for v in info.channels if 0 < v < 0x10000]
    alarm.disks = [v for v in info.disks if 0 < v < 0x10000]
    if info.found < info.expected:
        alarm.extra["list_incomplete"] = {"expected": info.expected, "found": info.found}
    if tz is not None:
        alarm.extra["utc_offset_minutes"] = int(tz.utcoffset(None).total_seconds() // 60)
    return _alarm_events(alarm, raw, ctx)
