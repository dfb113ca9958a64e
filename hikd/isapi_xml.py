"""Small, safe readers for the ISAPI XML documents hikd fetches itself.

Devices differ in how they write the same document: with or without a namespace (often
two: ver10 and ver20 in one reply), elements in any order, extra elements of their own
(``<Extensions>``, ``<Encryption>``), and names in different case across firmware
(``ioPortID``/``ioPortId``). So every name here is matched without its namespace and
without regard to case, and only the elements asked for are read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_MAX_DEPTH = 16
"""Deeper than any document hikd reads: `as_dict` stops there."""


def parse(body: bytes) -> ET.Element | None:
    """Parse an ISAPI reply; None for anything that is not plain, safe XML."""
    if _FORBIDDEN.search(body):
        return None  # no DTDs or entities: a device never needs them
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def local(tag: Any) -> str:
    """``{namespace}name`` -> ``name`` ("" for comments and processing instructions)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def key(tag: Any) -> str:
    """The name an element is matched by: no namespace, lower case."""
    return local(tag).lower()


def named(root: ET.Element, *names: str) -> Iterator[ET.Element]:
    """Every element under `root` (itself included) called one of `names`."""
    wanted = {n.lower() for n in names}
    return (el for el in root.iter() if key(el.tag) in wanted)


def fields(element: ET.Element) -> dict[str, str]:
    """The texts of `element`'s own leaf children by `key` (the first of a repeated name);
    nested elements (extensions) are not looked into."""
    out: dict[str, str] = {}
    for child in element:
        name = key(child.tag)
        if name and len(child) == 0 and name not in out:
            out[name] = (child.text or "").strip()
    return out


def first(values: dict[str, str], *names: str) -> str:
    """The first of `names` (matched by `key`) that `values` holds with a text, else ""."""
    for name in names:
        text = values.get(name.lower(), "")
        if text:
            return text
    return ""


def text_of(body: bytes, name: str) -> str:
    """The text of the first element called ``name`` (namespace and case ignored), or ""."""
    root = parse(body)
    if root is None:
        return ""
    for element in named(root, name):
        return (element.text or "").strip()
    return ""


def as_dict(element: ET.Element, depth: int = 0) -> dict[str, Any]:
    """`element` as a JSON-like dict: children by local name, texts for leaves, a list
    where a name repeats (what the JSON form of the same document holds)."""
    out: dict[str, Any] = {}
    if depth > _MAX_DEPTH:
        return out
    for child in element:
        name = local(child.tag)
        if not name:
            continue
        value: Any = as_dict(child, depth + 1) if len(child) else (child.text or "").strip()
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out
