"""Health per concern: what is wrong now with each part of a device (or of hikd itself).

Health events arrive one by one (online, offline, disk_error start, status, ...); the
latest one alone says little ("status: ok" after a disk failed says nothing about the
disk). So each event is filed under its *concern* — ``connectivity``, ``arming``,
``disk/<n>``, ``recording``, ``status``, ``sink/<name>``, ``outbox`` — and each concern
keeps its own current state: ``ok``, or ``problem`` with the problems still open. A
poll that finds nothing new never overwrites a problem it did not end; a recovery ends
it. Events of no concern (one-off notes such as ``alarms_lost``) change nothing here.

The MQTT sink publishes this board retained: one topic per concern and a summary
(README, "Health events").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from hikd.events import Event

Action = Literal["ok", "problem", "open", "close"]
"""ok: the concern is fine now (every problem ends); problem: this one problem replaces
the others; open/close: one problem of several starts or ends."""

# type -> (concern, action) for pulses; start/stop events open and close.
_PULSES: dict[str, tuple[str, Action]] = {
    "online": ("connectivity", "ok"),
    "offline": ("connectivity", "problem"),
    "auth_failed": ("connectivity", "problem"),
    "armed": ("arming", "ok"),
    "rearmed": ("arming", "ok"),
    "arming_failed": ("arming", "problem"),
    "disarmed": ("arming", "problem"),
    "arming_lost": ("arming", "problem"),
    "arming_reconnect_closed": ("arming", "problem"),
}
_EPISODES: dict[str, str] = {
    "arming_reconnecting": "arming",
    "arming_stalled": "arming",
    "disk_error": "disk",
    "disk_full": "disk",
    "channel_not_recording": "recording",
    "video_signal_lost": "recording",
    "channel_offline": "recording",
    "channel_hardware_error": "recording",
    "sink_unavailable": "sink",
    "outbox_unwritable": "outbox",
}


def concern_of(event: Event) -> tuple[str, Action, str] | None:
    """(concern, action, problem key) of a health event; None if it concerns nothing."""
    if event.kind != "health":
        return None
    attrs = event.attributes
    if event.type == "status":
        available = attrs.get("available", True)
        return ("status", "ok" if available else "problem", "status")
    pulse = _PULSES.get(event.type)
    if pulse is not None:
        return (*pulse, event.type)
    concern = _EPISODES.get(event.type)
    if concern is None or event.state == "pulse":
        return None
    key = event.type
    if concern == "disk":
        concern = f"disk/{attrs.get('disk', '?')}"
    elif concern == "sink":
        concern = f"sink/{attrs.get('sink', '?')}"
    elif concern == "recording" and event.channel is not None:
        key = f"{event.type}/{event.channel}"
    return (concern, "open" if event.state == "start" else "close", key)


@dataclass(slots=True)
class Concern:
    problems: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Open problems: key -> {key, type, channel, since, attributes}."""
    since: str = ""
    """When the concern last changed between ok and problem."""
    last: dict[str, Any] = field(default_factory=dict)
    """The last event that touched it: {id, type, state, time}."""

    @property
    def state(self) -> str:
        return "problem" if self.problems else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since,
            "problems": list(self.problems.values()),
            "last": self.last,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Concern:
        problems = {
            str(p.get("key", p.get("type"))): dict(p)
            for p in data.get("problems", [])
            if isinstance(p, dict)
        }
        return cls(problems, str(data.get("since", "")), dict(data.get("last") or {}))


class HealthBoard:
    """The concerns of one device (or of ``hikd``)."""

    def __init__(self, concerns: dict[str, Concern] | None = None) -> None:
        self.concerns: dict[str, Concern] = concerns or {}

    def apply(self, event: Event) -> list[str]:
        """File ``event``; return the concerns it changed."""
        changed = self._known_disks(event)
        found = concern_of(event)
        if found is None:
            return changed
        name, action, key = found
        concern = self.concerns.setdefault(name, Concern())
        before = concern.state
        when = event.received.isoformat()
        problem = {
            "key": key,
            "type": event.type,
            "channel": event.channel,
            "since": when,
            "attributes": event.attributes,
        }
        if action == "ok":
            concern.problems.clear()
        elif action == "problem":
            concern.problems = {key: problem}
        elif action == "open":
            concern.problems.setdefault(key, problem)
        else:
            concern.problems.pop(key, None)
        if concern.state != before or not concern.since:
            concern.since = when
        concern.last = {"id": event.id, "type": event.type, "state": event.state, "time": when}
        return [*changed, name]

    def _known_disks(self, event: Event) -> list[str]:
        """A status poll lists the device's disks: each one is a concern from then on
        (``ok`` until a ``disk_error``/``disk_full`` says otherwise)."""
        if event.type != "status" or not event.attributes.get("available", True):
            return []
        new: list[str] = []
        for disk in event.attributes.get("disks") or []:
            number = disk.get("id") if isinstance(disk, dict) else None
            name = f"disk/{number}"
            if number is not None and name not in self.concerns:
                self.concerns[name] = Concern(since=event.received.isoformat())
                new.append(name)
        return new

    def summary(self) -> dict[str, Any]:
        """``{"state": "ok"|"problem", "problems": [concern, ...], "concerns": {name: state}}``."""
        states = {name: c.state for name, c in sorted(self.concerns.items())}
        problems = [name for name, state in states.items() if state != "ok"]
        return {"state": "problem" if problems else "ok", "problems": problems, "concerns": states}

    def to_dict(self) -> dict[str, Any]:
        return {name: c.to_dict() for name, c in self.concerns.items()}

    @classmethod
    def from_dict(cls, data: Any) -> HealthBoard:
        if not isinstance(data, dict):
            return cls()
        return cls({str(k): Concern.from_dict(v) for k, v in data.items() if isinstance(v, dict)})
