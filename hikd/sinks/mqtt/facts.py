"""What the MQTT sink knows of a device (serial, model, channels, names), learnt from its
events and kept in the sink's state file: the identity Home Assistant ties entities to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hikd.events import Event
from hikd.sinks.mqtt.topics import ONLINE

HIKD_DEVICE = "hikd"
"""The name of the pseudo-device of hikd's own health events (`hikd.delivery.outbox.HIKD`)."""


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(slots=True)
class DeviceFacts:
    """What Home Assistant's device registry shows, learnt from ``online`` health events
    (their attributes are the session's `describe()`: serial, model, firmware, channel
    counts, and ``via`` for a camera reached through an NVR)."""

    name: str
    serial: str = ""
    model: str = ""
    firmware: str = ""
    via: str = ""
    """The parent recorder's configured name or serial, for cameras behind an NVR."""
    analog_channels: int = 0
    start_channel: int = 1
    ip_channels: int = 0
    start_ip_channel: int = 0
    channel_names: dict[int, str] = field(default_factory=dict)

    @property
    def identifier(self) -> str:
        return self.serial or self.name

    @property
    def is_hikd(self) -> bool:
        """hikd's own health events (bus or outbox overflow, a sink unavailable) come from
        a pseudo-device named ``hikd`` without serial or address."""
        return self.name == HIKD_DEVICE and not self.serial

    def channels(self) -> list[int]:
        """Every video channel in hikd's numbering, as the session's ``online`` event gives
        it (analog 1..A, IP from ``start_ip_channel``; README "Channel numbers"). Older
        events carried the library's start numbers, where IP channels could overlap the
        analog range: hence the de-duplication."""
        analog = range(self.start_channel, self.start_channel + self.analog_channels)
        ip = range(self.start_ip_channel, self.start_ip_channel + self.ip_channels)
        return [*analog, *(c for c in ip if c not in analog)]

    def updated_from(self, event: Event) -> DeviceFacts:
        """These facts with what `event` tells (its device serial; all an ``online`` says).
        Returns these very facts when the event teaches nothing new (it is asked for every
        event, and almost every event is an alarm with the serial already known)."""
        serial = event.device.serial
        online = event.kind == "health" and event.type == ONLINE
        if not online and (not serial or serial == self.serial):
            return self
        new = self.copy()
        if serial:
            new.serial = serial
        if not online:
            return new
        a = event.attributes
        new.serial = str(a.get("serial") or new.serial)
        new.model = str(a.get("model") or a.get("device_type") or new.model)
        new.firmware = str(a.get("firmware") or new.firmware)
        new.via = str(a.get("via") or new.via)
        if "analog_channels" in a or "ip_channels" in a:
            new.analog_channels = _int(a.get("analog_channels"))
            new.start_channel = _int(a.get("start_channel"), 1)
            new.ip_channels = _int(a.get("ip_channels"))
            new.start_ip_channel = _int(a.get("start_ip_channel"))
        names = a.get("channel_names")
        if isinstance(names, Mapping):
            new.channel_names = {_int(k): str(v) for k, v in names.items() if _int(k)}
        return new

    def copy(self) -> DeviceFacts:
        return DeviceFacts(
            self.name,
            self.serial,
            self.model,
            self.firmware,
            self.via,
            self.analog_channels,
            self.start_channel,
            self.ip_channels,
            self.start_ip_channel,
            dict(self.channel_names),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "serial": self.serial,
            "model": self.model,
            "firmware": self.firmware,
            "via": self.via,
            "analog_channels": self.analog_channels,
            "start_channel": self.start_channel,
            "ip_channels": self.ip_channels,
            "start_ip_channel": self.start_ip_channel,
            "channel_names": {str(k): v for k, v in self.channel_names.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceFacts:
        names = d.get("channel_names") or {}
        return cls(
            name=str(d["name"]),
            serial=str(d.get("serial") or ""),
            model=str(d.get("model") or ""),
            firmware=str(d.get("firmware") or ""),
            via=str(d.get("via") or ""),
            analog_channels=_int(d.get("analog_channels")),
            start_channel=_int(d.get("start_channel"), 1),
            ip_channels=_int(d.get("ip_channels")),
            start_ip_channel=_int(d.get("start_ip_channel")),
            channel_names={_int(k): str(v) for k, v in names.items() if _int(k)},
        )
