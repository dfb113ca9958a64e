"""Every discovery config of one device, from what the sink knows of it: its facts, the
alarm entities it has (configured, reported by the device, seen), its health concerns and
its disks.

Each kind of entity is one builder in `BUILDERS`; the controls (switches for alarm outputs
and detections, snapshot buttons; `command_discovery`) are the last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hikd.sinks.mqtt.command_discovery import control_configs
from hikd.sinks.mqtt.discovery import Discovery, DiscoveryConfig
from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.ha_alarms import AlarmEntity, alarm_configs
from hikd.sinks.mqtt.ha_diagnostics import diagnostic_configs


@dataclass(frozen=True, slots=True)
class Known:
    """What the sink knows of one device, beyond its facts."""

    facts: DeviceFacts
    parent: DeviceFacts | None = None
    alarms: Sequence[AlarmEntity] = ()
    concerns: Sequence[str] = ()
    disks: Sequence[int] = field(default_factory=tuple)


Builder = Callable[[Discovery, Known], list[DiscoveryConfig]]


def _diagnostics(d: Discovery, k: Known) -> list[DiscoveryConfig]:
    return diagnostic_configs(d, k.facts, k.concerns, k.disks, k.parent)


def _alarms(d: Discovery, k: Known) -> list[DiscoveryConfig]:
    return alarm_configs(d, k.facts, k.alarms, k.parent)


def _controls(d: Discovery, k: Known) -> list[DiscoveryConfig]:
    return control_configs(d, k.facts, [(a.channel, a.type) for a in k.alarms], k.parent)


BUILDERS: list[Builder] = [_diagnostics, _alarms, _controls]
"""Diagnostics first (connectivity, health), then the alarms, then the controls: the order
of publishing."""


def device_configs(d: Discovery, known: Known) -> list[DiscoveryConfig]:
    """Every discovery config of one device, each unique id once."""
    configs: list[DiscoveryConfig] = []
    seen: set[str] = set()
    for build in BUILDERS:
        for c in build(d, known):
            if c.topic not in seen:
                seen.add(c.topic)
                configs.append(c)
    return configs
