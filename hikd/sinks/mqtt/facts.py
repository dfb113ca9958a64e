"""What the MQTT sink knows of a device (serial, model, channels, names), learnt from its
events and kept in the sink's state file: the identity Home Assistant ties entities to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hikd.events import Event
from hikd.sinks.mqtt.topics import ONLINE

HIKD_DEVICE = "hikd"
"""The name of the pseudo-device of hikd's own health events (`hikd.delivery.outbox.HIKD`)."""


def removed_devices(event: Event) -> list[str]:
    """The devices a configuration reload removed or disabled (hikd's ``reload`` health
    event, stored after their last events: README "Reloading the configuration")."""
    if event.kind != "health" or event.type != "reload" or event.device.name != HIKD_DEVICE:
        return []
    removed = event.attributes.get("removed")
    if not isinstance(removed, Mapping):
        return []
    return [str(name) for name in removed if str(name) != HIKD_DEVICE]


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _places(supported: Mapping[str, Any]) -> dict[str, list[int | str | None]]:
    """Where each supported type happens, as the ``online`` event (JSON) gives it."""
    out: dict[str, list[int | str | None]] = {}
    for name, places in supported.items():
        if isinstance(places, list):
            out[str(name)] = [p if p is None or isinstance(p, int) else str(p) for p in places]
    return out


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
    alarm_inputs: int = 0
    alarm_outputs: int = 0
    disks: int = 0
    mac: str = ""
    """The device's MAC address (``/ISAPI/System/deviceInfo``, or the first alert's)."""
    hardware: str = ""
    address: str = ""
    """Where hikd reaches it (``host:port``): its web page is on that host."""
    channel_sources: dict[int, str] = field(default_factory=dict)
    """Where each IP channel's camera is (``host:port``, as the recorder lists it)."""
    supported: dict[str, list[int | str | None]] = field(default_factory=dict)
    """Alarm types the device reports it sends, with where (channel numbers, ``input<N>``,
    None for the device as a whole; its event triggers, README "Home Assistant"):
    announced before their first alarm."""

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
        # An alert's MAC is the sender's: on a recorder it may be a camera's, so only a
        # camera's own alerts teach it (the online event's, from deviceInfo, always does).
        mac = event.attributes.get("mac") if not (self.mac or self.is_recorder) else None
        address = event.device.address
        if (
            not online
            and (not serial or serial == self.serial)
            and (not address or address == self.address)
            and not (mac and isinstance(mac, str))
        ):
            return self
        new = self.copy()
        if serial:
            new.serial = serial
        if address:
            new.address = address
        if isinstance(mac, str) and mac:
            new.mac = mac
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
        listed = a.get("channels")
        if isinstance(listed, list):
            new.channel_sources = {
                _int(c.get("number")): str(c["source"])
                for c in listed
                if isinstance(c, Mapping) and c.get("source") and _int(c.get("number"))
            }
        for key in ("alarm_inputs", "alarm_outputs", "disks"):
            if key in a:
                setattr(new, key, _int(a.get(key)))
        new.mac = str(a.get("mac") or new.mac)
        new.hardware = str(a.get("hardware") or new.hardware)
        supported = a.get("supported_types")
        if isinstance(supported, Mapping):
            new.supported = _places(supported)
        return new

    @property
    def is_recorder(self) -> bool:
        """An NVR or DVR: each of its channels is a camera of its own in Home Assistant.
        A camera reports one analog channel and no IP channels."""
        return self.ip_channels > 0 or self.analog_channels > 1

    def channel_name(self, channel: int) -> str:
        """The channel's name on the device ("Front door"), or "<device> channel N"."""
        return self.channel_names.get(channel) or f"{self.name} channel {channel}"

    def configuration_url(self, channel: int | None = None) -> str:
        """The device's web page, or an IP channel's camera's: its host over HTTP (the
        SDK port is not the web port)."""
        address = self.channel_sources.get(channel, self.address) if channel else self.address
        host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
        host = host.strip("[]")
        if not host:
            return ""
        return f"http://[{host}]/" if ":" in host else f"http://{host}/"

    def copy(self) -> DeviceFacts:
        return replace(
            self,
            channel_names=dict(self.channel_names),
            channel_sources=dict(self.channel_sources),
            supported=dict(self.supported),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channel_names"] = {str(k): v for k, v in self.channel_names.items()}
        d["channel_sources"] = {str(k): v for k, v in self.channel_sources.items()}
        return d

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
            channel_sources={
                _int(k): str(v) for k, v in (d.get("channel_sources") or {}).items() if _int(k)
            },
            alarm_inputs=_int(d.get("alarm_inputs")),
            alarm_outputs=_int(d.get("alarm_outputs")),
            disks=_int(d.get("disks")),
            mac=str(d.get("mac") or ""),
            hardware=str(d.get("hardware") or ""),
            address=str(d.get("address") or ""),
            supported=_places(d.get("supported") or {}),
        )
