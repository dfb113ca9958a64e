"""The control messages between the supervisor and a device host (pickled over a
`multiprocessing` Pipe). Events never travel here: they go through the outbox.

Supervisor -> host: `Start` (first), `Ping`, `Stop`, `Command`, `RunJob`, `SenderAlias`,
`Resent`, `Reload`.
Host -> supervisor: `Ready` (once, after start), `Pong` (per ping, with the devices' state),
`Reply` (per `Command`/`RunJob`/`SenderAlias`/`Resent`/`Reload`), `ListenMisread`,
`ListenStored` (per batch with pushed alarms in it, so that the listen front forgets them),
`Stopped` (after a clean stop). The alarms a host has open are in a file
(`hikd.hosts.open_alarms`), not sent here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device as its host sees it (picklable: crosses to the supervisor)."""

    name: str
    serial: str
    address: str
    state: str
    armed: bool


@dataclass(frozen=True, slots=True)
class Start:
    """What the host runs: the configuration (passwords included: a pipe between two
    processes of one user), its index and the names of its devices; whether it takes the
    place of a host that crashed (`hikd.devices.remembered`)."""

    config: Any
    index: int
    devices: list[str]
    after_crash: bool = False


@dataclass(frozen=True, slots=True)
class Ping:
    seq: int


@dataclass(frozen=True, slots=True)
class Stop:
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Command:
    """Run command `name` (`hikd.hosts.device_host.COMMANDS`) on `device`'s session."""

    id: int
    device: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunJob:
    id: int
    job: str


@dataclass(frozen=True, slots=True)
class SenderAlias:
    """The listen front relays `sender`'s requests from loopback address `alias`."""

    id: int
    alias: str
    sender: str
    again: int = 0
    """The first requests relayed from `alias` are this many that a host before this one
    took and may have stored: their events are marked ``resent``."""


@dataclass(frozen=True, slots=True)
class Resent:
    """Request `number` relayed from `alias` (counted as `SenderAlias` restarted the count) is
    one a host before may have stored, past the first `again`: its events are marked
    ``resent`` too (a retry of a misread one, or after a relaying again was cut short)."""

    id: int
    alias: str
    number: int


@dataclass(frozen=True, slots=True)
class Reload:
    """Run these devices from now on (a configuration reload, `hikd.hosts.host_reload`): the
    new configuration and the names of the host's devices in it, as in `Start`."""

    id: int
    config: Any
    devices: list[str]


@dataclass(frozen=True, slots=True)
class Ready:
    pid: int
    library_ports: dict[int, int]
    """Public listen port -> the host's loopback port of the vendor library behind it."""


@dataclass(frozen=True, slots=True)
class Pong:
    seq: int
    healthy: bool
    devices: tuple[DeviceStatus, ...]


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    ok: bool
    value: Any = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class ListenMisread:
    """The library could not read request `number` the front relayed from `alias` (0x7fff)."""

    alias: str
    number: int


@dataclass(frozen=True, slots=True)
class ListenStored:
    """What came of the requests relayed from each alias, up to the number given
    (`SenderMap.count_heard`), is stored: the front may forget them. One per batch stored."""

    heard: dict[str, int]


@dataclass(frozen=True, slots=True)
class Stopped:
    pass


ToHost = Start | Ping | Stop | Command | RunJob | SenderAlias | Resent | Reload
FromHost = Ready | Pong | Reply | ListenMisread | ListenStored | Stopped
