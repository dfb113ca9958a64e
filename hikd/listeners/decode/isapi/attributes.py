"""An ISAPI alert's fields into an event's attributes: snake_case, flattened where that
loses nothing, the detection regions as a list, long texts and lists cut."""

from __future__ import annotations

from typing import Any

from hikd.listeners.decode.context import snake
from hikd.listeners.decode.isapi.fields import CACHE_MAX, MAX_DEPTH, NUMERIC_FIELDS, leaf

MAX_TEXT = 4096
"""Characters kept of any one text of an alert (a description, a name): the rest is cut
off with a marker, and `truncated` says how long each cut text was. Devices' texts are
short; a megabyte of description is a fault, and an event carries it into the outbox,
every sink and the alarm's stop (issue 8 item 10)."""
MAX_ITEMS = 256
"""Entries kept of any one list of an alert (repeated elements), for the same reason."""
_RENAMES = {"macAddress": "mac", "portNo": "port", "hddID": "disk"}
_STRUCTURED = frozenset({"DetectionRegionList"})

_keys: dict[str, str] = {}
"""Field name -> attribute name, remembered (field names repeat in every alert)."""


def _key(name: str) -> str:
    """The attribute name of an alert field: renamed, else snake_case."""
    key = _RENAMES.get(name) or snake(name) or "value"
    if len(_keys) < CACHE_MAX:
        _keys[name] = key
    return key


def alert_attributes(alert: dict[str, Any]) -> dict[str, Any]:
    """Every field of the alert, snake_case, flattened where that loses nothing; the
    detection regions as a list, with the first region's id, target and coordinates on top
    (what rules and automations key on)."""
    attributes, regions = placed_attributes(alert)
    if regions:
        first_target(attributes)
    return attributes


def placed_attributes(alert: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`alert_attributes` but for `first_target`, and whether the alert had regions.

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


def first_target(attributes: dict[str, Any]) -> None:
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
            numeric = name in NUMERIC_FIELDS and isinstance(value, str)
            out[key] = leaf(name, value) if numeric else value
    for key, value in nested:
        if isinstance(value, dict) and depth < MAX_DEPTH:
            _flatten(value, out, key, depth + 1)
        else:
            if parent and key in out:
                key = f"{parent}_{key}"
            if key not in out:
                out[key] = _snake_tree(value, depth + 1)


def _snake_tree(value: Any, depth: int) -> Any:
    """`value` with snake_case keys and numeric leaves, cut off below `MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        return "<truncated>"
    inner = depth + 1
    if isinstance(value, dict):
        keys = _keys
        if inner > MAX_DEPTH:
            return {(keys.get(k) or _key(k)): "<truncated>" for k in value}
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                v = _snake_tree(v, inner)
            elif k in NUMERIC_FIELDS and isinstance(v, str):
                v = leaf(k, v)
            out[keys.get(k) or _key(k)] = v
        return out
    if isinstance(value, list):
        if inner > MAX_DEPTH:
            return ["<truncated>"] * len(value)
        return [_snake_tree(v, inner) if isinstance(v, (dict, list)) else v for v in value]
    return value


def capped(value: Any, path: str, cut: dict[str, int]) -> Any:
    """`value` with every text longer than `MAX_TEXT` cut to it plus a marker and every
    list cut to `MAX_ITEMS` entries; the path and full length of each noted in `cut`."""
    if isinstance(value, str):
        if len(value) <= MAX_TEXT:
            return value
        cut[path or "value"] = len(value)
        return f"{value[:MAX_TEXT]}... [cut: {len(value)} characters]"
    if isinstance(value, dict):
        return {k: capped(v, f"{path}.{k}" if path else k, cut) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > MAX_ITEMS:
            cut[path or "value"] = len(value)
        return [capped(v, f"{path}[{i}]", cut) for i, v in enumerate(value[:MAX_ITEMS])]
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
        [leaf("positionX", p.get("positionX")), leaf("positionY", p.get("positionY"))]
        for p in points
        if isinstance(p, dict)
    ]
