"""One ISAPI alert into events: its type, state, channel, alarm input and device time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hikd.events import Event, State, new_event_id
from hikd.listeners.decode import types
from hikd.listeners.decode.commands import COMM_ISAPI_ALARM
from hikd.listeners.decode.context import DecodeContext, received_at, snake
from hikd.listeners.decode.isapi.attributes import MAX_TEXT, alert_attributes, capped
from hikd.listeners.decode.isapi.fields import CHANNEL_FIELDS, INPUT_FIELDS, INT_TEXT
from hikd.listeners.decode.pictures import save_pictures
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk.raw import RawAlarm, RawPicture


def alert_events(
    alert: dict[str, Any],
    raw: RawAlarm,
    text: str,
    ctx: DecodeContext,
    stats: DecodeStats,
    pictures: list[RawPicture],
    attributes: dict[str, Any] | None = None,
) -> list[Event]:
    # Reads only the fields in EVENT_FIELDS (bodies of a known shape bring no others).
    root_only = bool(alert.pop("_root_only", False))
    device_type = _str(alert.get("eventType"))
    if not device_type or device_type.lower() == "duration":
        # EventNotificationAlert version 2.0 "duration" events name the real event in
        # DurationList/Duration/relationEvent (pyHik, hikvision_next).
        related = _str(_path(alert, "DurationList", "Duration", "relationEvent"))
        device_type = related or device_type
    ours = types.isapi_type(device_type) if device_type else None
    state = _state(alert.get("eventState"))

    if ours == types.HEARTBEAT or (ours == "video_loss" and state == "stop"):
        # videoloss + inactive is the device heartbeat (the real library swallows it on the
        # alertStream; a listening host still gets it). Not an alarm, but counted.
        stats.heartbeat(ctx.device.name)
        return []

    if attributes is None:
        attributes = alert_attributes(alert)
    if len(text) > MAX_TEXT:
        # Only a body this long can hold a text this long: short alerts skip the walk.
        cut: dict[str, int] = {}
        attributes = capped(attributes, "", cut)
        if cut:
            attributes["truncated"] = cut
    attributes["event_type"] = device_type
    channel, channel_field = _first_int(alert, CHANNEL_FIELDS)
    alarm_input, input_field = _first_int(alert, INPUT_FIELDS)
    if alarm_input is not None:
        attributes["alarm_input"] = alarm_input
    # What became a field of the event itself is not repeated in its attributes.
    for mapped in ("dateTime", "eventState", channel_field, input_field):
        if mapped and alert.get(mapped) is not None:
            attributes.pop(snake(mapped), None)
    if ours == "io":
        channel = None
    elif channel is not None and ctx.channels is not None:
        number = ctx.channels.from_alert(channel, dynamic=channel_field.startswith("dyn"))
        if number != channel:
            attributes["device_channel"] = channel  # what the device said, for support
            channel = number
    # isDataRetransmission: the device sends this alarm again after a broken link (the
    # vendor's ISAPI field; XML text or JSON boolean). README "Backfill".
    if str(attributes.pop("is_data_retransmission", "")).lower() in ("true", "1"):
        attributes["resent"] = True

    received = received_at(raw)
    when, bad_time = _device_time(alert.get("dateTime"), ctx)
    if bad_time is not None:
        attributes["device_time_invalid"] = bad_time
    kind_type = ours or types.UNKNOWN
    if kind_type in types.ONE_SHOT_TYPES and state == "start":
        state = "pulse"

    event_id = new_event_id()
    time = when or received
    files: list[str] = []
    if pictures:
        files, info = save_pictures(pictures, ctx, event_id, time)
        attributes["pictures"] = info
    raw_part = None
    if ours is None or root_only:
        kind_type = types.UNKNOWN
        raw_part = {"command": COMM_ISAPI_ALARM, "encoding": "text", "payload": text}
    return [
        Event(
            kind="alarm",
            type=kind_type,
            state=state,
            device=ctx.device,
            channel=channel if channel is None or channel > 0 else None,
            time=time,
            received=received,
            attributes=attributes,
            raw=raw_part,
            files=tuple(files),
            id=event_id,
        )
    ]


def _state(value: Any) -> State:
    text = _str(value).lower()
    if text == "active":
        return "start"
    if text == "inactive":
        return "stop"
    return "pulse"


def _str(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _path(node: Any, *names: str) -> Any:
    for name in names:
        if isinstance(node, list):
            node = node[0] if node else None
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return node


def _first_int(alert: dict[str, Any], names: tuple[str, ...]) -> tuple[int | None, str]:
    """The first of `names` that holds a whole number, and which one it was."""
    for name in names:
        value = alert.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value, name
        if isinstance(value, str) and INT_TEXT.match(value.strip()):
            return int(value), name
    return None, ""


def _device_time(value: Any, ctx: DecodeContext) -> tuple[datetime | None, str | None]:
    """The alert's dateTime, timezone-aware (its own offset; else the configured device
    timezone; else UTC), and the raw text when it is no time at all."""
    text = _str(value)
    if not text:
        return None, None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None, text
    if when.tzinfo is None:
        when = when.replace(tzinfo=ctx.utc_offset or UTC)
    return when, None
