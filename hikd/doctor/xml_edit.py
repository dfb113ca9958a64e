"""Changes to a device's own XML, made in its text: nothing else in the document moves.

A document parsed and written again is not the device's any more: ElementTree renames the
namespaces (``ns0:``), and a document rebuilt from what a client understood loses the
elements it did not (``dynVideoInputID`` in an NVR's linkage); real devices answer 400 to
it (peers.md, techmarkai/hikvision-nvr-ha). So the doctor finds the element to change with
a small tag scanner and inserts or replaces text there, in the device's own spelling (its
namespace prefix and its case), and checks the result: it parses, and every element of the
original is still there.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from hikd.isapi_xml import key, parse

_TAG = re.compile(r"<(/?)([A-Za-z_][\w.:-]*)((?:\s[^<>]*?)?)(/?)>")


class EditError(Exception):
    """The document is not one the doctor can change safely."""


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


CENTER_ENTRY = ("center", "center", "beginning")
"""id, notificationMethod, notificationRecurrence of "notify surveillance center"."""


def add_center(body: bytes) -> tuple[bytes, str] | None:
    """`body` (an ``EventTrigger`` or ``EventTriggerNotificationList`` document) with a
    "notify surveillance center" linkage added, and the XML added; None if it has one."""
    text = body.decode("utf-8")
    elements = scan(text)
    if not elements:
        raise EditError("not an XML document")
    for existing in (e for e in elements if e.local == "eventtriggernotification"):
        for child in children(elements, existing):
            if child.local == "notificationmethod" and text_of(text, child).lower() == "center":
                return None
    lists = [e for e in elements if e.local == "eventtriggernotificationlist"]
    root = elements[0]
    if lists:
        target = lists[0]
        model = target.name
    elif root.local == "eventtrigger":
        target = root
        model = spelled(root.name, "EventTriggerNotificationList")
    else:
        raise EditError(f"<{root.name}> is not an event trigger document")
    entry_tag = spelled(model, "EventTriggerNotification")
    entry_id, method, recurrence = CENTER_ENTRY
    entry = (
        f"<{entry_tag}>"
        + leaf(model, "id", entry_id)
        + leaf(model, "notificationMethod", method)
        + leaf(model, "notificationRecurrence", recurrence)
        + f"</{entry_tag}>"
    )
    if target is root and not lists:
        added = f"<{model}>{entry}</{model}>"
        new = text[: root.inner_end] + added + text[root.inner_end :]
    elif target.self_closing:
        added = entry
        open_tag = text[target.start : target.end][:-2].rstrip()
        new = text[: target.start] + f"{open_tag}>{entry}</{target.name}>" + text[target.end :]
    else:
        added = entry
        new = text[: target.inner_end] + entry + text[target.inner_end :]
    result = new.encode("utf-8")
    check_kept(body, result)
    return result, added


def set_alarm_host(
    body: bytes, slot_id: str, address: str, port: int, url: str
) -> tuple[bytes, str]:
    """`body` (``HttpHostNotificationList``) with slot `slot_id` pointing at
    ``http://address:port url``; the other slots and every other element stay as they are."""
    text = body.decode("utf-8")
    elements = scan(text)
    slots = [e for e in elements if e.local == "httphostnotification"]
    for slot in slots:
        ids = [c for c in children(elements, slot) if c.local == "id"]
        if ids and text_of(text, ids[0]) == slot_id:
            break
    else:
        raise EditError(f"the device has no alarm host slot {slot_id}")
    wanted = {
        "url": url,
        "protocolType": "HTTP",
        "parameterFormatType": "XML",
        "addressingFormatType": "ipaddress",
        "ipAddress": address,
        "portNo": str(port),
    }
    present = {c.local: c for c in children(elements, slot) if not children(elements, c)}
    edits: list[tuple[int, int, str]] = []
    missing = ""
    changed = []
    for name, value in wanted.items():
        child = present.get(name.lower())
        if child is None:
            missing += leaf(slot.name, name, value)
            changed.append(f"{name}={value}")
        elif text_of(text, child) != value:
            edits.append((child.start, child.end, f"<{child.name}>{value}</{child.name}>"))
            changed.append(f"{name}={value}")
    if missing:
        edits.append((slot.inner_end, slot.inner_end, missing))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    result = text.encode("utf-8")
    check_kept(body, result)
    return result, ", ".join(changed)
