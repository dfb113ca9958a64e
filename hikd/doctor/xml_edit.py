"""The doctor's changes to a device's event set-up, made in the device's own XML text
(`hikd.xml_edit`): a "notify surveillance center" linkage added, an alarm host slot set.
"""

from __future__ import annotations

from hikd.xml_edit import EditError, check_kept, children, leaf, scan, spelled, text_of

__all__ = ["EditError", "add_center", "set_alarm_host"]

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
