"""Home Assistant MQTT discovery, the common part: ids, device blocks, availability and the
config message. Pure functions, no network.

What Home Assistant shows (README "Home Assistant"): a recorder (NVR, DVR) is one device
and each of its channels a camera device of its own (``via_device`` the recorder), named
with the channel's name on the device; a single-channel camera is one device. hikd itself
is a device identified by ``instance_id``. The entities are built by `ha_alarms` (alarm
types, pictures), `ha_diagnostics` (connectivity, health per concern, disks, hikd's own)
and put together per device by `announce`; a new kind of entity (controls: switches,
buttons) is one more module of builders listed there.

Every config is published retained to ``<discovery_prefix>/<component>/<unique_id>/config``.
Entities are tied to the device by its serial number, so renaming a device in hikd's
config keeps its history in Home Assistant; without a serial the configured name stands in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.topics import OFFLINE, ONLINE, Message, Topics, Where, channel_level

MANUFACTURER = "Hikvision"

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Discovery:
    """How and where discovery is published."""

    topics: Topics
    prefix: str = "homeassistant"
    off_delay_s: int = 5
    qos: int = 1
    origin_version: str = ""
    instance_id: str = "hikd"
    """Which hikd this is: two on one broker keep their own device in Home Assistant."""
    images: bool = False
    """Pictures are published: each channel gets an ``image`` entity."""
    commands: bool = False
    """Commands are taken: outputs, snapshots and detections get controls."""


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
    """``hikd_<serial>_<where>_<type>``: stable across renames and restarts."""
    return safe_id(f"hikd_{facts.identifier}_{channel_level(channel)}_{type_}")


def hikd_identifier(d: Discovery) -> str:
    return safe_id(f"hikd_{d.instance_id}")


# -- devices ---------------------------------------------------------------------------


def device_block(facts: DeviceFacts, parent: DeviceFacts | None = None) -> dict[str, Any]:
    """The recorder or camera itself: serial, MAC, model, versions, its web page."""
    block: dict[str, Any] = {"identifiers": [facts.identifier], "name": facts.name}
    block["manufacturer"] = MANUFACTURER
    if facts.model:
        block["model"] = facts.model
    if facts.firmware:
        block["sw_version"] = facts.firmware
    if facts.hardware:
        block["hw_version"] = facts.hardware
    if facts.serial:
        block["serial_number"] = facts.serial
    if facts.mac:
        block["connections"] = [["mac", facts.mac.lower()]]
    url = facts.configuration_url()
    if url:
        block["configuration_url"] = url
    if parent is not None:
        block["via_device"] = parent.identifier
    elif facts.via:
        block["via_device"] = facts.via
    return block


def channel_identifier(facts: DeviceFacts, channel: int) -> str:
    return f"{facts.identifier}_channel{channel}"


def channel_block(facts: DeviceFacts, channel: int) -> dict[str, Any]:
    """A camera on a recorder's channel: its own device, reached through the recorder."""
    block: dict[str, Any] = {
        "identifiers": [channel_identifier(facts, channel)],
        "name": facts.channel_name(channel),
        "manufacturer": MANUFACTURER,
        "model": f"Channel {channel} of {facts.model or facts.name}",
        "via_device": facts.identifier,
    }
    url = facts.configuration_url(channel)
    if url:
        block["configuration_url"] = url
    return block


def hikd_block(d: Discovery) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [hikd_identifier(d)],
        "name": f"hikd {d.instance_id}",
        "manufacturer": "hikd",
        "model": "hikd",
    }
    if d.origin_version:
        block["sw_version"] = d.origin_version
    return block


def block_for(
    d: Discovery, facts: DeviceFacts, parent: DeviceFacts | None, channel: Where = None
) -> dict[str, Any]:
    """The device an entity belongs to: a recorder's channel is a camera of its own."""
    if facts.is_hikd:
        return hikd_block(d)
    if isinstance(channel, int) and facts.is_recorder:
        return channel_block(facts, channel)
    return device_block(facts, parent)


# -- payloads --------------------------------------------------------------------------


def bridge_availability(d: Discovery) -> list[dict[str, str]]:
    """Available while hikd is connected to the broker (its last will says offline)."""
    return [
        {"topic": d.topics.status(), "payload_available": ONLINE, "payload_not_available": OFFLINE}
    ]


def device_availability(d: Discovery, facts: DeviceFacts) -> dict[str, Any]:
    """Available only while both hikd and the device are (``availability_mode: all``)."""
    if facts.is_hikd:
        return {"availability": bridge_availability(d)}
    return {
        "availability": [
            *bridge_availability(d),
            {
                "topic": d.topics.availability(facts.name),
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            },
        ],
        "availability_mode": "all",
    }


def common(
    d: Discovery,
    device: dict[str, Any],
    component: str,
    uid: str,
    object_id: str,
) -> dict[str, Any]:
    # `object_id` sets the entity id up to Home Assistant 2025.9; 2025.10 deprecated it for
    # `default_entity_id` (domain included). Discovery drops keys it does not know, so both.
    object_id = slug(object_id)
    payload: dict[str, Any] = {
        "unique_id": uid,
        "object_id": object_id,
        "default_entity_id": f"{component}.{object_id}",
        "device": device,
        "qos": d.qos,
        "origin": {"name": "hikd"},
    }
    if d.origin_version:
        payload["origin"]["sw_version"] = d.origin_version
    return payload


def config(d: Discovery, component: str, payload: dict[str, Any]) -> DiscoveryConfig:
    return DiscoveryConfig(f"{d.prefix}/{component}/{payload['unique_id']}/config", payload)
