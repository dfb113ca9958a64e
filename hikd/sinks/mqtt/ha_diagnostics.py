"""Home Assistant's diagnostic entities: connectivity, the health summary and each concern
(hikd/health.py), disks (status, capacity, free space), and hikd itself (connectivity,
version, devices online, outbox backlog)."""

from __future__ import annotations

from collections.abc import Iterable

from hikd.sinks.mqtt.discovery import (
    Discovery,
    DiscoveryConfig,
    block_for,
    bridge_availability,
    common,
    config,
    device_availability,
    hikd_block,
    hikd_identifier,
    safe_id,
)
from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.topics import OFFLINE, ONLINE

_CONCERNS = {
    "connectivity": "Login",
    "arming": "Arming",
    "recording": "Recording",
    "status": "Status poll",
    "outbox": "Outbox",
}


def concern_label(concern: str) -> str:
    """ "disk/2" -> "Disk 2 health", "sink/mqtt" -> "Sink mqtt", "arming" -> "Arming"."""
    kind, _, rest = concern.partition("/")
    if kind == "disk":
        return f"Disk {rest} health"
    if kind == "sink":
        return f"Sink {rest}"
    return _CONCERNS.get(concern, concern.replace("_", " ").capitalize())


def connectivity_config(
    d: Discovery, facts: DeviceFacts, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    """Is the device reachable? Available whenever hikd is, so it can say "disconnected"."""
    uid = safe_id(f"hikd_{facts.identifier}_connectivity")
    payload = common(
        d, block_for(d, facts, parent), "binary_sensor", uid, f"{facts.name}_connectivity"
    )
    payload.update(
        name="Connectivity",
        state_topic=d.topics.availability(facts.name),
        payload_on=ONLINE,
        payload_off=OFFLINE,
        device_class="connectivity",
        entity_category="diagnostic",
        availability=bridge_availability(d),
    )
    return config(d, "binary_sensor", payload)


def health_config(
    d: Discovery, facts: DeviceFacts, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    """The device's health summary: ``ok`` or ``problem``, each concern's state
    (connectivity, arming, disk/1, ...) as attributes. Available whenever hikd is: it
    explains why the device is offline."""
    uid = safe_id(f"hikd_{facts.identifier}_health")
    payload = common(d, block_for(d, facts, parent), "sensor", uid, f"{facts.name}_health")
    payload.update(
        name="Health",
        state_topic=d.topics.health(facts.name),
        value_template="{{ value_json.state }}",
        json_attributes_topic=d.topics.health(facts.name),
        json_attributes_template="{{ value_json.concerns | tojson }}",
        entity_category="diagnostic",
        icon="mdi:heart-pulse",
        availability=bridge_availability(d),
    )
    return config(d, "sensor", payload)


def concern_config(
    d: Discovery, facts: DeviceFacts, concern: str, parent: DeviceFacts | None = None
) -> DiscoveryConfig:
    """One concern (``hikd/<device>/health/<concern>``) as a problem sensor; its open
    problems and since when as attributes."""
    uid = safe_id(f"hikd_{facts.identifier}_health_{concern}")
    topic = d.topics.concern(facts.name, concern)
    payload = common(
        d, block_for(d, facts, parent), "binary_sensor", uid, f"{facts.name}_health_{concern}"
    )
    payload.update(
        name=concern_label(concern),
        state_topic=topic,
        value_template="{{ 'ON' if value_json.state == 'problem' else 'OFF' }}",
        payload_on="ON",
        payload_off="OFF",
        json_attributes_topic=topic,
        device_class="problem",
        entity_category="diagnostic",
        availability=bridge_availability(d),
    )
    return config(d, "binary_sensor", payload)


_DISK_SENSORS = (
    # (key, name, value template, unit, device class)
    ("status", "", "{{ value_json.status }}", None, None),
    ("capacity", " capacity", "{{ value_json.capacity_mb }}", "MB", "data_size"),
    ("free", " free space", "{{ value_json.free_mb }}", "MB", "data_size"),
)


def disk_configs(
    d: Discovery, facts: DeviceFacts, disk: int, parent: DeviceFacts | None = None
) -> list[DiscoveryConfig]:
    """A disk as a status poll sees it: "Disk 1" (ok, error, ...), capacity, free space."""
    configs = []
    for key, suffix, template, unit, device_class in _DISK_SENSORS:
        uid = safe_id(f"hikd_{facts.identifier}_disk{disk}_{key}")
        payload = common(
            d, block_for(d, facts, parent), "sensor", uid, f"{facts.name}_disk{disk}_{key}"
        )
        payload.update(
            name=f"Disk {disk}{suffix}",
            state_topic=d.topics.disk(facts.name, disk),
            value_template=template,
            entity_category="diagnostic",
            **device_availability(d, facts),
        )
        if unit:
            payload.update(
                unit_of_measurement=unit, device_class=device_class, state_class="measurement"
            )
        else:
            payload["icon"] = "mdi:harddisk"
        configs.append(config(d, "sensor", payload))
    return configs


def diagnostic_configs(
    d: Discovery,
    facts: DeviceFacts,
    concerns: Iterable[str],
    disks: Iterable[int],
    parent: DeviceFacts | None = None,
) -> list[DiscoveryConfig]:
    """A device's diagnostics: connectivity (not for hikd: `hikd_configs` has its own),
    the health summary, each concern it has had, and each disk a status poll listed."""
    configs = [] if facts.is_hikd else [connectivity_config(d, facts, parent)]
    configs.append(health_config(d, facts, parent))
    configs.extend(concern_config(d, facts, c, parent) for c in concerns)
    for disk in disks:
        configs.extend(disk_configs(d, facts, disk, parent))
    return configs


_HIKD_SENSORS = (
    # (key, name, value template, unit, icon)
    ("version", "Version", "{{ value_json.version }}", None, "mdi:information-outline"),
    ("devices_online", "Devices online", "{{ value_json.devices_online }}", None, "mdi:cctv"),
    ("outbox_backlog", "Outbox backlog", "{{ value_json.outbox_backlog }}", "events", "mdi:tray"),
)


def hikd_configs(d: Discovery) -> list[DiscoveryConfig]:
    """hikd itself, from its first connect: its connection to the broker (``hikd/status``,
    the last will included; no availability of its own, so it can show disconnected) and
    its facts (``hikd/info``)."""
    ident = hikd_identifier(d)
    uid = f"{ident}_connectivity"
    payload = common(d, hikd_block(d), "binary_sensor", uid, uid)
    payload.update(
        name="Connectivity",
        state_topic=d.topics.status(),
        payload_on=ONLINE,
        payload_off=OFFLINE,
        device_class="connectivity",
        entity_category="diagnostic",
    )
    configs = [config(d, "binary_sensor", payload)]
    for key, name, template, unit, icon in _HIKD_SENSORS:
        uid = f"{ident}_{key}"
        payload = common(d, hikd_block(d), "sensor", uid, uid)
        payload.update(
            name=name,
            state_topic=d.topics.info(),
            value_template=template,
            entity_category="diagnostic",
            icon=icon,
            availability=bridge_availability(d),
        )
        if unit:
            payload.update(unit_of_measurement=unit, state_class="measurement")
        configs.append(config(d, "sensor", payload))
    return configs
