"""The MQTT sink's memory of its retained picture: device facts, availability, health
per concern and the ON/OFF state of every alarm entity, in ``<state_dir>/mqtt_state.json``
so that a restart republishes it correctly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hikd.files import write_atomically
from hikd.health import HealthBoard
from hikd.logs import get_logger
from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.ha_alarms import AlarmEntity
from hikd.sinks.mqtt.topics import OFF, ON, Where

log = get_logger(__name__)

STATE_FILE = "mqtt_state.json"


AlarmKey = tuple[str, Where, str]


@dataclass(slots=True)
class AlarmState:
    value: str = OFF
    pulse: bool = False


@dataclass(slots=True)
class DeviceState:
    facts: DeviceFacts
    availability: str = ""
    health: HealthBoard = field(default_factory=HealthBoard)
    disks: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Each disk as the last status poll listed it: status, capacity_mb, free_mb."""


class MqttState:
    """What is republished on every connect: device facts, availability, health per concern,
    and the ON/OFF state of every alarm entity. In memory and in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.devices: dict[str, DeviceState] = {}
        self.alarms: dict[AlarmKey, AlarmState] = {}
        self.announced: set[str] | None = None
        """The discovery topics published, to remove those no longer announced; None for
        a state file of a hikd that did not keep them."""
        self.dirty = False
        self._save_failing = False  # one warning per episode (a full disk lasts)

    def device(self, name: str) -> DeviceState:
        state = self.devices.get(name)
        if state is None:
            state = self.devices[name] = DeviceState(DeviceFacts(name))
            self.dirty = True
        return state

    def alarms_of(self, name: str) -> list[AlarmEntity]:
        return [
            AlarmEntity(channel, type_, a.pulse)
            for (device, channel, type_), a in self.alarms.items()
            if device == name
        ]

    def find(self, name_or_serial: str) -> DeviceFacts | None:
        if not name_or_serial:
            return None
        if name_or_serial in self.devices:
            return self.devices[name_or_serial].facts
        for state in self.devices.values():
            if state.facts.serial == name_or_serial:
                return state.facts
        return None

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            devices = {
                name: DeviceState(
                    DeviceFacts.from_dict({**d["facts"], "name": name}),
                    str(d.get("availability") or ""),
                    HealthBoard.from_dict(d.get("concerns")),
                    {int(k): dict(v) for k, v in (d.get("disks") or {}).items()},
                )
                for name, d in data.get("devices", {}).items()
            }
            announced = data.get("announced")
            alarms = {
                (str(a["device"]), a.get("channel"), str(a["type"])): AlarmState(
                    ON if a.get("value") == ON else OFF, bool(a.get("pulse"))
                )
                for a in data.get("alarms", [])
            }
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            # Only a cache of what was published: start afresh rather than refuse to run.
            log.warning(
                "ignoring unreadable MQTT state file", path=str(self.path), error=str(error)
            )
            return
        self.devices, self.alarms = devices, alarms
        self.announced = None if announced is None else {str(t) for t in announced}

    def save(self) -> None:
        data = self.snapshot()
        if data is not None:
            self.write(data)

    def snapshot(self) -> bytes | None:
        """The file's contents when anything changed since the last snapshot (then marked
        saved; `write` marks it changed again if the file cannot be written)."""
        if not self.dirty:
            return None
        data = {
            "version": 1,
            "devices": {
                name: {
                    "facts": s.facts.to_dict(),
                    "availability": s.availability,
                    "concerns": s.health.to_dict(),
                    "disks": {str(k): v for k, v in s.disks.items()},
                }
                for name, s in self.devices.items()
            },
            "announced": None if self.announced is None else sorted(self.announced),
            "alarms": [
                {"device": d, "channel": c, "type": t, "value": a.value, "pulse": a.pulse}
                for (d, c, t), a in self.alarms.items()
            ],
        }
        self.dirty = False
        return json.dumps(data, separators=(",", ":"), default=str).encode("utf-8")

    def write(self, data: bytes) -> None:
        """Write a `snapshot` to the file (one writer at a time: they share a temporary file)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A half-written file must not keep the space it took: write_atomically
            # removes it on failure.
            write_atomically(self.path, data, self.path.with_name(self.path.name + ".tmp"))
        except OSError as error:
            # Delivery goes on; only a restart would republish an older picture.
            self.dirty = True  # tried again at the next save
            if not self._save_failing:
                self._save_failing = True
                log.warning("cannot save MQTT state", path=str(self.path), error=str(error))
            return
        if self._save_failing:
            self._save_failing = False
            log.info("MQTT state saved again", path=str(self.path))
