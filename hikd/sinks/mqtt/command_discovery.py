"""Home Assistant discovery of the controls (``[sinks.mqtt] commands = true``): pure
functions, no network; one builder of `hikd.sinks.mqtt.announce`.

Per device: a ``switch`` per alarm output (on the recorder or camera), a snapshot ``button``
per channel and a detection ``switch`` (an entity of the ``config`` category) per channel
and detection type that has an alarm entity (motion, line crossing, intrusion), both on the
channel's camera device. Each is available only when hikd and the device are, like the
alarm entities.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hikd.commands import DETECTIONS
from hikd.event_types import event_type
from hikd.sinks.mqtt.discovery import (
    Discovery,
    DiscoveryConfig,
    block_for,
    common,
    config,
    device_availability,
    unique_id,
)
from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.topics import OFF, ON, Topics, Where, topic_level

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


def _on_its_own(facts: DeviceFacts) -> bool:
    """Whether a channel's entities share the device with other channels' (a camera with
    several channels: their names must say which); a recorder's channels are devices."""
    return facts.is_recorder or len(facts.channels()) == 1


def output_config(
    d: Discovery, facts: DeviceFacts, output: int, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    where = f"output{output}"
    payload = common(
        d,
        block_for(d, facts, parent),
        "switch",
        unique_id(facts, where, "switch"),
        f"{facts.name}_{where}",
    )
    topic = ControlTopics(d.topics).output(facts.name, output)
    payload.update(
        name=f"Alarm output {output}",
        command_topic=f"{topic}/set",
        state_topic=f"{topic}/state",
        payload_on=ON,
        payload_off=OFF,
        icon="mdi:alarm-light",
        **device_availability(d, facts),
    )
    return config(d, "switch", payload)


def snapshot_config(
    d: Discovery, facts: DeviceFacts, channel: int, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    payload = common(
        d,
        block_for(d, facts, parent, channel),
        "button",
        unique_id(facts, channel, "snapshot"),
        f"{facts.name}_{channel}_snapshot",
    )
    payload.update(
        name="Snapshot" if _on_its_own(facts) else f"Channel {channel} snapshot",
        command_topic=ControlTopics(d.topics).snapshot(facts.name, channel) + "/set",
        payload_press=PRESS,
        icon="mdi:camera",
        **device_availability(d, facts),
    )
    return config(d, "button", payload)


def detection_config(
    d: Discovery,
    facts: DeviceFacts,
    channel: int,
    detection: str,
    parent: DeviceFacts | None = None,
) -> DiscoveryConfig:
    thing = f"{detection}_detection"
    payload = common(
        d,
        block_for(d, facts, parent, channel),
        "switch",
        unique_id(facts, channel, thing),
        f"{facts.name}_{channel}_{thing}",
    )
    label = event_type(detection).label
    name = f"{label} detection"
    if not _on_its_own(facts):
        name = f"Channel {channel} {name[:1].lower()}{name[1:]}"
    topic = ControlTopics(d.topics).detection(facts.name, channel, detection)
    payload.update(
        name=name,
        command_topic=f"{topic}/set",
        state_topic=topic,
        payload_on=ON,
        payload_off=OFF,
        entity_category="config",
        icon="mdi:motion-sensor",
        **device_availability(d, facts),
    )
    return config(d, "switch", payload)


def control_configs(
    d: Discovery,
    facts: DeviceFacts,
    alarms: Iterable[tuple[Where, str]],
    parent: DeviceFacts | None = None,
) -> list[DiscoveryConfig]:
    """Every control of one device, when commands are on (`Discovery.commands`): its alarm
    outputs, a snapshot button per channel, and a detection switch per (channel, type) of
    `alarms` that can be switched."""
    if not d.commands or facts.is_hikd:
        return []
    configs = [output_config(d, facts, n, parent) for n in range(1, facts.alarm_outputs + 1)]
    configs.extend(snapshot_config(d, facts, c, parent) for c in facts.channels())
    seen: set[tuple[int, str]] = set()
    for where, type_ in alarms:
        if isinstance(where, int) and type_ in DETECTIONS and (where, type_) not in seen:
            seen.add((where, type_))
            configs.append(detection_config(d, facts, where, type_, parent))
    return configs
