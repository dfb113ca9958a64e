"""Where the MQTT sink publishes what: topic names and payloads (architecture.md, "MQTT layout").

Pure functions, no network: `event_messages()` says which messages one event becomes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from hikd.event_types import EVENT_TYPES
from hikd.events import Event

ON = "ON"
OFF = "OFF"
ONLINE = "online"
OFFLINE = "offline"
AVAILABILITY: dict[str, str] = {ONLINE: ONLINE, OFFLINE: OFFLINE, "auth_failed": OFFLINE}
"""Health event types that also set ``<prefix>/<device>/availability``, and to what."""

_NOT_IN_A_LEVEL = re.compile(r"[/+#\x00]")


@lru_cache(maxsize=4096)  # device names and types: few, and asked for with every event
def topic_level(text: str) -> str:
    """`text` made safe as one topic level: ``/`` would split it, ``+``/``#`` are wildcards
    that a broker refuses in a published topic, NUL is forbidden."""
    cleaned = _NOT_IN_A_LEVEL.sub("_", text).strip()
    return cleaned or "_"


Where = int | str | None
"""Where on the device an alarm is: a video channel (int), an alarm input (``input2``), a
disk (``disk1``), or the device itself (None)."""


def where_of(event: Event) -> Where:
    """Alarm inputs and disks have no video channel, but each is its own sensor."""
    if event.channel is not None:
        return event.channel
    for key, prefix in (("alarm_input", "input"), ("disk", "disk")):
        value = event.attributes.get(key)
        if isinstance(value, int):
            return f"{prefix}{value}"
    return None


def channel_level(channel: Where) -> str:
    """Events that belong to no channel (illegal access, ...) live under ``device``."""
    return "device" if channel is None else str(channel)


class Message(NamedTuple):
    """One MQTT message (a tuple: the MQTT client takes it as it is)."""

    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic layout under one prefix (``hikd`` by default)."""

    prefix: str

    def status(self) -> str:
        return f"{self.prefix}/status"

    def availability(self, device: str) -> str:
        return f"{self.prefix}/{topic_level(device)}/availability"

    def events(self, device: str) -> str:
        return f"{self.prefix}/{topic_level(device)}/events"

    def health(self, device: str) -> str:
        """The summary of every concern's health (`hikd.health`)."""
        return f"{self.prefix}/{topic_level(device)}/health"

    def concern(self, device: str, concern: str) -> str:
        """One concern's health: ``.../health/connectivity``, ``.../health/disk/1``."""
        levels = "/".join(topic_level(part) for part in concern.split("/"))
        return f"{self.health(device)}/{levels}"

    def state(self, device: str, channel: Where, type_: str) -> str:
        return f"{self.prefix}/{topic_level(device)}/{channel_level(channel)}/{topic_level(type_)}"

    def image(self, device: str, channel: Where, type_: str) -> str:
        return self.state(device, channel, type_) + "/image"

    def picture(self, device: str, channel: Where) -> str:
        """The latest picture of a channel, whatever brought it (an alarm, a snapshot)."""
        return f"{self.prefix}/{topic_level(device)}/{channel_level(channel)}/image"

    def event(self, device: str, channel: Where, type_: str) -> str:
        """One-shot alarms as JSON for Home Assistant's ``event`` entities; not retained."""
        return self.state(device, channel, type_) + "/event"

    def disk(self, device: str, disk: int) -> str:
        """A disk's status, capacity and free space as a status poll last saw them."""
        return f"{self.prefix}/{topic_level(device)}/disk{disk}/state"

    def info(self) -> str:
        """hikd's own facts: version, instance, devices online, outbox backlog."""
        return f"{self.prefix}/info"


ONE_SHOT_ENTITIES = frozenset(
    name for name, row in EVENT_TYPES.items() if row.component == "event" and name != "unknown"
)
"""Types that are Home Assistant ``event`` entities (the table's one-shot types)."""

_NOT_AN_EVENT_ATTRIBUTE = frozenset({"pictures", "truncated"})


def event_entity_payload(event: Event) -> bytes:
    """What a Home Assistant ``event`` entity takes: ``event_type`` and, as its attributes,
    what the device said (plate number, face data, rule and region, target rectangle)."""
    data: dict[str, object] = {
        k: v for k, v in event.attributes.items() if k not in _NOT_AN_EVENT_ATTRIBUTE
    }
    data.update(event_type=event.type, id=event.id, time=event.time.isoformat())
    if event.channel is not None:
        data["channel"] = event.channel
    if event.files:
        data["files"] = list(event.files)
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def of_the_past(event: Event) -> bool:
    """A backfilled or re-sent alarm: it goes to the events topic but never changes the
    current state a state topic shows."""
    return bool(event.attributes.get("backfilled") or event.attributes.get("resent"))


def event_messages(topics: Topics, event: Event) -> list[Message]:
    """Every message one event becomes, the event itself first.

    A ``pulse`` alarm has no end, so its ``ON`` is not retained: the retained value of a
    state topic stays the resting state and a late subscriber never sees a stale ``ON``
    (Home Assistant turns the pulse off itself with ``off_delay``).
    """
    device = event.device.name
    as_json = event.to_json_bytes()
    messages = [Message(topics.events(device), as_json, retain=False)]
    if event.kind == "alarm" and not of_the_past(event):
        topic = topics.state(device, where_of(event), event.type)
        if event.state == "start":
            messages.append(Message(topic, ON.encode(), retain=True))
        elif event.state == "stop":
            messages.append(Message(topic, OFF.encode(), retain=True))
        else:
            messages.append(Message(topic, ON.encode(), retain=False))
        if event.type in ONE_SHOT_ENTITIES:
            event_topic = topics.event(device, where_of(event), event.type)
            messages.append(Message(event_topic, event_entity_payload(event), retain=False))
    elif event.kind == "health":
        # The retained health (summary and concerns) is the sink's board, not the event.
        availability = AVAILABILITY.get(event.type)
        if availability is not None:
            messages.append(Message(topics.availability(device), availability.encode(), True))
    return messages
