"""Home Assistant discovery of the controls (``[sinks.mqtt] commands = true``): pure
functions, no network.

Per device: a ``switch`` per alarm output, a snapshot ``button`` per channel, and a
detection ``switch`` (an entity of the ``config`` category) per channel and detection type
that has an alarm entity (motion, line crossing, intrusion). Each is available only when
hikd and the device are, like the alarm entities.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hikd.commands import DETECTIONS
from hikd.sinks.mqtt.discovery import (
    Discovery,
    DiscoveryConfig,
    device_block,
    slug,
    type_words,
    unique_id,
)
from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.topics import OFF, OFFLINE, ON, ONLINE, Topics, Where, topic_level

PRESS = "PRESS"
"""What a snapshot button sends (Home Assistant's default ``payload_press``)."""


@dataclass(frozen=True, slots=True)
class ControlTopics:
    """Where controls listen and say their state, under the sink's topic prefix."""

    topics: Topics

    def output(self, device: str, output: int) -> str:
        """``<prefix>/<device>/output<N>``: ``/set`` takes ON/OFF, ``/state`` says it."""
        return f"{self.topics.prefix}/{topic_level(device)}/output{output}"

    def snapshot(self, device: str, channel: int) -> str:
        """``<prefix>/<device>/<channel>/snapshot``: ``/set`` takes any payload."""
        return f"{self.topics.prefix}/{topic_level(device)}/{channel}/snapshot"

    def detection(self, device: str, channel: int, detection: str) -> str:
        """``<prefix>/<device>/<channel>/<type>/detection``: the state; ``/set`` takes ON/OFF."""
        return f"{self.topics.prefix}/{topic_level(device)}/{channel}/{detection}/detection"

    def subscriptions(self) -> list[str]:
        """Every command topic ends in ``/set``: outputs, snapshots, detections."""
        prefix = self.topics.prefix
        return [f"{prefix}/+/+/set", f"{prefix}/+/+/+/set", f"{prefix}/+/+/+/+/set"]


def _availability(d: Discovery, device: str) -> list[dict[str, str]]:
    return [
        {"topic": t, "payload_available": ONLINE, "payload_not_available": OFFLINE}
        for t in (d.topics.status(), d.topics.availability(device))
    ]


def _entity(
    d: Discovery,
    facts: DeviceFacts,
    parent: DeviceFacts | None,
    component: str,
    where: Where,
    thing: str,
) -> dict[str, Any]:
    uid = unique_id(facts, where, thing)
    object_id = slug(f"{facts.name}_{where}_{thing}")
    payload: dict[str, Any] = {
        "unique_id": uid,
        "object_id": object_id,
        "default_entity_id": f"{component}.{object_id}",
        "device": device_block(facts, parent),
        "qos": d.qos,
        "origin": {"name": "hikd"},
        "availability": _availability(d, facts.name),
        "availability_mode": "all",
    }
    if d.origin_version:
        payload["origin"]["sw_version"] = d.origin_version
    return payload


def _channel_words(facts: DeviceFacts, channel: int) -> str:
    return facts.channel_names.get(channel) or f"Channel {channel}"


def output_config(
    d: Discovery, facts: DeviceFacts, output: int, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    topics = ControlTopics(d.topics)
    payload = _entity(d, facts, parent, "switch", f"output{output}", "switch")
    payload.update(
        {
            "name": f"Alarm output {output}",
            "command_topic": topics.output(facts.name, output) + "/set",
            "state_topic": topics.output(facts.name, output) + "/state",
            "payload_on": ON,
            "payload_off": OFF,
            "icon": "mdi:alarm-light",
        }
    )
    return DiscoveryConfig(f"{d.prefix}/switch/{payload['unique_id']}/config", payload)


def snapshot_config(
    d: Discovery, facts: DeviceFacts, channel: int, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    topics = ControlTopics(d.topics)
    payload = _entity(d, facts, parent, "button", channel, "snapshot")
    payload.update(
        {
            "name": f"{_channel_words(facts, channel)} snapshot",
            "command_topic": topics.snapshot(facts.name, channel) + "/set",
            "payload_press": PRESS,
            "icon": "mdi:camera",
        }
    )
    return DiscoveryConfig(f"{d.prefix}/button/{payload['unique_id']}/config", payload)


def detection_config(
    d: Discovery,
    facts: DeviceFacts,
    channel: int,
    detection: str,
    parent: DeviceFacts | None = None,
) -> DiscoveryConfig:
    topics = ControlTopics(d.topics)
    thing = f"{detection}_detection"
    payload = _entity(d, facts, parent, "switch", channel, thing)
    topic = topics.detection(facts.name, channel, detection)
    payload.update(
        {
            "name": f"{_channel_words(facts, channel)} {type_words(detection).lower()} detection",
            "command_topic": topic + "/set",
            "state_topic": topic,
            "payload_on": ON,
            "payload_off": OFF,
            "entity_category": "config",
            "icon": "mdi:motion-sensor",
        }
    )
    return DiscoveryConfig(f"{d.prefix}/switch/{payload['unique_id']}/config", payload)


def control_configs(
    d: Discovery,
    facts: DeviceFacts,
    outputs: int,
    alarms: Iterable[tuple[Where, str]],
    parent: DeviceFacts | None = None,
) -> list[DiscoveryConfig]:
    """Every control of one device: its `outputs` alarm outputs, a snapshot button per
    channel, and a detection switch per (channel, type) of `alarms` that can be switched."""
    configs = [output_config(d, facts, n, parent) for n in range(1, outputs + 1)]
    configs.extend(snapshot_config(d, facts, c, parent) for c in facts.channels())
    seen: set[tuple[int, str]] = set()
    for where, type_ in alarms:
        if isinstance(where, int) and type_ in DETECTIONS and (where, type_) not in seen:
            seen.add((where, type_))
            configs.append(detection_config(d, facts, where, type_, parent))
    return configs
