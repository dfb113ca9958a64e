"""The board: counts and each device's state, derived from the events as they are stored.

One thread feeds it (the watch's worker), so it counts into plain dicts without a lock: an
alarm costs a dict increment and an assignment. Readers (a metrics scrape, `hikd status`)
run on other threads and take copies (`dict(...)` of a dict is one step under the GIL).
Health events are rare; each goes through the device's `HealthBoard`, the same concerns the
MQTT sink publishes, so "armed" here means what Home Assistant shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hikd.delivery.outbox import HIKD
from hikd.events import Event
from hikd.health import HealthBoard
from hikd.logs import get_logger

log = get_logger(__name__)

MAX_OPEN_ALARMS = 1000
"""Open alarms remembered per device: a stop that never comes must not grow memory."""


@dataclass(slots=True)
class DeviceState:
    name: str
    online: bool = False
    seen: bool = False
    """Whether any health event said online or offline yet."""
    protocol: str | None = None
    last_event: Event | None = None
    open_alarms: dict[str, Event] = field(default_factory=dict)
    """Alarm starts without their stop yet, by event id."""
    health: HealthBoard = field(default_factory=HealthBoard)

    @property
    def armed(self) -> bool:
        arming = self.health.concerns.get("arming")
        return arming is not None and arming.state == "ok"


class EventBoard:
    def __init__(self, devices: Iterable[str] = ()) -> None:
        self.devices: dict[str, DeviceState] = {name: DeviceState(name) for name in devices}
        self.events: dict[tuple[str, str], int] = {}
        """(kind, type) -> events stored."""
        self.alarms_lost: dict[tuple[str, str], int] = {}
        """(device, exception code) -> reports of the vendor library that it lost alarms."""
        self.login_failures: dict[str, int] = {}
        self.listen_refused: dict[tuple[str, str], int] = {}
        """(port, reason) -> requests the listen front refused."""
        self.host_restarts: dict[str, int] = {}
        """device host -> `device_host_crashed` events."""
        self.dropped: dict[str, int] = {}
        """where (bus, outbox) -> events hikd dropped because its buffers were full."""
        self.uncounted = 0

    def observe(self, event: Event) -> None:
        key = (event.kind, event.type)
        events = self.events
        events[key] = events.get(key, 0) + 1
        device = self.devices.get(event.device.name)
        if device is None:
            if event.device == HIKD:
                if event.kind == "health":
                    self._hikd_health(event)
                return
            device = self.devices[event.device.name] = DeviceState(event.device.name)
        device.last_event = event
        if event.kind == "alarm":
            if event.state != "pulse":
                self._alarm(device, event)
        elif event.kind == "health":
            self._health(device, event)

    def observe_all(self, events: Iterable[Event]) -> None:
        """Count `events`; one that cannot be counted (a malformed attribute from another
        process) is skipped and logged, so the watch never holds up the outbox."""
        observe = self.observe
        for event in events:
            try:
                observe(event)
            except Exception:
                self.uncounted += 1
                log.exception("watch: an event could not be counted", id=event.id)

    # -- alarms ------------------------------------------------------------------------

    @staticmethod
    def _alarm(device: DeviceState, event: Event) -> None:
        attributes = event.attributes
        if attributes.get("backfilled") or attributes.get("resent"):
            return  # from the past: nothing of it is open now
        if event.state == "start":
            if len(device.open_alarms) >= MAX_OPEN_ALARMS:
                del device.open_alarms[next(iter(device.open_alarms))]
            device.open_alarms[event.id] = event
        else:
            device.open_alarms.pop(str(attributes.get("start_id")), None)

    # -- health (rare) -----------------------------------------------------------------

    def _health(self, device: DeviceState, event: Event) -> None:
        attributes = event.attributes
        kind = event.type
        if kind == "online":
            device.online = device.seen = True
            device.protocol = attributes.get("protocol") or device.protocol
        elif kind in ("offline", "auth_failed"):
            device.online = False
            device.seen = True
            if kind == "auth_failed":
                _add(self.login_failures, device.name)
        elif kind == "alarms_lost":
            code = attributes.get("code")
            _add(self.alarms_lost, (device.name, f"{code:#x}" if isinstance(code, int) else ""))
        device.health.apply(event)

    def _hikd_health(self, event: Event) -> None:
        attributes = event.attributes
        kind = event.type
        if kind == "listen_refused":
            port = str(attributes.get("port", ""))
            reasons = attributes.get("reasons")
            for reason, count in (reasons if isinstance(reasons, dict) else {}).items():
                _add(self.listen_refused, (port, str(reason)), _count(count))
        elif kind == "reload":
            # Stored after the last events of the removed devices (`hikd.hosts.host_reload`).
            for name in attributes.get("removed") or {}:
                self.devices.pop(name, None)
            for name in attributes.get("added") or []:
                self.devices.setdefault(name, DeviceState(name))
        elif kind == "device_host_crashed":
            _add(self.host_restarts, str(attributes.get("host", "")))
        elif kind == "bus_overflow":
            _add(self.dropped, "bus", _count(attributes.get("dropped")))
        elif kind == "outbox_overflow":
            _add(self.dropped, "outbox", _count(attributes.get("total")))

    # -- reading -----------------------------------------------------------------------

    def device_list(self) -> list[dict[str, Any]]:
        """Each device's state now, for `hikd status`."""
        out = []
        for device in list(self.devices.values()):
            last = device.last_event
            open_alarms = list(dict(device.open_alarms).values())
            out.append(
                {
                    "name": device.name,
                    "online": device.online if device.seen else None,
                    "armed": device.armed,
                    "protocol": device.protocol,
                    "last_event": None
                    if last is None
                    else {
                        "kind": last.kind,
                        "type": last.type,
                        "state": last.state,
                        "channel": last.channel,
                        "received": last.received.isoformat(),
                    },
                    "alarms_open": [
                        {"type": e.type, "channel": e.channel, "since": e.time.isoformat()}
                        for e in open_alarms
                    ],
                    "health": device.health.summary(),
                }
            )
        return out


def _add(counts: dict[Any, int], key: Any, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0
