"""Devices that leave Home Assistant (a reload removed them, or hikd started without them):
which retained topics of theirs to clear, and the discovery configs that wait to be
withdrawn.

A device renamed in the file is removed and added by the same reload. Its entities are tied
to its serial, so the new name announces the very configs the old one did; withdrawing them
before the new name has logged in and said its serial would make Home Assistant delete the
entities (and their history) and create new ones. So the removed devices' configs wait for
the devices the reload added at the address of a removed one (`leaving`), until each
has said who it is (its serial) or that it cannot log in (``offline``, ``auth_failed``), or
`WAIT_S` has passed (then with the next event or reconnect); those no device announces then
are withdrawn. Without such a device they are withdrawn at the reload itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from hikd.events import Event
from hikd.sinks.mqtt.facts import removed_devices
from hikd.sinks.mqtt.state import AlarmKey, AlarmState, DeviceState, MqttState
from hikd.sinks.mqtt.topics import OFF, Topics

WAIT_S = 60.0
"""The longest a removed device's configs wait for the devices added with it."""


def retained_topics(
    topics: Topics, name: str, device: DeviceState, alarms: list[AlarmKey]
) -> list[str]:
    """Every retained topic hikd may have published for the device `name`."""
    found = [topics.availability(name), topics.health(name)]
    found += [topics.concern(name, c) for c in device.health.concerns]
    found += [topics.disk(name, disk) for disk in device.disks]
    found += [topics.picture(name, c) for c in device.facts.channels()]
    for key in alarms:
        found += [topics.state(*key), topics.image(*key)]
    return list(dict.fromkeys(found))


def leaving(event: Event, state: MqttState) -> tuple[list[str], list[str]]:
    """The devices a reload (`event`) removed, and those it added that may be one of them
    under a new name: the ones at the address (``host:port``) of a removed one. A device
    given a new name and a new address in one edit is taken for another: its entities are
    withdrawn and announced anew."""
    removed = removed_devices(event)
    added = event.attributes.get("added")
    if not isinstance(added, list):
        return removed, []
    at = event.attributes.get("added_at")
    if not isinstance(at, Mapping):  # stored by an older hikd: any of them may be
        return removed, [str(name) for name in added]
    places = {state.devices[n].facts.address for n in removed if n in state.devices}
    return removed, [str(name) for name in added if at.get(name) in places - {""}]


Left = dict[str, tuple[DeviceState, list[tuple[AlarmKey, AlarmState]]]]
"""Removed device -> what the sink knew of it: its state and its alarm entities."""


@dataclass(slots=True)
class Withdrawals:
    """Discovery configs of removed devices, waiting for the devices added with them."""

    topics: set[str] = field(default_factory=set)
    left: Left = field(default_factory=dict)
    waiting_for: set[str] = field(default_factory=set)
    """Devices the reload added that have not said their serial yet."""
    until: float = 0.0

    def add(self, topics: list[str], left: Left, added: list[str], known: set[str]) -> None:
        """Keep `topics` until each of `added` is among `known` (has a serial, or could not
        log in)."""
        self.topics.update(topics)
        self.left.update(left)
        self.waiting_for |= set(added) - known
        self.until = time.monotonic() + WAIT_S

    def due(self, known: set[str]) -> bool:
        """Whether what waits may be settled now."""
        if not self.topics and not self.left:
            return False
        self.waiting_for -= known
        return not self.waiting_for or time.monotonic() >= self.until

    def take(self) -> tuple[set[str], Left]:
        taken = self.topics, self.left
        self.topics, self.left, self.waiting_for = set(), {}, set()
        return taken


def take_over(state: MqttState, left: Left) -> list[str]:
    """A device the reload added that is one it removed (the same serial: renamed in the
    file) takes over the removed one's alarm entities (``OFF``: its alarms were ended at the
    removal), health concerns and disks, so their entities stay in Home Assistant, now on
    its own topics. The devices that took over something."""
    by_serial = {d.facts.serial: n for n, d in state.devices.items() if d.facts.serial}
    heirs: list[str] = []
    for old, alarms in left.values():
        heir = by_serial.get(old.facts.serial) if old.facts.serial else None
        if heir is None:
            continue
        device = state.devices[heir]
        for (_, where, type_), alarm in alarms:
            state.alarms.setdefault((heir, where, type_), AlarmState(OFF, alarm.pulse))
        for name, concern in old.health.concerns.items():
            device.health.concerns.setdefault(name, concern)
        for disk, seen in old.disks.items():
            device.disks.setdefault(disk, seen)
        state.dirty = True
        heirs.append(heir)
    return heirs
