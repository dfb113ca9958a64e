"""Changes to a device's own XML, made in its text: nothing else in the document moves.

A document parsed and written again is not the device's any more: ElementTree renames the
namespaces (``ns0:``), and a document rebuilt from what a client understood loses the
elements it did not (``dynVideoInputID`` in an NVR's linkage, the lines and regions of a
detection); real devices answer 400 to it (peers.md, techmarkai/hikvision-nvr-ha). So hikd
finds the element to change with a small tag scanner and inserts or replaces text there, in
the device's own spelling (its namespace prefix and its case), and checks the result: it
parses, and every element of the original is still there. Used by ``hikd doctor --fix``
(`hikd.doctor.xml_edit`) and by commands that switch a detection (`hikd.devices.commands`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from hikd.isapi_xml import key, parse

_TAG = re.compile(r"<(/?)([A-Za-z_][\w.:-]*)((?:\s[^<>]*?)?)(/?)>")


class EditError(Exception):
    """The document is not one hikd can change safely."""


@dataclass(frozen=True, slots=True)
class Element:
    name: str
    """As written, prefix included."""
    start: int
    """Where its start tag begins."""
    inner_start: int
    inner_end: int
    """Its content (empty for ``<x/>``)."""
    end: int
    """Just past its end tag."""
    depth: int
    self_closing: bool

    @property
    def local(self) -> str:
        return self.name.rpartition(":")[2].lower()


def scan(text: str) -> list[Element]:
    """Every element of `text`, in document order (comments and CDATA are not expected in
    device documents; a document with them is refused)."""
    if "<!--" in text or "<![CDATA[" in text:
        raise EditError("the document holds comments or CDATA")
    stack: list[tuple[str, int, int]] = []
    found: list[Element] = []
    for match in _TAG.finditer(text):
        closing, name, _attrs, empty = match.groups()
        if closing:
            if not stack or stack[-1][0] != name:
                raise EditError(f"unbalanced </{name}>")
            open_name, start, inner = stack.pop()
            found.append(
                Element(open_name, start, inner, match.start(), match.end(), len(stack), False)
            )
        elif empty:
            found.append(
                Element(
                    name, match.start(), match.end(), match.end(), match.end(), len(stack), True
                )
            )
        else:
            stack.append((name, match.start(), match.end()))
    if stack:
        raise EditError(f"<{stack[-1][0]}> is not closed")
    return sorted(found, key=lambda e: e.start)


def spelled(model: str, name: str) -> str:
    """`name` in the spelling of element name `model`: its prefix, and lower case if it is."""
    prefix = model.rpartition(":")[0]
    local = model.rpartition(":")[2]
    if local == local.lower():
        name = name.lower()
    return f"{prefix}:{name}" if prefix else name


def leaf(model: str, name: str, value: str) -> str:
    tag = spelled(model, name)
    return f"<{tag}>{value}</{tag}>"


def children(elements: list[Element], parent: Element) -> list[Element]:
    return [
        e
        for e in elements
        if e.depth == parent.depth + 1 and parent.inner_start <= e.start < parent.inner_end
    ]


def text_of(text: str, element: Element) -> str:
    return text[element.inner_start : element.inner_end].strip()


def check_kept(before: bytes, after: bytes) -> None:
    """Raise `EditError` unless `after` parses and keeps every element of `before`."""
    old, new = parse(before), parse(after)
    if old is None or new is None:
        raise EditError("the changed document does not parse")
    if not _paths(old, leaves_only=True) <= _paths(new):
        raise EditError("the change would lose elements of the device's document")


def _paths(root: ET.Element, leaves_only: bool = False) -> set[tuple[str, ...]]:
    """The paths (local names, case ignored) of the elements under `root`."""
    out: set[tuple[str, ...]] = set()
    stack: list[tuple[ET.Element, tuple[str, ...]]] = [(root, ())]
    while stack:
        element, path = stack.pop()
        for child in element:
            here = (*path, key(child.tag))
            if len(child):
                stack.append((child, here))
            if not (leaves_only and len(child)):
                out.add(here)
    return out


def set_own_text(body: bytes, name: str, value: str) -> bytes:
    """`body` with the text of its root's own child `name` (any prefix, any case) set to
    `value`; raises `EditError` when the root has no such child."""
    text = body.decode("utf-8")
    elements = scan(text)
    if not elements:
        raise EditError("not an XML document")
    for child in children(elements, elements[0]):
        if child.local != name.lower():
            continue
        if child.self_closing:
            open_tag = text[child.start : child.end][:-2].rstrip()
            new = text[: child.start] + f"{open_tag}>{value}</{child.name}>" + text[child.end :]
        else:
            new = text[: child.inner_start] + value + text[child.inner_end :]
        result = new.encode("utf-8")
        check_kept(body, result)
        return result
    raise EditError(f"<{elements[0].name}> has no <{name}> of its own")
