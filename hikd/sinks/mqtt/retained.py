"""The retained picture the MQTT sink keeps on the broker: which messages an event makes
necessary (availability, health, alarm states, disks, Home Assistant discovery) and
everything to republish after a connect or Home Assistant's restart. No I/O: the sink
publishes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from hikd.events import Event
from hikd.sinks.mqtt.announce import Known, device_configs
from hikd.sinks.mqtt.discovery import Discovery, DiscoveryConfig, safe_id, unique_id
from hikd.sinks.mqtt.facts import HIKD_DEVICE
from hikd.sinks.mqtt.ha_alarms import (
    NOT_DISCOVERED,
    AlarmEntity,
    alarm_config,
    configured_entities,
    in_its_place,
    supported_entities,
)
from hikd.sinks.mqtt.ha_diagnostics import hikd_configs
from hikd.sinks.mqtt.leaving import Left, Withdrawals, leaving, retained_topics, take_over
from hikd.sinks.mqtt.state import AlarmKey, AlarmState, MqttState
from hikd.sinks.mqtt.topics import (
    AVAILABILITY,
    OFF,
    OFFLINE,
    ON,
    ONLINE,
    Message,
    Topics,
    of_the_past,
    where_of,
)


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def configured_devices(extra: Mapping[str, Any]) -> Callable[[], list[str] | None]:
    """The devices configured now, when the daemon tells (``devices`` in the sink context's
    extra: a callable); the retained picture forgets the others."""
    devices = extra.get("devices")
    if not callable(devices):
        return lambda: None
    return lambda: [str(name) for name in devices()]


class RetainedPicture:
    """What hikd has told the broker to remember, kept in `MqttState`."""

    def __init__(
        self,
        state: MqttState,
        topics: Topics,
        discovery: Discovery,
        announce: bool,
        discovery_types: list[str],
        backlog: Callable[[], int | None] = lambda: None,
        configured: Callable[[], list[str] | None] = lambda: None,
    ) -> None:
        self.state = state
        self.topics = topics
        self.discovery = discovery
        self.announce = announce
        """Home Assistant discovery on (``[sinks.mqtt] discovery``)."""
        self.discovery_types = discovery_types
        self.backlog = backlog
        """How many events wait in the outbox for this sink (None: not known)."""
        self.configured = configured
        """The devices in hikd's configuration now (None: not known)."""
        self._info = b""
        self.withdrawals = Withdrawals()
        """Removed devices' configs waiting for the devices added with them."""

    def republish(self, discovery_first: bool) -> list[Message]:
        """Everything retained, from memory, in order: status, hikd's facts, then per device
        availability, health and disks, alarm states, and discovery (first when Home
        Assistant asked for it)."""
        configs: list[DiscoveryConfig] = []
        # A device removed from the file while hikd was stopped leaves as a reload's does.
        messages: list[Message] = self.forget(self._not_configured())
        # What waits is settled here: a renamed device takes over (republished below), the
        # other configs are among those announced before and not now (withdrawn below).
        take_over(self.state, self.withdrawals.take()[1])
        if self.announce:
            before = self._announced_before()
            self._forget_misplaced()
            configs.extend(hikd_configs(self.discovery))
            for name in list(self.state.devices):
                self.add_configured(name)
                configs.extend(self.device_discovery(name))
            now = {c.topic for c in configs}
            # Home Assistant removes an entity whose config is empty.
            messages.extend(Message(t, b"", retain=True) for t in sorted(before - now))
            self.state.announced = now
            self.state.dirty = True
        if discovery_first:
            messages.extend(c.message() for c in configs)
        messages.append(Message(self.topics.status(), ONLINE.encode(), True))
        self._info = b""
        messages.extend(self.info_messages())
        for name, device in self.state.devices.items():
            if device.availability:
                messages.append(
                    Message(self.topics.availability(name), device.availability.encode(), True)
                )
            messages.extend(self.health_messages(name, list(device.health.concerns)))
            messages.extend(self.disk_messages(name, list(device.disks)))
        messages.extend(self.state_message(key) for key in self.state.alarms)
        if not discovery_first:
            messages.extend(c.message() for c in configs)
        return messages

    def _not_configured(self) -> list[str]:
        names = self.configured()
        if names is None:
            return []
        return [n for n in self.state.devices if n not in names and n != HIKD_DEVICE]

    def _forget_misplaced(self) -> None:
        """Forget alarm entities in a place their type never happens that show nothing
        (an older hikd announced alarm inputs on video channels and disks on the device:
        their topics never got a state)."""
        for key in [k for k, a in self.state.alarms.items() if a.value == OFF]:
            if not in_its_place(key[1], key[2]):
                del self.state.alarms[key]
                self.state.dirty = True

    def _announced_before(self) -> set[str]:
        """What was announced before. A state file from before this was kept: every alarm
        entity an older hikd announced (all binary sensors then)."""
        if self.state.announced is not None:
            return set(self.state.announced)
        prefix = self.discovery.prefix
        before = {
            f"{prefix}/binary_sensor/{unique_id(self.state.device(name).facts, where, type_)}"
            "/config"
            for name, where, type_ in self.state.alarms
        }
        for device in self.state.devices.values():
            ident = safe_id(f"hikd_{device.facts.identifier}")
            before.add(f"{prefix}/binary_sensor/{ident}_connectivity/config")
            before.add(f"{prefix}/sensor/{ident}_health/config")
        return before

    def _announced(self, messages: list[Message]) -> None:
        """Remember the discovery topics among `messages` (an empty one withdraws)."""
        if self.state.announced is None:
            self.state.announced = set()
        for m in messages:
            if m.topic.startswith(f"{self.discovery.prefix}/") and m.topic.endswith("/config"):
                if m.payload:
                    self.state.announced.add(m.topic)
                else:
                    self.state.announced.discard(m.topic)

    def info_messages(self) -> list[Message]:
        """hikd's facts on ``<prefix>/info``, when they changed since last published."""
        online = sum(
            1
            for name, d in self.state.devices.items()
            if name != HIKD_DEVICE and d.availability == ONLINE
        )
        info = {
            "version": self.discovery.origin_version,
            "instance_id": self.discovery.instance_id,
            "devices_online": online,
            "outbox_backlog": self.backlog(),
        }
        data = _json(info)
        if data == self._info:
            return []
        self._info = data
        return [Message(self.topics.info(), data, True)]

    def health_messages(self, name: str, concerns: list[str]) -> list[Message]:
        """The retained summary and the given concerns of one device (`hikd.health`)."""
        board = self.state.device(name).health
        if not board.concerns:
            return []
        messages = [
            Message(self.topics.concern(name, c), _json(board.concerns[c].to_dict()), True)
            for c in concerns
        ]
        messages.append(Message(self.topics.health(name), _json(board.summary()), True))
        return messages

    def disk_messages(self, name: str, disks: list[int]) -> list[Message]:
        device = self.state.device(name)
        return [
            Message(self.topics.disk(name, disk), _json(device.disks[disk]), True) for disk in disks
        ]

    def state_message(self, key: AlarmKey) -> Message:
        name, channel, type_ = key
        value = self.state.alarms[key].value
        return Message(self.topics.state(name, channel, type_), value.encode(), retain=True)

    def add_configured(self, name: str) -> list[AlarmKey]:
        """Give the configured types (`discovery_types`) and those the device reports it
        supports an ``OFF`` state everywhere they can happen, so their entities show
        "clear" rather than "unknown" before the first alarm."""
        added: list[AlarmKey] = []
        facts = self.state.device(name).facts
        if facts.is_hikd:
            return added
        entities = configured_entities(facts, self.discovery_types)
        for entity in [*entities, *supported_entities(facts)]:
            key = (name, entity.channel, entity.type)
            if key not in self.state.alarms:
                self.state.alarms[key] = AlarmState(OFF, entity.pulse)
                self.state.dirty = True
                added.append(key)
        return added

    def device_discovery(self, name: str) -> list[DiscoveryConfig]:
        device = self.state.device(name)
        known = Known(
            device.facts,
            self.state.find(device.facts.via),
            self.state.alarms_of(name),
            list(device.health.concerns),
            sorted(device.disks),
        )
        return device_configs(self.discovery, known)

    def _learn_disks(self, name: str, event: Event) -> list[int]:
        """A status poll's disks (``attributes.disks``); returns the disks that changed."""
        disks = event.attributes.get("disks")
        if event.kind != "health" or event.type != "status" or not isinstance(disks, list):
            return []
        device = self.state.device(name)
        changed = []
        for disk in disks:
            number = _int(disk.get("id")) if isinstance(disk, dict) else None
            if number is None:
                continue
            now = {k: disk.get(k) for k in ("status", "capacity_mb", "free_mb")}
            if device.disks.get(number) != now:
                device.disks[number] = now
                changed.append(number)
        if changed:
            self.state.dirty = True
        return changed

    def forget(self, names: list[str], added: list[str] | None = None) -> list[Message]:
        """Devices a reload removed or disabled: each entity announced for them leaves Home
        Assistant (an empty retained config removes it) and each retained topic of theirs
        (availability, health, disks, alarm states, pictures) is cleared (an empty retained
        message deletes it on the broker), so nothing of them is shown or republished. A
        device added back is announced again by its first event, as at a start. The configs
        wait for the devices the same reload `added` (`hikd.sinks.mqtt.leaving`)."""
        gone = [n for n in names if n in self.state.devices and n != HIKD_DEVICE]
        if not gone:
            return []
        withdrawn: list[str] = []
        if self.announce:
            announced = self.state.announced or set()
            for name in gone:
                withdrawn += [c.topic for c in self.device_discovery(name)]
                # And whatever else was announced under its unique ids (an older hikd's).
                ident = f"/{safe_id(f'hikd_{self.state.devices[name].facts.identifier}_')}"
                withdrawn += sorted(t for t in announced if ident in t)
        messages: list[Message] = []
        left: Left = {}
        for name in gone:
            alarms = [(k, a) for k, a in self.state.alarms.items() if k[0] == name]
            device = self.state.devices.pop(name)
            left[name] = (device, alarms)
            for key, _ in alarms:
                del self.state.alarms[key]
            topics = retained_topics(self.topics, name, device, [k for k, _ in alarms])
            messages.extend(Message(t, b"", retain=True) for t in topics)
        self.state.dirty = True
        self.withdrawals.add(withdrawn, left, added or [], self._settled())
        if self.withdrawals.due(self._settled()):
            messages.extend(self._settle())
        return [*messages, *self.info_messages()]

    def _settle(self) -> list[Message]:
        """The removed devices' entities: a renamed one's go to its new name (`take_over`),
        the others are withdrawn."""
        topics, left = self.withdrawals.take()
        messages: list[Message] = []
        for heir in take_over(self.state, left):
            device = self.state.devices[heir]
            messages.extend(self.health_messages(heir, list(device.health.concerns)))
            messages.extend(self.disk_messages(heir, list(device.disks)))
            messages.extend(self.state_message(k) for k in self.state.alarms if k[0] == heir)
            if self.announce:
                messages.extend(c.message() for c in self.device_discovery(heir))
        messages.extend(self._withdraw(topics))
        return messages

    def _settled(self) -> set[str]:
        """The devices whose serial is known (their unique ids are settled), and those that
        could not log in (``offline``, ``auth_failed``: no serial soon), also before the
        reload's event reached the sink."""
        devices = self.state.devices.items()
        return {name for name, d in devices if d.facts.serial or d.availability == OFFLINE}

    def _withdraw(self, topics: set[str]) -> list[Message]:
        """Empty configs for `topics` that no device (hikd included) announces now."""
        kept = {c.topic for c in hikd_configs(self.discovery)}
        kept |= {c.topic for name in self.state.devices for c in self.device_discovery(name)}
        messages = [Message(t, b"", retain=True) for t in sorted(topics - kept)]
        self._announced(messages)
        return messages

    def learn(self, event: Event) -> list[Message]:
        """Update the retained picture with `event`; return the untracked messages this
        makes necessary first: discovery for a new device, new facts, a new alarm entity,
        concern or disk, and the ``OFF`` states of newly announced entities; for a reload,
        the removal of the devices it removed (`forget`)."""
        discovery = self.announce
        name = event.device.name
        messages = self._reloaded(event) if event.type == "reload" else []
        known = name in self.state.devices
        device = self.state.device(name)
        announce_device = not known
        facts = device.facts.updated_from(event)
        if facts != device.facts:
            if known and device.facts.serial and facts.serial != device.facts.serial:
                # Another device under this name (a reload pointed it elsewhere, or it was
                # replaced): the old one's entities, channels and states are not its own.
                messages.extend(self.forget([name]))
                known, device = False, self.state.device(name)
                facts = device.facts.updated_from(event)
            elif discovery and known and facts.identifier != device.facts.identifier:
                # New unique ids: remove the entities announced under the old ones.
                messages.extend(
                    Message(c.topic, b"", retain=True) for c in self.device_discovery(name)
                )
            device.facts = facts
            self.state.dirty = True
            announce_device = True
        if event.kind == "health":
            availability = AVAILABILITY.get(event.type)
            if availability is not None:
                device.availability = availability
            before = set(device.health.concerns)
            changed = device.health.apply(event)
            if changed:
                messages.extend(self.health_messages(name, changed))
            announce_device |= bool(set(device.health.concerns) - before)
            disks_before = set(device.disks)
            disks = self._learn_disks(name, event)
            messages.extend(self.disk_messages(name, disks))
            announce_device |= bool(set(device.disks) - disks_before)
            self.state.dirty = True
        new_states: list[AlarmKey] = []
        if event.kind == "alarm" and event.type not in NOT_DISCOVERED and not of_the_past(event):
            key = (name, where_of(event), event.type)
            alarm = self.state.alarms.get(key)
            pulse = event.state == "pulse"
            value = ON if event.state == "start" else OFF
            if alarm is None or (pulse and not alarm.pulse):
                # New, or first seen as a pulse: (re)announce it, now with off_delay.
                alarm = self.state.alarms[key] = AlarmState(value, pulse)
                self.state.dirty = True
                if pulse:
                    # The retained resting state; the pulse's own ON is not retained.
                    new_states.append(key)
                if discovery and not announce_device:
                    entity = AlarmEntity(where_of(event), event.type, alarm.pulse)
                    parent = self.state.find(device.facts.via)
                    messages.append(
                        alarm_config(self.discovery, device.facts, entity, parent).message()
                    )
            elif alarm.value != value:
                alarm.value = value
                self.state.dirty = True
        if announce_device and discovery:
            new_states.extend(self.add_configured(name))
            messages.extend(c.message() for c in self.device_discovery(name))
        messages.extend(self.state_message(key) for key in new_states)
        if event.kind == "health" and event.type in AVAILABILITY:
            messages.extend(self.info_messages())
        if discovery:
            self._announced(messages)
        if self.withdrawals.left and self.withdrawals.due(self._settled()):
            messages.extend(self._settle())
        return messages

    def _reloaded(self, event: Event) -> list[Message]:
        return self.forget(*leaving(event, self.state))
