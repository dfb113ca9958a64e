"""What a feature of the simulated device may use of the device: a narrow protocol.

The feature modules (alarms, log, login, recordings, RTSP, status) are built by `SimDevice`
and hand it their endpoints; they name this protocol, not the class, so none of them
imports the device that imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from hikd.sim.auth import Accounts
from hikd.sim.config import SimDeviceConfig
from hikd.sim.http import Handler, Request, Response

SyncHandler = Callable[[Request], Response]
"""Makes a response at once (a static document)."""


class DevicePart(Protocol):
    """The device as its features see it: its settings, accounts, address and routes."""

    @property
    def config(self) -> SimDeviceConfig: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def port(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def host(self) -> str: ...

    def route(self, method: str, path: str, handler: Handler, *, public: bool = False) -> None:
        """Serve `method path`; a path with regex characters is matched as a regex."""

    def route_static(self, method: str, path: str, make: SyncHandler) -> None:
        """Serve `method path` with a response made at once."""


class RtspStarter(Protocol):
    """The device's RTSP server, started on first use."""

    async def ensure_started(self) -> int:
        """Its port, once it listens."""
        ...
