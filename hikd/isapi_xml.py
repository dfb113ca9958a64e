"""Small, safe readers for the ISAPI XML documents hikd fetches itself."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse(body: bytes) -> ET.Element | None:
    """Parse an ISAPI reply; None for anything that is not plain, safe XML."""
    if _FORBIDDEN.search(body):
        return None  # no DTDs or entities: a device never needs them
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def local(tag: str) -> str:
    """``{namespace}name`` -> ``name``."""
    return tag.rsplit("}", 1)[-1]


def text_of(body: bytes, name: str) -> str:
    """The text of the first element called ``name`` (namespace ignored), or ""."""
    root = parse(body)
    if root is None:
        return ""
    for element in root.iter():
        if local(element.tag) == name:
            return (element.text or "").strip()
    return ""
