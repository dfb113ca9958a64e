"""Decoding of everything the SDK message callback delivers into `Event`s.

``decode(raw, ctx)`` never raises: an unknown command becomes an ``unknown`` event with
its bytes, a payload that cannot be read a ``malformed_alarm`` health event, and a bug in
a decoder a ``decode_error`` health event with the payload and the exception. Alarms come
out as the device states them (``start`` while it says active, ``stop`` when it says
inactive, ``pulse`` for one-shot types); `hikd.listeners.alarm_state` turns the repeated
starts into clean transitions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hikd.events import Event, utc_now
from hikd.listeners.decode import binary, commands
from hikd.listeners.decode.context import DecodeContext, raw_binary, received_at, unknown_command
from hikd.listeners.decode.errors import decode_error_message
from hikd.listeners.decode.isapi import decode_isapi
from hikd.listeners.decode.pictures import save_pictures
from hikd.listeners.decode.stats import DecodeStats, stats
from hikd.sdk.raw import RawAlarm

__all__ = ["DecodeContext", "DecodeStats", "decode", "stats"]


def decode(raw: RawAlarm, ctx: DecodeContext, counters: DecodeStats | None = None) -> list[Event]:
    """The events in one message from the SDK callback (zero for a heartbeat)."""
    counters = counters if counters is not None else stats
    try:
        counters.command(raw.command)
        events = _dispatch(raw, ctx, counters)
        for event in events:
            counters.event_type(event.type)
        return events
    except Exception as exc:  # a decoder bug: report it, keep the bytes, never raise
        return [_decode_error(raw, ctx, counters, exc)]


def _dispatch(raw: RawAlarm, ctx: DecodeContext, counters: DecodeStats) -> list[Event]:
    if raw.command == commands.COMM_ISAPI_ALARM:
        return decode_isapi(raw, ctx, counters)
    if raw.command == commands.ERROR_MESSAGE:
        return decode_error_message(raw, ctx, counters)
    decoder = binary.DECODERS.get(raw.command)
    events = decoder(raw, ctx, counters) if decoder else [unknown_command(raw, ctx)]
    if ctx.channels is not None:
        # Binary alarms number channels as the library does on the session (byStartChan,
        # byStartDChan): into hikd's numbering (hikd.devices.capabilities.channels).
        events = [_renumbered(event, ctx) for event in events]
    if raw.pictures and events:
        # Binary alarms carry no pictures unless the callback copied their pImage.
        first = events[0]
        files, info = save_pictures(raw.pictures, ctx, first.id, first.time)
        events[0] = dataclasses.replace(
            first, files=tuple(files), attributes={**first.attributes, "pictures": info}
        )
    return events


def _renumbered(event: Event, ctx: DecodeContext) -> Event:
    assert ctx.channels is not None
    if event.channel is None:
        return event
    number = ctx.channels.from_library(event.channel)
    if number == event.channel:
        return event
    attributes = {**event.attributes, "device_channel": event.channel}
    return dataclasses.replace(event, channel=number, attributes=attributes)


def _decode_error(
    raw: RawAlarm, ctx: DecodeContext, counters: DecodeStats, exc: BaseException
) -> Event:
    counters.decode_error()
    attributes: dict[str, Any] = {
        "command": raw.command,
        "command_name": commands.command_name(raw.command),
        "error": f"{type(exc).__name__}: {exc}",
    }
    try:
        attributes["size"] = len(raw.payload)
        raw_part = raw_binary(raw)
    except Exception:  # the payload itself is what broke the decoder
        raw_part = {"command": raw.command, "encoding": "repr", "payload": repr(raw.payload)}
    try:
        received = received_at(raw)
    except Exception:
        received = utc_now()
    return Event(
        kind="health",
        type="decode_error",
        state="pulse",
        device=ctx.device,
        time=received,
        received=received,
        attributes=attributes,
        raw=raw_part,
    )
