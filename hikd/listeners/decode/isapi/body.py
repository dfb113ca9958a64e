"""XML and JSON alert bodies read into one shape: dicts of str -> leaf | dict | list.

Bodies a device repeats are read by their known shape (shapes.py) without parsing them
again; a body hikd cannot read raises `MalformedBody`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, NamedTuple

from hikd.listeners.decode.isapi.attributes import first_target, placed_attributes
from hikd.listeners.decode.isapi.fields import (
    CACHE_MAX,
    EVENT_FIELDS,
    FLOAT_FIELDS,
    INT_FIELDS,
    INT_TEXT,
    MAX_DEPTH,
    NUMERIC_FIELDS,
    leaf,
)
from hikd.listeners.decode.shapes import AlertShapes

ALERT = "EventNotificationAlert"
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_BARE_AMP = re.compile(r"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);)")


class MalformedBody(Exception):
    """The body is not a readable alert; the message says why."""


class ReadAlert(NamedTuple):
    """One alert read from a body: its fields, and its attributes when the body had a
    known shape (else `alert_events` makes them from the fields)."""

    fields: dict[str, Any]
    attributes: dict[str, Any] | None = None


def xml_alerts(text: str) -> list[ReadAlert]:
    source = _XML_DECL.sub("", text, count=1)
    known = _shapes.read(source)
    if known is not None:
        attributes = known["attributes"]
        if known["regions"]:
            first_target(attributes)
        return [ReadAlert(known["fields"], attributes)]
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
            return [ReadAlert(_xml_dict(el, 0)) for el in nested]
        alert = _xml_dict(root, 0)
        if "eventType" not in alert:
            alert = {"eventType": _local(root.tag), "_root_only": True, **alert}
        return [ReadAlert(alert)]
    return [ReadAlert(_xml_dict(root, 0))]


def _local(tag: Any) -> str:
    if not isinstance(tag, str):  # comments and processing instructions have function tags
        return ""
    return tag.rsplit("}", 1)[-1]


# Element names repeat in every alert: remember what each tag maps to rather than splitting
# it again (bounded, since a body can invent names).
_local_names: dict[Any, str] = {}


def _local_cached(tag: Any) -> str:
    name = _local(tag)
    if isinstance(tag, str) and len(_local_names) < CACHE_MAX:
        _local_names[tag] = name
    return name


def _xml_dict(el: ET.Element, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if depth > MAX_DEPTH:
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
            if name in INT_FIELDS:
                if (value.isdecimal() and len(value) <= 19) or INT_TEXT.match(value):
                    value = int(value)
            elif name in FLOAT_FIELDS:
                value = leaf(name, value)
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def _root_dict(root: ET.Element) -> dict[str, Any]:
    return _xml_dict(root, 0)


def _shape_plan(alert: dict[str, Any]) -> dict[str, Any]:
    """What a body of a known shape is read into: the fields `alert_events` reads and the
    attributes as far as the alert's shape alone places them (`first_target` is left)."""
    attributes, regions = placed_attributes(alert)
    fields = {name: alert[name] for name in EVENT_FIELDS if name in alert}
    return {"fields": fields, "attributes": attributes, "regions": regions}


def alert_shapes() -> AlertShapes:
    """A new, empty `AlertShapes` that reads bodies the way this decoder parses them."""
    return AlertShapes(_root_dict, leaf, NUMERIC_FIELDS, INT_FIELDS, ALERT, _shape_plan)


_shapes = alert_shapes()
"""Alert bodies a device repeats are read without parsing them again (see shapes.py)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_alerts(text: str) -> list[dict[str, Any]]:
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
