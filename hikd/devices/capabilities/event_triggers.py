"""Which alarms a device can send, and where (``/ISAPI/Event/triggers``). Read at each
login (hikd/devices/identity.py), over ISAPI or, on a private session, through the vendor
library's ISAPI pass-through; best effort: a device without the list reports nothing.

Each ``EventTrigger`` names an event type and where it happens (``videoInputChannelID``,
an NVR's IP channels as ``dynVideoInputChannelID``; alarm inputs as ``inputIOPortID`` or
``dynInputIOPortID``) and its linkage; ``notificationMethod`` ``center`` ("notify
surveillance center") is what makes the device send the alarm to hikd (hikvision_next
reads the same list the same way). Element order, namespaces and case are free.
"""

from __future__ import annotations

from typing import Any

from hikd.devices.capabilities.channels import ChannelMap
from hikd.event_types import from_device_name
from hikd.isapi_xml import fields, first, named, parse

TRIGGERS_URL = "/ISAPI/Event/triggers"


def _number(values: dict[str, str], *names: str) -> tuple[int | None, str]:
    for name in names:
        text = values.get(name.lower(), "").strip()
        if text.isdigit() and int(text) > 0:
            return int(text), name
    return None, ""


def event_triggers(body: bytes, channels: ChannelMap) -> list[dict[str, Any]]:
    """Each trigger: the device's ``event_type``, hikd's ``channel`` or the alarm
    ``input`` (None when it names neither: a device-wide trigger such as a full disk), and
    whether it notifies hikd (``center``)."""
    root = parse(body)
    if root is None:
        return []
    out = []
    for element in named(root, "EventTrigger"):
        values = fields(element)
        event_type = first(values, "eventType")
        if not event_type:
            continue
        channel, field = _number(values, "dynVideoInputChannelID", "videoInputChannelID")
        if channel is not None and channels:
            channel = channels.from_alert(channel, dynamic=field.startswith("dyn"))
        alarm_input, _ = _number(values, "dynInputIOPortID", "inputIOPortID")
        methods = {
            first(fields(n), "notificationMethod").lower()
            for n in named(element, "EventTriggerNotification")
        }
        out.append(
            {
                "event_type": event_type,
                "channel": None if alarm_input is not None else channel,
                "input": alarm_input,
                "center": "center" in methods,
            }
        )
    return out


def supported_types(triggers: list[dict[str, Any]]) -> dict[str, list[int | str | None]]:
    """The alarm types the device sends to hikd (its triggers that notify the
    surveillance center) in hikd's names, each with where it can happen: channel numbers,
    ``input<N>``, or None for the device as a whole. In the device's order."""
    out: dict[str, list[int | str | None]] = {}
    for trigger in triggers:
        name = from_device_name(trigger["event_type"]) if trigger["center"] else None
        if not name:
            continue
        where = trigger["channel"]
        if trigger["input"] is not None:
            where = f"input{trigger['input']}"
        places = out.setdefault(name, [])
        if where not in places:
            places.append(where)
    return out
