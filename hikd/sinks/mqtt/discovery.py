"""Home Assistant MQTT discovery payloads: pure functions, no network.

Per device: a connectivity binary sensor (from ``<prefix>/<device>/availability``), a
health sensor (from ``<prefix>/<device>/health``) and one binary sensor per (channel,
alarm type). Every config is published retained to
``<discovery_prefix>/<component>/<unique_id>/config``.

Entities are tied to the device by its serial number, so renaming a device in hikd's
config keeps its history in Home Assistant; without a serial the configured name stands in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.topics import (
    OFF,
    OFFLINE,
    ON,
    ONLINE,
    Message,
    Topics,
    Where,
    channel_level,
)

MANUFACTURER = "Hikvision"

DEVICE_CLASSES: Mapping[str, str] = {
    # Something moves or is there.
    "motion": "motion",
    "pir": "motion",
    "line_crossing": "motion",
    "intrusion": "motion",
    "region_entrance": "motion",
    "region_exiting": "motion",
    "fast_moving": "motion",
    "vehicle_detection": "motion",
    "human_detection": "occupancy",
    "face_detection": "occupancy",
    "face_snap": "occupancy",
    "loitering": "occupancy",
    "people_gathering": "occupancy",
    "parking": "occupancy",
    "unattended_baggage": "occupancy",
    "object_removal": "tamper",
    # Someone works against the camera or the recorder.
    "tamper": "tamper",
    "scene_change": "tamper",
    "defocus": "tamper",
    "illegal_access": "safety",
    # A wired alarm input (door contact, smoke detector, panic button): ON means unsafe.
    "io": "safety",
    "audio_exception": "sound",
    # The recorder or its links are unwell.
    "video_loss": "problem",
    "video_mismatch": "problem",
    "disk_full": "problem",
    "disk_error": "problem",
    "disk_unformatted": "problem",
    "network_disconnected": "problem",
    "ip_conflict": "problem",
    "record_error": "problem",
    "ipc_disconnected": "problem",
}
"""Home Assistant binary_sensor device classes by hikd alarm type; others get none."""

PULSE_TYPES = frozenset({"face_snap", "anpr", "illegal_access"})
"""Types that arrive as one-shot ``pulse`` events with no natural end: Home Assistant
turns them off by itself after ``off_delay``. Any type seen with ``state = pulse`` joins them."""

DEVICE_LEVEL_TYPES = frozenset(
    {
        "disk_full",
        "disk_error",
        "disk_unformatted",
        "illegal_access",
        "network_disconnected",
        "ip_conflict",
        "video_mismatch",
        "record_error",
    }
)
"""Types that belong to the recorder, not to one channel (published under ``device``)."""

NOT_DISCOVERED = frozenset({"unknown"})
"""Undecoded commands are passed through raw on the events topic, never as an entity."""

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class AlarmEntity:
    """One binary sensor: an alarm type on one channel (or on the device itself)."""

    channel: Where
    type: str
    pulse: bool = False


@dataclass(frozen=True, slots=True)
class Discovery:
    """How and where discovery is published."""

    topics: Topics
    prefix: str = "homeassistant"
    off_delay_s: int = 5
    qos: int = 1
    origin_version: str = ""


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    topic: str
    payload: dict[str, Any]

    def message(self) -> Message:
        """Retained; an empty payload (not ``{}``) removes the entity."""
        data = json.dumps(self.payload, separators=(",", ":"), sort_keys=True).encode()
        return Message(self.topic, data if self.payload else b"", retain=True)


def safe_id(text: str) -> str:
    """An id usable in a discovery topic (Home Assistant accepts ``[A-Za-z0-9_-]`` there)."""
    return _UNSAFE_ID.sub("_", text)


def slug(text: str) -> str:
    return _NOT_SLUG.sub("_", text.lower()).strip("_") or "device"


def unique_id(facts: DeviceFacts, channel: Where, type_: str) -> str:
    """``hikd_<serial>_<channel>_<type>``: stable across renames and restarts."""
    return safe_id(f"hikd_{facts.identifier}_{channel_level(channel)}_{type_}")


def device_class(type_: str) -> str | None:
    return DEVICE_CLASSES.get(type_)


def type_words(type_: str) -> str:
    words = type_.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def entity_name(facts: DeviceFacts, channel: Where, type_: str) -> str:
    """The entity's own name; Home Assistant puts the device name in front of it."""
    if channel is None:
        return type_words(type_)
    if isinstance(channel, str):  # "input2", "disk1"
        kind, number = channel.rstrip("0123456789"), channel[len(channel.rstrip("0123456789")) :]
        label = {"input": "Alarm input", "disk": "Disk"}.get(kind, kind.capitalize())
        return f"{label} {number} {type_words(type_).lower()}"
    where = facts.channel_names.get(channel) or f"Channel {channel}"
    return f"{where} {type_words(type_).lower()}"


def device_block(facts: DeviceFacts, parent: DeviceFacts | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"identifiers": [facts.identifier], "name": facts.name}
    if facts.is_hikd:
        return {**block, "model": "hikd"}
    block["manufacturer"] = MANUFACTURER
    if facts.model:
        block["model"] = facts.model
    if facts.firmware:
        block["sw_version"] = facts.firmware
    if facts.serial:
        block["serial_number"] = facts.serial
    if parent is not None:
        block["via_device"] = parent.identifier
    elif facts.via:
        block["via_device"] = facts.via
    return block


def _bridge_availability(d: Discovery) -> list[dict[str, str]]:
    return [
        {"topic": d.topics.status(), "payload_available": ONLINE, "payload_not_available": OFFLINE}
    ]


def _common(
    d: Discovery,
    facts: DeviceFacts,
    parent: DeviceFacts | None,
    component: str,
    uid: str,
    object_id: str,
) -> dict[str, Any]:
    # `object_id` sets the entity id up to Home Assistant 2025.9; 2025.10 deprecated it for
    # `default_entity_id` (domain included). Discovery drops keys it does not know, so both.
    payload: dict[str, Any] = {
        "unique_id": uid,
        "object_id": object_id,
        "default_entity_id": f"{component}.{object_id}",
        "device": device_block(facts, parent),
        "qos": d.qos,
        "origin": {"name": "hikd"},
    }
    if d.origin_version:
        payload["origin"]["sw_version"] = d.origin_version
    return payload


def alarm_config(
    d: Discovery, facts: DeviceFacts, entity: AlarmEntity, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    """A binary sensor for one alarm type on one channel, unavailable when hikd or the
    device is offline (``availability_mode: all``)."""
    uid = unique_id(facts, entity.channel, entity.type)
    object_id = slug(f"{facts.name}_{channel_level(entity.channel)}_{entity.type}")
    payload = _common(d, facts, parent, "binary_sensor", uid, object_id)
    payload.update(
        {
            "name": entity_name(facts, entity.channel, entity.type),
            "state_topic": d.topics.state(facts.name, entity.channel, entity.type),
            "payload_on": ON,
            "payload_off": OFF,
            "availability": [
                *_bridge_availability(d),
                {
                    "topic": d.topics.availability(facts.name),
                    "payload_available": ONLINE,
                    "payload_not_available": OFFLINE,
                },
            ],
            "availability_mode": "all",
        }
    )
    dc = device_class(entity.type)
    if dc:
        payload["device_class"] = dc
    if entity.pulse or entity.type in PULSE_TYPES:
        payload["off_delay"] = d.off_delay_s
    return DiscoveryConfig(f"{d.prefix}/binary_sensor/{uid}/config", payload)


def connectivity_config(
    d: Discovery, facts: DeviceFacts, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    """Is the device reachable? Available whenever hikd is, so it can say "disconnected".
    For hikd itself: is it connected to the broker (its status topic, last will included)."""
    uid = safe_id(f"hikd_{facts.identifier}_connectivity")
    object_id = slug(f"{facts.name}_connectivity")
    payload = _common(d, facts, parent, "binary_sensor", uid, object_id)
    state_topic = d.topics.status() if facts.is_hikd else d.topics.availability(facts.name)
    payload.update(
        {
            "name": "Connectivity",
            "state_topic": state_topic,
            "payload_on": ONLINE,
            "payload_off": OFFLINE,
            "device_class": "connectivity",
            "entity_category": "diagnostic",
            "availability": _bridge_availability(d),
        }
    )
    return DiscoveryConfig(f"{d.prefix}/binary_sensor/{uid}/config", payload)


def health_config(
    d: Discovery, facts: DeviceFacts, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    """The device's health summary: ``ok`` or ``problem``, each concern's state
    (connectivity, arming, disk/1, ...) as attributes. Available whenever hikd is: it
    explains why the device is offline."""
    uid = safe_id(f"hikd_{facts.identifier}_health")
    object_id = slug(f"{facts.name}_health")
    payload = _common(d, facts, parent, "sensor", uid, object_id)
    payload.update(
        {
            "name": "Health",
            "state_topic": d.topics.health(facts.name),
            "value_template": "{{ value_json.state }}",
            "json_attributes_topic": d.topics.health(facts.name),
            "json_attributes_template": "{{ value_json.concerns | tojson }}",
            "entity_category": "diagnostic",
            "icon": "mdi:heart-pulse",
            "availability": _bridge_availability(d),
        }
    )
    return DiscoveryConfig(f"{d.prefix}/sensor/{uid}/config", payload)


def configured_entities(facts: DeviceFacts, types: Iterable[str]) -> list[AlarmEntity]:
    """Entities created before their first alarm: each configured type on every channel
    the device reported (device-level types once)."""
    entities: list[AlarmEntity] = []
    for type_ in types:
        if type_ in NOT_DISCOVERED:
            continue
        if type_ in DEVICE_LEVEL_TYPES:
            entities.append(AlarmEntity(None, type_, type_ in PULSE_TYPES))
        else:
            entities.extend(AlarmEntity(c, type_, type_ in PULSE_TYPES) for c in facts.channels())
    return entities


def device_configs(
    d: Discovery,
    facts: DeviceFacts,
    entities: Iterable[AlarmEntity],
    parent: DeviceFacts | None = None,
) -> list[DiscoveryConfig]:
    """Every discovery config of one device: connectivity, health, then its alarms."""
    configs = [connectivity_config(d, facts, parent), health_config(d, facts, parent)]
    seen: set[tuple[Where, str]] = set()
    for entity in entities:
        key = (entity.channel, entity.type)
        if entity.type in NOT_DISCOVERED or key in seen:
            continue
        seen.add(key)
        configs.append(alarm_config(d, facts, entity, parent))
    return configs
