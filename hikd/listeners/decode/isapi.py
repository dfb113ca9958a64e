"""COMM_ISAPI_ALARM (0x6009): the EventNotificationAlert bodies, XML or JSON, and pictures.

Over an ISAPI login the real library delivers every alarm this way, armed or listening
(sdk-over-isapi.md part 1 §2, §4): ``NET_DVR_ALARM_ISAPI_INFO.pAlarmData`` is the body of
the part as the device sent it (armed: with the CRLF before the next boundary), and
``byDataType`` says 1 XML, 2 JSON, 0 binary (application/octet-stream).
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any, NamedTuple

from hikd.events import Event, State, new_event_id
from hikd.listeners.decode import types
from hikd.listeners.decode.commands import COMM_ISAPI_ALARM
from hikd.listeners.decode.context import (
    DecodeContext,
    malformed,
    raw_binary,
    received_at,
    snake,
)
from hikd.listeners.decode.pictures import save_pictures
from hikd.listeners.decode.shapes import AlertShapes
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk.raw import RawAlarm, RawPicture

DATA_BINARY = 0
DATA_XML = 1
DATA_JSON = 2

ALERT = "EventNotificationAlert"
_MAX_DEPTH = 24
"""Deeper structure than any device sends is cut off (kept as a marker), so a hostile
body cannot make the decoder recurse without bound."""

_DOCTYPE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_BARE_AMP = re.compile(r"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
_INT = re.compile(r"^[+-]?\d{1,19}$")
_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")

# Leaf names whose XML text is a number (JSON keeps its own types).
_INT_FIELDS = frozenset(
    {
        "channelID",
        "dynChannelID",
        "videoInputChannelID",
        "dynVideoInputChannelID",
        "inputIOPortID",
        "dynInputIOPortID",
        "activePostCount",
        "portNo",
        "regionID",
        "ruleID",
        "sensitivityLevel",
        "positionX",
        "positionY",
        "picturesNumber",
        "picNum",
        "targetID",
        "hddID",
        "hikdSimSentNs",
        "hikdSimSeq",
    }
)
_FLOAT_FIELDS = frozenset({"X", "Y", "x", "y", "width", "height"})
_NUMERIC_FIELDS = _INT_FIELDS | _FLOAT_FIELDS
_CHANNEL_FIELDS = ("channelID", "dynChannelID", "videoInputChannelID", "dynVideoInputChannelID")
_INPUT_FIELDS = ("inputIOPortID", "dynInputIOPortID")
_EVENT_FIELDS = (
    "_root_only",
    "eventType",
    "DurationList",
    "eventState",
    "dateTime",
    *_CHANNEL_FIELDS,
    *_INPUT_FIELDS,
)
"""Every alert field `_alert_events` reads itself (the others reach it as attributes)."""
MAX_TEXT = 4096
"""Characters kept of any one text of an alert (a description, a name): the rest is cut
off with a marker, and `truncated` says how long each cut text was. Devices' texts are
short; a megabyte of description is a fault, and an event carries it into the outbox,
every sink and the alarm's stop (issue 8 item 10)."""
MAX_ITEMS = 256
"""Entries kept of any one list of an alert (repeated elements), for the same reason."""
_RENAMES = {"macAddress": "mac", "portNo": "port", "hddID": "disk"}
_STRUCTURED = frozenset({"DetectionRegionList"})


class MalformedBody(Exception):
    """The body is not a readable alert; the message says why."""


def decode_isapi(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    if not raw.pictures:
        return _decode_body(raw, ctx, stats, [])
    pictures = [p for p in raw.pictures if not _is_embedded_alert(p)]
    embedded = [p for p in raw.pictures if _is_embedded_alert(p)]
    events = _decode_body(raw, ctx, stats, pictures)
    for pic in embedded:
        # Quirk (sdk-over-isapi.md part 1 §2): when a device omits the boundary after a
        # JSON part, the library hands the next XML alert over as PIC[0] with byPicType 0.
        # It is an alarm, not a picture: decode it as one.
        inner = RawAlarm(
            command=raw.command,
            alarmer=raw.alarmer,
            payload=pic.data,
            received_ns=raw.received_ns,
            source=raw.source,
            data_type=DATA_XML if pic.data.lstrip()[:1] == b"<" else DATA_JSON,
            listen_port=raw.listen_port,
        )
        events.extend(_decode_body(inner, ctx, stats, []))
    return events


def _is_embedded_alert(pic: RawPicture) -> bool:
    return pic.pic_type == 0 and pic.data.lstrip()[:1] in (b"<", b"{")


def _decode_body(
    raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats, pictures: list[RawPicture]
) -> list[Event]:
    if raw.data_type not in (DATA_XML, DATA_JSON):
        return [_unknown_binary(raw, ctx, stats, pictures)]
    body = raw.payload.strip(b"\r\n\t \0")
    text = _text(body)
    try:
        if raw.data_type == DATA_XML:
            if b"<!" in body and _DOCTYPE.search(body):
                raise MalformedBody("XML with a DOCTYPE or ENTITY declaration is refused")
            alerts = _xml_alerts(text)
        else:
            alerts = [_Read(alert) for alert in _json_alerts(text)]
    except MalformedBody as exc:
        return [malformed(raw, ctx, stats, str(exc), data_type=raw.data_type)]
    events: list[Event] = []
    for i, (alert, attributes) in enumerate(alerts):
        events.extend(
            _alert_events(alert, raw, text, ctx, stats, pictures if i == 0 else [], attributes)
        )
    return events


def _text(body: bytes) -> str:
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    for encoding in ("utf-8", "gbk"):
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    return body.decode("utf-8", "replace")


# --- XML and JSON into one shape: dicts of str -> leaf | dict | list ---------------------


class _Read(NamedTuple):
    """One alert read from a body: its fields, and its attributes when the body had a
    known shape (else `_alert_events` makes them from the fields)."""

    fields: dict[str, Any]
    attributes: dict[str, Any] | None = None


def _xml_alerts(text: str) -> list[_Read]:
    source = _XML_DECL.sub("", text, count=1)
    known = _shapes.read(source)
    if known is not None:
        attributes = known["attributes"]
        if known["regions"]:
            _first_target(attributes)
        return [_Read(known["fields"], attributes)]
    try:
        root = ET.fromstring(source)
    except ET.ParseError as first:
        # Some cameras send a bare "&" in names (hikvision_next works around the same).
        fixed = _BARE_AMP.sub("&amp;", source)
        if fixed == source:
            raise MalformedBody(f"not well-formed XML: {first}") from None
        try:
            root = ET.fromstring(fixed)
        except ET.ParseError as exc:
            raise MalformedBody(f"not well-formed XML: {exc}") from None
    else:
        _shapes.learn(source, root)
    if _local(root.tag) != ALERT:
        nested = [el for el in root.iter() if _local(el.tag) == ALERT]
        if nested:
            return [_Read(_xml_dict(el, 0)) for el in nested]
        alert = _xml_dict(root, 0)
        if "eventType" not in alert:
            alert = {"eventType": _local(root.tag), "_root_only": True, **alert}
        return [_Read(alert)]
    return [_Read(_xml_dict(root, 0))]


def _local(tag: Any) -> str:
    if not isinstance(tag, str):  # comments and processing instructions have function tags
        return ""
    return tag.rsplit("}", 1)[-1]


# Element names repeat in every alert: remember what each tag and each name maps to rather
# than splitting and snake-casing them again (bounded, since a body can invent names).
_CACHE_MAX = 4096
_local_names: dict[Any, str] = {}
_keys: dict[str, str] = {}


def _local_cached(tag: Any) -> str:
    name = _local(tag)
    if isinstance(tag, str) and len(_local_names) < _CACHE_MAX:
        _local_names[tag] = name
    return name


def _key(name: str) -> str:
    """The attribute name of an alert field: renamed, else snake_case."""
    key = _RENAMES.get(name) or snake(name) or "value"
    if len(_keys) < _CACHE_MAX:
        _keys[name] = key
    return key


def _xml_dict(el: ET.Element, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if depth > _MAX_DEPTH:
        return {"_truncated": True}
    names = _local_names
    for child in el:
        tag = child.tag
        name = names.get(tag) or _local_cached(tag)
        if not name:
            continue
        value: Any
        if len(child):
            value = _xml_dict(child, depth + 1)
        else:
            text = child.text
            value = text.strip() if text else ""
            if name in _INT_FIELDS:
                if (value.isdecimal() and len(value) <= 19) or _INT.match(value):
                    value = int(value)
            elif name in _FLOAT_FIELDS:
                value = _leaf(name, value)
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def _leaf(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _INT_FIELDS:
        # Plain digits are what devices send: skip the regex for them.
        if (value.isdecimal() and len(value) <= 19) or _INT.match(value):
            return int(value)
        return value
    if name in _FLOAT_FIELDS and (value.replace(".", "", 1).isdecimal() or _FLOAT.match(value)):
        number = float(value)
        return number if math.isfinite(number) else value
    return value


def _root_dict(root: ET.Element) -> dict[str, Any]:
    return _xml_dict(root, 0)


def _shape_plan(alert: dict[str, Any]) -> dict[str, Any]:
    """What a body of a known shape is read into: the fields `_alert_events` reads and the
    attributes as far as the alert's shape alone places them (`_first_target` is left)."""
    attributes, regions = _placed_attributes(alert)
    fields = {name: alert[name] for name in _EVENT_FIELDS if name in alert}
    return {"fields": fields, "attributes": attributes, "regions": regions}


def alert_shapes() -> AlertShapes:
    """A new, empty `AlertShapes` that reads bodies the way this decoder parses them."""
    return AlertShapes(_root_dict, _leaf, _NUMERIC_FIELDS, _INT_FIELDS, ALERT, _shape_plan)


_shapes = alert_shapes()
"""Alert bodies a device repeats are read without parsing them again (see shapes.py)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_alerts(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"not valid JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    alerts = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get(ALERT), dict):
            item = item[ALERT]
        elif "eventType" not in item and len(item) == 1:
            (inner,) = item.values()
            if isinstance(inner, dict) and "eventType" in inner:
                item = inner
        alerts.append(item)
    if not alerts:
        raise MalformedBody("JSON body holds no alert object")
    return alerts


# --- one alert into events ----------------------------------------------------------------


def _alert_events(
    alert: dict[str, Any],
    raw: RawAlarm,
    text: str,
    ctx: DecodeContext,
    stats: DecodeStats,
    pictures: list[RawPicture],
    attributes: dict[str, Any] | None = None,
) -> list[Event]:
    # Reads only the fields in _EVENT_FIELDS (bodies of a known shape bring no others).
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
        attributes = _attributes(alert)
    if len(text) > MAX_TEXT:
        # Only a body this long can hold a text this long: short alerts skip the walk.
        cut: dict[str, int] = {}
        attributes = _capped(attributes, "", cut)
        if cut:
            attributes["truncated"] = cut
    attributes["event_type"] = device_type
    channel, channel_field = _first_int(alert, _CHANNEL_FIELDS)
    alarm_input, input_field = _first_int(alert, _INPUT_FIELDS)
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
        if isinstance(value, str) and _INT.match(value.strip()):
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


def _attributes(alert: dict[str, Any]) -> dict[str, Any]:
    """Every field of the alert, snake_case, flattened where that loses nothing; the
    detection regions as a list, with the first region's id, target and coordinates on top
    (what rules and automations key on)."""
    attributes, regions = _placed_attributes(alert)
    if regions:
        _first_target(attributes)
    return attributes


def _placed_attributes(alert: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`_attributes` but for `_first_target`, and whether the alert had regions.

    Where a value lands here depends on the alert's element names and nesting only,
    never on a leaf value: shapes.py relies on it to place a body's leaf texts."""
    attributes: dict[str, Any] = {}
    _flatten(alert, attributes, "", 0)
    regions = _regions(alert.get("DetectionRegionList"))
    if regions:
        attributes["regions"] = regions
        first = regions[0]
        for key in ("region_id", "detection_target", "coordinates"):
            if key in first and key not in attributes:
                attributes[key] = first[key]
    return attributes, bool(regions)


def _first_target(attributes: dict[str, Any]) -> None:
    """Without a target in the first region, the first region that names one."""
    if "detection_target" not in attributes:
        regions = attributes["regions"]
        targets = [r["detection_target"] for r in regions if r.get("detection_target")]
        if targets:
            attributes["detection_target"] = targets[0]


def _flatten(node: dict[str, Any], out: dict[str, Any], parent: str, depth: int) -> None:
    # Leaves first, so a top-level field keeps the plain name over a nested one.
    nested: list[tuple[str, Any]] = []
    keys = _keys
    for name, value in node.items():
        if depth == 0 and name in _STRUCTURED:
            continue
        key = keys.get(name) or _key(name)
        if isinstance(value, (dict, list)):
            nested.append((key, value))
            continue
        if parent and key in out:
            key = f"{parent}_{key}"
        if key not in out:
            numeric = name in _NUMERIC_FIELDS and isinstance(value, str)
            out[key] = _leaf(name, value) if numeric else value
    for key, value in nested:
        if isinstance(value, dict) and depth < _MAX_DEPTH:
            _flatten(value, out, key, depth + 1)
        else:
            if parent and key in out:
                key = f"{parent}_{key}"
            if key not in out:
                out[key] = _snake_tree(value, depth + 1)


def _snake_tree(value: Any, depth: int) -> Any:
    """`value` with snake_case keys and numeric leaves, cut off below `_MAX_DEPTH`."""
    if depth > _MAX_DEPTH:
        return "<truncated>"
    inner = depth + 1
    if isinstance(value, dict):
        keys = _keys
        if inner > _MAX_DEPTH:
            return {(keys.get(k) or _key(k)): "<truncated>" for k in value}
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                v = _snake_tree(v, inner)
            elif k in _NUMERIC_FIELDS and isinstance(v, str):
                v = _leaf(k, v)
            out[keys.get(k) or _key(k)] = v
        return out
    if isinstance(value, list):
        if inner > _MAX_DEPTH:
            return ["<truncated>"] * len(value)
        return [_snake_tree(v, inner) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _capped(value: Any, path: str, cut: dict[str, int]) -> Any:
    """`value` with every text longer than `MAX_TEXT` cut to it plus a marker and every
    list cut to `MAX_ITEMS` entries; the path and full length of each noted in `cut`."""
    if isinstance(value, str):
        if len(value) <= MAX_TEXT:
            return value
        cut[path or "value"] = len(value)
        return f"{value[:MAX_TEXT]}... [cut: {len(value)} characters]"
    if isinstance(value, dict):
        return {k: _capped(v, f"{path}.{k}" if path else k, cut) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > MAX_ITEMS:
            cut[path or "value"] = len(value)
        return [_capped(v, f"{path}[{i}]", cut) for i, v in enumerate(value[:MAX_ITEMS])]
    return value


def _regions(value: Any) -> list[dict[str, Any]]:
    """DetectionRegionList in its XML shape (entries under DetectionRegionEntry) or the
    JSON shapes devices send (a list of entries, wrapped or not)."""
    items = value if isinstance(value, list) else [value]
    entries: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        inner = item.get("DetectionRegionEntry")
        if inner is not None:
            entries.extend(e for e in (inner if isinstance(inner, list) else [inner]) if e)
        else:
            entries.append(item)
    regions = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        region = _snake_tree({k: v for k, v in entry.items() if k != "RegionCoordinatesList"}, 1)
        coordinates = _coordinates(entry.get("RegionCoordinatesList"))
        if coordinates:
            region["coordinates"] = coordinates
        regions.append(region)
    return regions


def _coordinates(value: Any) -> list[list[Any]]:
    items = value if isinstance(value, list) else [value]
    points: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        inner = item.get("RegionCoordinates")
        if inner is not None:
            points.extend(p for p in (inner if isinstance(inner, list) else [inner]) if p)
        else:
            points.append(item)
    return [
        [_leaf("positionX", p.get("positionX")), _leaf("positionY", p.get("positionY"))]
        for p in points
        if isinstance(p, dict)
    ]


# --- binary bodies and pictures --------------------------------------------------------


def _unknown_binary(
    raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats, pictures: list[RawPicture]
) -> Event:
    event_id = new_event_id()
    received = received_at(raw)
    attributes: dict[str, Any] = {
        "event_type": "",
        "data_type": raw.data_type,
        "size": len(raw.payload),
    }
    files: list[str] = []
    if pictures:
        files, attributes["pictures"] = save_pictures(pictures, ctx, event_id, received)
    return Event(
        kind="alarm",
        type=types.UNKNOWN,
        state="pulse",
        device=ctx.device,
        time=received,
        received=received,
        attributes=attributes,
        raw=raw_binary(raw),
        files=tuple(files),
        id=event_id,
    )
