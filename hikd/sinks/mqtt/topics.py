"""Where the MQTT sink publishes what: topic names and payloads (architecture.md, "MQTT layout").

Pure functions, no network: `event_messages()` says which messages one event becomes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

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
    as_json = event.to_json().encode()
    messages = [Message(topics.events(device), as_json, retain=False)]
    if event.kind == "alarm" and not of_the_past(event):
        topic = topics.state(device, where_of(event), event.type)
        if event.state == "start":
            messages.append(Message(topic, ON.encode(), retain=True))
        elif event.state == "stop":
            messages.append(Message(topic, OFF.encode(), retain=True))
        else:
            messages.append(Message(topic, ON.encode(), retain=False))
    elif event.kind == "health":
        # The retained health (summary and concerns) is the sink's board, not the event.
        availability = AVAILABILITY.get(event.type)
        if availability is not None:
            messages.append(Message(topics.availability(device), availability.encode(), True))
    return messages
