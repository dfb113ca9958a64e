"""The private protocol's alarm structs (guide 5.16, tables 5.30 / 5.31; HCNetSDK.h).

The real library never produces these over an ISAPI login (every alarm then arrives as
COMM_ISAPI_ALARM, sdk-over-isapi.md part 1 §2); they come from devices logged in over the
vendor's private protocol. Each payload is the ``dwBufLen`` bytes the callback copied
from ``pAlarmInfo``: a struct is read only after checking the payload holds all of it.

COMM_ALARM_V40 is variable-length (guide 5.16 table 5.30, "报警数据为可变长"): the fixed
header counts the channels / disks / outputs, and ``pAlarmData`` points at that many
DWORDs. A pointer means nothing in copied bytes, so this decoder reads the list from the
bytes that follow the struct in the payload (the message callback appends them when the
library's buffer does not already hold them). Whatever part of the list is missing is
said in ``attributes["list_incomplete"]``; the alarm is never dropped for it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hikd.events import Event, State
from hikd.listeners.decode import commands, types
from hikd.listeners.decode.context import (
    DecodeContext,
    device_tz,
    local_time,
    malformed,
    raw_binary,
    received_at,
)
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk import alarm_types
from hikd.sdk.convert import utc_offset
from hikd.sdk.raw import RawAlarm
from hikd.sdk.structs import sizeof, text, view

Decoder = Callable[[RawAlarm, DecodeContext, DecodeStats], list[Event]]

MAX_ANALOG_CHANNUM = 32
"""NET_DVR_ALARMINFO_V30 arrays hold the analog channels in their first 32 slots and the
IP channels after them (HCNetSDK.h MAX_ANALOG_CHANNUM; guide 3.2 numbers IP channels from
byStartDChan)."""

MAX_LIST = 4096
"""No device has more channels or disks; a larger count is garbage, not a list."""

# Which union member of the V40 header is valid, by dwAlarmType (shared with the
# callback that copies COMM_ALARM_V40's list).
IO_TYPES = alarm_types.IO_TYPES
V40_CHANNEL_TYPES = alarm_types.CHANNEL_TYPES


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


def _too_short(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats, name: str) -> list[Event]:
    return [
        malformed(
            raw,
            ctx,
            stats,
            f"{len(raw.payload)} bytes, shorter than {name} ({sizeof(name)} bytes)",
            struct=name,
        )
    ]


def _set(array: Any) -> list[int]:
    """Indexes of the non-zero entries of a BYTE/DWORD flag array."""
    return [i for i, value in enumerate(array) if value]


def _number(value: float) -> float | None:
    """A float field fit for JSON (garbage floats can be NaN or infinite)."""
    return round(value, 6) if math.isfinite(value) else None


def _abs_time(ctx: DecodeContext, packed: int) -> datetime | None:
    """dwAbsTime, the header's bit-packed time (GET_YEAR .. GET_SECOND macros)."""
    return local_time(
        ctx,
        (packed >> 26) + 2000,
        (packed >> 22) & 15,
        (packed >> 17) & 31,
        (packed >> 12) & 31,
        (packed >> 6) & 63,
        packed & 63,
    )


def _dwords(data: bytes, count: int) -> tuple[list[int], int]:
    """Up to `count` little-endian DWORDs from `data`: (values, how many were there)."""
    n = max(0, min(count, len(data) // 4, MAX_LIST))
    return (list(struct.unpack_from(f"<{n}I", data)) if n else []), n


# --- COMM_ALARM, COMM_ALARM_V30, COMM_ALARM_V40 -------------------------------------------


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


def decode_alarm_v30(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    name = "NET_DVR_ALARMINFO_V30"
    info = view(name, raw.payload)
    if info is None:
        return _too_short(raw, ctx, stats, name)
    alarm_type = int(info.dwAlarmType)
    alarm = _Alarm(
        alarm_type=alarm_type,
        # V30 carries no time: the receive time is the best there is.
        time=received_at(raw),
        channels=[_v30_channel(ctx, i) for i in _set(info.byChannel)],
        disks=[i + 1 for i in _set(info.byDiskNumber)],
        outputs=[i + 1 for i in _set(info.byAlarmOutputNumber)],
        record_channels=[_v30_channel(ctx, i) for i in _set(info.byAlarmRelateChannel)],
        # dwAlarmInputNumber counts from 0 (the vendor's demos print it + 1).
        alarm_input=int(info.dwAlarmInputNumber) + 1 if alarm_type in IO_TYPES else None,
    )
    return _alarm_events(alarm, raw, ctx)


def decode_alarm(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    """COMM_ALARM: NET_DVR_ALARMINFO of devices before V3.0 (16 analog channels, DWORD
    flags; the guide's 4.7 example reads dwChannel[i] == 1 as channel i + 1)."""
    name = "NET_DVR_ALARMINFO"
    info = view(name, raw.payload)
    if info is None:
        return _too_short(raw, ctx, stats, name)
    alarm_type = int(info.dwAlarmType)
    alarm = _Alarm(
        alarm_type=alarm_type,
        time=received_at(raw),
        channels=[ctx.start_channel + i for i in _set(info.dwChannel)],
        disks=[i + 1 for i in _set(info.dwDiskNumber)],
        outputs=[i + 1 for i in _set(info.dwAlarmOutputNumber)],
        record_channels=[ctx.start_channel + i for i in _set(info.dwAlarmRelateChannel)],
        alarm_input=int(info.dwAlarmInputNumber) + 1 if alarm_type in IO_TYPES else None,
    )
    return _alarm_events(alarm, raw, ctx)


def decode_alarm_v40(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    name = "NET_DVR_ALARMINFO_V40"
    info = view(name, raw.payload)
    if info is None:
        return _too_short(raw, ctx, stats, name)
    header = info.struAlarmFixedHeader
    alarm_type = int(header.dwAlarmType)

    # cTimeDifferenceH/M are valid only when byTimeDiffFlag is 1 (header comment);
    # otherwise the time is the device's wall clock in its configured zone.
    tz = utc_offset(int(header.byTimeDiffFlag), header.cTimeDifferenceH, header.cTimeDifferenceM)
    t = header.struAlarmTime
    when = local_time(
        ctx,
        int(t.wYear),
        int(t.byMonth),
        int(t.byDay),
        int(t.byHour),
        int(t.byMinute),
        int(t.bySecond),
        tz=tz or device_tz(ctx),
    )
    alarm = _Alarm(alarm_type=alarm_type, time=when or received_at(raw))
    if when is None:
        alarm.extra["device_time_invalid"] = True

    tail = raw.payload[sizeof(name) :]
    union = header.uStruAlarm
    expected = 0
    if alarm_type in IO_TYPES:
        io = union.struIOAlarm
        n_out, n_rec = int(io.dwTrigerAlarmOutNum), int(io.dwTrigerRecordChanNum)
        expected = n_out + n_rec
        values, found = _dwords(tail, expected)
        alarm.outputs, alarm.record_channels = values[:n_out], values[n_out:]
        # Counted from 0 like V30's dwAlarmInputNumber (doubt: some vendor demos print
        # it as is); the device's own value stays in the attributes.
        alarm.alarm_input = int(io.dwAlarmInputNo) + 1
        alarm.extra["alarm_input_no"] = int(io.dwAlarmInputNo)
    elif alarm_type in V40_CHANNEL_TYPES:
        expected = int(union.struAlarmChannel.dwAlarmChanNum)
        values, found = _dwords(tail, expected)
        # The list holds channel numbers as the device numbers them (not flags).
        alarm.channels = [v for v in values if 0 < v < 0x10000]
    elif alarm_type in alarm_types.DISK_TYPES:
        expected = int(union.struAlarmHardDisk.dwAlarmHardDiskNum)
        values, found = _dwords(tail, expected)
        alarm.disks = [v for v in values if 0 < v < 0x10000]
    else:
        found = 0
    if found < expected:
        alarm.extra["list_incomplete"] = {"expected": expected, "found": found}
    if tz is not None:
        alarm.extra["utc_offset_minutes"] = int(tz.utcoffset(None).total_seconds() // 60)
    return _alarm_events(alarm, raw, ctx)


# --- IP channel configuration, hot spare, VQD, VCA rules ------------------------------------


def decode_ipccfg(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    """COMM_IPCCFG / COMM_IPCCFG_V31: a hybrid DVR's IP channel set-up changed. A health
    fact (the channel map hikd uses may be stale), not an alarm. Credentials in the
    struct are never copied out."""
    v31 = raw.command == commands.COMM_IPCCFG_V31
    name = "NET_DVR_IPALARMINFO_V31" if v31 else "NET_DVR_IPALARMINFO"
    info = view(name, raw.payload)
    if info is None:
        return _too_short(raw, ctx, stats, name)
    devices = []
    for i, dev in enumerate(info.struIPDevInfo):
        enabled = bool(dev.byEnable if v31 else dev.dwEnable)
        address = text(dev.struIP.sIpV4)
        if enabled or address:
            entry: dict[str, Any] = {
                "id": i + 1,
                "address": address,
                "port": int(dev.wDVRPort),
                "enabled": enabled,
            }
            if v31:
                entry["domain"] = text(dev.byDomain)
            devices.append(entry)
    channels = []
    for i, chan in enumerate(info.struIPChanInfo):
        ip_id = int(chan.byIPID) + 256 * int(chan.byIPIDHigh)
        if chan.byEnable or ip_id:
            channels.append(
                {
                    "channel": ctx.start_ip_channel + i,
                    "ip_device": ip_id,
                    "device_channel": int(chan.byChannel),
                    "enabled": bool(chan.byEnable),
                }
            )
    analog = [ctx.start_channel + i for i in _set(info.byAnalogChanEnable)]
    return [
        _health(
            raw,
            ctx,
            "ip_channels_changed",
            command_name=commands.command_name(raw.command),
            ip_devices=devices,
            ip_channels=channels,
            analog_channels_enabled=analog,
        )
    ]


HOT_SPARE_CASES = {0: "network"}


def decode_hot_spare(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    """COMM_ALARM_HOT_SPARE: an N+1 hot-spare set-up lost a member (dwExceptionCase 0 =
    network exception)."""
    name = "NET_DVR_ALARM_HOT_SPARE"
    info = view(name, raw.payload)
    if info is None:
        return _too_short(raw, ctx, stats, name)
    case = int(info.dwExceptionCase)
    return [
        _health(
            raw,
            ctx,
            "hot_spare_exception",
            exception_case=case,
            reason=HOT_SPARE_CASES.get(case, f"case_{case}"),
            device_ip=text(info.struDeviceIP.sIpV4),
        )
    ]


def decode_vqd(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    """COMM_ALARM_VQD: a video quality diagnosis finding.

    The guide (table 5.31) names NET_DVR_VQD_DIAGNOSE_INFO (64 bytes) for this command;
    the header also has NET_DVR_VQD_ALARM (312 bytes, with the device info and a picture).
    Both start with dwSize, so dwSize says which one came."""
    payload = raw.payload
    size = struct.unpack_from("<I", payload)[0] if len(payload) >= 4 else 0
    if size == sizeof("NET_DVR_VQD_ALARM") or (
        size != sizeof("NET_DVR_VQD_DIAGNOSE_INFO") and len(payload) >= sizeof("NET_DVR_VQD_ALARM")
    ):
        return _vqd_alarm(raw, ctx, stats)
    name = "NET_DVR_VQD_DIAGNOSE_INFO"
    info = view(name, payload)
    if info is None:
        return _too_short(raw, ctx, stats, name)
    found = info.struVQDDiagnoseExceptionInfo
    t = found.struDiagnoseTime
    when = local_time(
        ctx,
        int(t.dwYear),
        int(t.dwMonth),
        int(t.dwDay),
        int(t.dwHour),
        int(t.dwMinute),
        int(t.dwSecond),
    )
    channel = int(found.dwChannelNO)
    return [
        _vqd_event(
            raw,
            ctx,
            int(found.dwVQDType),
            channel if channel > 0 else None,
            when,
            {"score": int(found.byScoreValue)},
        )
    ]


def _vqd_alarm(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    name = "NET_DVR_VQD_ALARM"
    info = view(name, raw.payload)
    if info is None:
        return _too_short(raw, ctx, stats, name)
    dev = info.struDevInfo
    channel = int(dev.byChannel)
    return [
        _vqd_event(
            raw,
            ctx,
            int(info.dwEventType),
            channel if channel > 0 else None,
            _abs_time(ctx, int(info.dwAbsTime)),
            {
                "threshold": _number(float(info.fThreshold)),
                "device_ip": text(dev.struDevIP.sIpV4),
                "ivms_channel": int(dev.byIvmsChannel),
                "picture_size": int(info.dwPicDataLen),
            },
        )
    ]


def _vqd_event(
    raw: RawAlarm,
    ctx: DecodeContext,
    vqd_type: int,
    channel: int | None,
    when: datetime | None,
    extra: dict[str, Any],
) -> Event:
    ours = types.VQD_EVENTS.get(vqd_type)
    attributes: dict[str, Any] = {"source": "vqd", "vqd_event": vqd_type, **extra}
    raw_part = None
    if ours is None:
        ours = types.UNKNOWN
        attributes["event_type"] = f"vqd_event_{vqd_type}"
        raw_part = raw_binary(raw)
    return Event(
        kind="alarm",
        type=ours,
        state="start",
        device=ctx.device,
        channel=channel,
        time=when or received_at(raw),
        received=received_at(raw),
        attributes=attributes,
        raw=raw_part,
    )


def _rule_type(event_type_ex: int, event_bits: int) -> tuple[str | None, str]:
    """hikd's type and the device's name for a VCA rule: wEventTypeEx when the firmware
    fills it, else the lowest bit of the older dwEventType mask."""
    if event_type_ex:
        return types.VCA_RULE_TYPES.get(event_type_ex), f"vca_rule_{event_type_ex}"
    for bit, ours in types.VCA_EVENT_BITS.items():
        if event_bits & bit:
            return ours, f"vca_event_0x{bit:x}"
    return None, f"vca_event_0x{event_bits:x}"


def decode_rule(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    """COMM_ALARM_RULE: NET_VCA_RULE_ALARM, a behaviour-analysis rule fired (line
    crossing, intrusion, region entrance, ...), with the rule and the target."""
    name = "NET_VCA_RULE_ALARM"
    info = view(name, raw.payload)
    if info is None:
        return _too_short(raw, ctx, stats, name)
    rule = info.struRuleInfo
    event_type_ex = int(rule.wEventTypeEx)
    event_bits = int(rule.dwEventType) & 0xFFFFFFFF  # an enum: a C int, may be negative
    ours, device_name = _rule_type(event_type_ex, event_bits)
    target = info.struTargetInfo
    rect = target.struRect
    dev = info.struDevInfo
    attributes: dict[str, Any] = {
        "event_type": device_name,
        "rule_id": int(rule.byRuleID),
        "rule_name": text(rule.byRuleName),
        "scene_id": int(rule.bySceneID),
        "event_type_ex": event_type_ex,
        "event_type_bits": event_bits,
        "target_id": int(target.dwID),
        "target_rect": {
            "x": _number(float(rect.fX)),
            "y": _number(float(rect.fY)),
            "width": _number(float(rect.fWidth)),
            "height": _number(float(rect.fHeight)),
        },
        "device_ip": text(dev.struDevIP.sIpV4),
        "ivms_channel": int(dev.byIvmsChannel),
        "alarm_id": int(info.dwAlarmID),
        "relative_time": int(info.dwRelativeTime),
        "picture_size": int(info.dwPicDataLen),
    }
    # wDevInfoIvmsChannelEx: the NVR's channel of the camera that raised it (ISAPI
    # dynChannelID); byChannel is the channel on the analysing device itself.
    if int(info.wDevInfoIvmsChannelEx):
        attributes["dyn_channel_id"] = int(info.wDevInfoIvmsChannelEx)
    channel = int(dev.byChannel)
    when = _abs_time(ctx, int(info.dwAbsTime))
    if when is None:
        attributes["device_time_invalid"] = True
    raw_part = None
    if ours is None:
        raw_part = raw_binary(raw)
    return [
        Event(
            kind="alarm",
            type=ours or types.UNKNOWN,
            state="start",
            device=ctx.device,
            channel=channel if channel > 0 else None,
            time=when or received_at(raw),
            received=received_at(raw),
            attributes=attributes,
            raw=raw_part,
        )
    ]


def _health(raw: RawAlarm, ctx: DecodeContext, type_: str, **attributes: Any) -> Event:
    return Event(
        kind="health",
        type=type_,
        state="pulse",
        device=ctx.device,
        time=received_at(raw),
        received=received_at(raw),
        attributes={"command": raw.command, **attributes},
    )


DECODERS: dict[int, Decoder] = {
    commands.COMM_ALARM: decode_alarm,
    commands.COMM_ALARM_V30: decode_alarm_v30,
    commands.COMM_ALARM_V40: decode_alarm_v40,
    commands.COMM_IPCCFG: decode_ipccfg,
    commands.COMM_IPCCFG_V31: decode_ipccfg,
    commands.COMM_ALARM_HOT_SPARE: decode_hot_spare,
    commands.COMM_ALARM_VQD: decode_vqd,
    commands.COMM_ALARM_RULE: decode_rule,
}
