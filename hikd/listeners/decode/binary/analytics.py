"""COMM_ALARM_VQD and COMM_ALARM_RULE: what a device's video analytics found (guide 5.16,
table 5.31): a video quality diagnosis, or a behaviour-analysis rule that fired."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hikd.events import Event
from hikd.listeners.decode import types
from hikd.listeners.decode.binary.common import number, too_short
from hikd.listeners.decode.context import DecodeContext, local_time, raw_binary, received_at
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk.alarm_structs import PayloadTooShort, VqdAlarm, read_rule_alarm, read_vqd
from hikd.sdk.raw import RawAlarm


def decode_vqd(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    """COMM_ALARM_VQD: a video quality diagnosis finding (either struct the header has
    for it; `read_vqd` says which came)."""
    try:
        info = read_vqd(raw.payload)
    except PayloadTooShort as exc:
        return too_short(raw, ctx, stats, exc)
    channel = info.channel
    if isinstance(info, VqdAlarm):
        return [
            _vqd_event(
                raw,
                ctx,
                info.event_type,
                channel if channel > 0 else None,
                local_time(ctx, *info.clock),
                {
                    "threshold": number(info.threshold),
                    "device_ip": info.device_ip,
                    "ivms_channel": info.ivms_channel,
                    "picture_size": info.picture_size,
                },
            )
        ]
    return [
        _vqd_event(
            raw,
            ctx,
            info.vqd_type,
            channel if channel > 0 else None,
            local_time(ctx, *info.clock),
            {"score": info.score},
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
    try:
        info = read_rule_alarm(raw.payload)
    except PayloadTooShort as exc:
        return too_short(raw, ctx, stats, exc)
    ours, device_name = _rule_type(info.event_type_ex, info.event_bits)
    x, y, width, height = info.target_rect
    attributes: dict[str, Any] = {
        "event_type": device_name,
        "rule_id": info.rule_id,
        "rule_name": info.rule_name,
        "scene_id": info.scene_id,
        "event_type_ex": info.event_type_ex,
        "event_type_bits": info.event_bits,
        "target_id": info.target_id,
        "target_rect": {
            "x": number(x),
            "y": number(y),
            "width": number(width),
            "height": number(height),
        },
        "device_ip": info.device_ip,
        "ivms_channel": info.ivms_channel,
        "alarm_id": info.alarm_id,
        "relative_time": info.relative_time,
        "picture_size": info.picture_size,
    }
    # The NVR's channel of the camera that raised it (ISAPI dynChannelID); `channel` is
    # the channel on the analysing device itself.
    if info.dyn_channel_id:
        attributes["dyn_channel_id"] = info.dyn_channel_id
    channel = info.channel
    when = local_time(ctx, *info.clock)
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
