"""Home Assistant entities for alarms: a binary sensor per (where, type) for alarms that
start and stop, an ``event`` entity for one-shot types (faces, plates), and an ``image``
entity per channel (hikd/event_types.py says which type is which).

Entity names are a person's words; Home Assistant puts the device's name in front:
"Front door" + "Line crossing", "nvr" + "Alarm input 2", "nvr" + "Disk 1 full".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hikd.event_types import UNKNOWN, event_type
from hikd.sinks.mqtt.discovery import (
    Discovery,
    DiscoveryConfig,
    block_for,
    common,
    config,
    device_availability,
    safe_id,
    unique_id,
)
from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.topics import OFF, ON, Where, channel_level

NOT_DISCOVERED = frozenset({UNKNOWN})
"""Undecoded commands are passed through raw on the events topic, never as an entity."""


@dataclass(frozen=True, slots=True)
class AlarmEntity:
    """One alarm type on one channel, alarm input, disk (or on the device itself)."""

    channel: Where
    type: str
    pulse: bool = False
    """Seen as a ``pulse`` though its type starts and stops: its binary sensor turns
    itself off after ``off_delay``."""


def _number(where: str) -> tuple[str, str]:
    kind = where.rstrip("0123456789")
    return kind, where[len(kind) :]


def entity_name(facts: DeviceFacts, channel: Where, type_: str) -> str:
    """The entity's own name; Home Assistant puts the device's name in front of it. A
    recorder's channels are devices of their own, so their entities are just the label."""
    label = event_type(type_).label
    if channel is None:
        return label
    if isinstance(channel, str):  # "input2", "disk1", "output1"
        kind, number = _number(channel)
        if kind == "input":
            return f"Alarm input {number}" if type_ == "io" else f"Alarm input {number} {label}"
        if kind == "disk":
            rest = label[5:] if label.startswith("Disk ") else label[:1].lower() + label[1:]
            return f"Disk {number} {rest}"
        if kind == "output":
            return f"Alarm output {number} {label}"
        return f"{channel} {label}"
    if facts.is_recorder or len(facts.channels()) == 1:
        return label
    return f"Channel {channel} {label[:1].lower()}{label[1:]}"


def alarm_config(
    d: Discovery, facts: DeviceFacts, entity: AlarmEntity, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    """A binary sensor for a type that starts and stops; an ``event`` entity for a
    one-shot type. Unavailable while hikd or the device is offline."""
    row = event_type(entity.type)
    uid = unique_id(facts, entity.channel, entity.type)
    component = row.component
    object_id = f"{facts.name}_{channel_level(entity.channel)}_{entity.type}"
    payload = common(d, block_for(d, facts, parent, entity.channel), component, uid, object_id)
    payload["name"] = entity_name(facts, entity.channel, entity.type)
    payload.update(device_availability(d, facts))
    if row.device_class:
        payload["device_class"] = row.device_class
    if component == "event":
        payload["state_topic"] = d.topics.event(facts.name, entity.channel, entity.type)
        payload["event_types"] = [entity.type]
        return config(d, component, payload)
    payload.update(
        state_topic=d.topics.state(facts.name, entity.channel, entity.type),
        payload_on=ON,
        payload_off=OFF,
    )
    if entity.pulse:
        payload["off_delay"] = d.off_delay_s
    return config(d, component, payload)


def image_config(
    d: Discovery, facts: DeviceFacts, channel: int, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    """The channel's latest picture (an alarm's or a snapshot), raw JPEG."""
    uid = safe_id(f"hikd_{facts.identifier}_{channel}_image")
    payload = common(
        d, block_for(d, facts, parent, channel), "image", uid, f"{facts.name}_{channel}_image"
    )
    many = not facts.is_recorder and len(facts.channels()) > 1
    payload.update(
        name=f"Channel {channel} picture" if many else "Picture",
        image_topic=d.topics.picture(facts.name, channel),
        content_type="image/jpeg",
        **device_availability(d, facts),
    )
    return config(d, "image", payload)


def in_its_place(where: Where, type_: str) -> bool:
    """Whether `where` is the kind of place `type_` happens (an alarm input's type on an
    ``input<N>``, a channel's on a channel number, ...)."""
    kind = event_type(type_).where
    if kind == "channel":
        return isinstance(where, int)
    if kind == "device":
        return where is None
    return isinstance(where, str) and where.startswith(kind)


def instances(facts: DeviceFacts, type_: str) -> list[Where]:
    """Everywhere on the device a type can happen, as far as its facts tell: every
    channel, alarm input or disk it reported, or the device itself."""
    where = event_type(type_).where
    if where == "channel":
        return list(facts.channels())
    if where == "input":
        return [f"input{n}" for n in range(1, facts.alarm_inputs + 1)]
    if where == "output":
        return [f"output{n}" for n in range(1, facts.alarm_outputs + 1)]
    if where == "disk":
        return [f"disk{n}" for n in range(1, facts.disks + 1)]
    return [None]


def configured_entities(facts: DeviceFacts, types: Iterable[str]) -> list[AlarmEntity]:
    """Entities announced before their first alarm: each of `types` (configured, or
    reported by the device) everywhere it can happen on the device."""
    entities: list[AlarmEntity] = []
    for type_ in types:
        if type_ in NOT_DISCOVERED:
            continue
        entities.extend(AlarmEntity(where, type_) for where in instances(facts, type_))
    return entities


def supported_entities(facts: DeviceFacts) -> list[AlarmEntity]:
    """The entities of the types the device reports it sends, where it says. A trigger
    for the whole device of a type that lives on an input or a disk (a device lists one
    "disk full" trigger; its alarms name the disk) stands for every one of them."""
    entities: list[AlarmEntity] = []
    for type_, places in facts.supported.items():
        if type_ in NOT_DISCOVERED:
            continue
        for where in places:
            if where is None and event_type(type_).where in ("input", "output", "disk"):
                entities.extend(AlarmEntity(w, type_) for w in instances(facts, type_))
            else:
                entities.append(AlarmEntity(where, type_))
    return entities


def alarm_configs(
    d: Discovery,
    facts: DeviceFacts,
    entities: Iterable[AlarmEntity],
    parent: DeviceFacts | None = None,
) -> list[DiscoveryConfig]:
    """One config per (where, type), the image entities with pictures on."""
    configs: list[DiscoveryConfig] = []
    seen: set[tuple[Where, str]] = set()
    for entity in entities:
        key = (entity.channel, entity.type)
        if entity.type in NOT_DISCOVERED or key in seen:
            continue
        seen.add(key)
        configs.append(alarm_config(d, facts, entity, parent))
    if d.images and not facts.is_hikd:
        configs.extend(image_config(d, facts, c, parent) for c in facts.channels())
    return configs
