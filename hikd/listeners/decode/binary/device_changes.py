"""COMM_IPCCFG / COMM_IPCCFG_V31 and COMM_ALARM_HOT_SPARE: changes a device reports about
itself (guide 5.16, table 5.30). Health facts, not alarms."""

from __future__ import annotations

from typing import Any

from hikd.events import Event
from hikd.listeners.decode import commands
from hikd.listeners.decode.binary.common import health, too_short
from hikd.listeners.decode.context import DecodeContext
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk.alarm_structs import PayloadTooShort, read_hot_spare, read_ip_channel_config
from hikd.sdk.raw import RawAlarm


def decode_ipccfg(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    """COMM_IPCCFG / COMM_IPCCFG_V31: a hybrid DVR's IP channel set-up changed. A health
    fact (the channel map hikd uses may be stale), not an alarm. Credentials in the
    struct are never copied out."""
    v31 = raw.command == commands.COMM_IPCCFG_V31
    try:
        info = read_ip_channel_config(raw.payload, v31)
    except PayloadTooShort as exc:
        return too_short(raw, ctx, stats, exc)
    devices = []
    for i, dev in enumerate(info.devices):
        if dev.enabled or dev.address:
            entry: dict[str, Any] = {
                "id": i + 1,
                "address": dev.address,
                "port": dev.port,
                "enabled": dev.enabled,
            }
            if dev.domain is not None:
                entry["domain"] = dev.domain
            devices.append(entry)
    channels = []
    for i, chan in enumerate(info.channels):
        if chan.enabled or chan.ip_device:
            channels.append(
                {
                    "channel": ctx.start_ip_channel + i,
                    "ip_device": chan.ip_device,
                    "device_channel": chan.device_channel,
                    "enabled": chan.enabled,
                }
            )
    analog = [ctx.start_channel + i for i in info.analog_enabled]
    return [
        health(
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
    try:
        info = read_hot_spare(raw.payload)
    except PayloadTooShort as exc:
        return too_short(raw, ctx, stats, exc)
    case = info.exception_case
    return [
        health(
            raw,
            ctx,
            "hot_spare_exception",
            exception_case=case,
            reason=HOT_SPARE_CASES.get(case, f"case_{case}"),
            device_ip=info.device_ip,
        )
    ]
