"""The listen fronts in the supervisor, routing each vetted request to a device host.

The front (`hikd.listeners.front`) is pure Python: no vendor code runs here, so it stays up
while a host crashes and restarts. Each request of an allowed sender goes to the loopback
``StartListen_V30`` port of the host that owns the sender's device (matched by the device's
``host`` and ``allowed_addresses``, names resolved and refreshed); a sender that is no
configured device goes to the first host, which reports it as an unknown device. Before the
first request from a sender reaches a host (after each start of that host), the host learns
the loopback address the front relays it from (`SenderAlias`, one round trip). The front
keeps each request until the host reports what came of it stored (`ListenStored`), on disk
too (`hikd.listeners.spool`, read back at the next start): while the owning host restarts,
requests wait in the front, and those a host took but did not store before it ended are
relayed again to the next one (`hikd.listeners.host_relay`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import structlog

from hikd.addresses import AddressSet, NameRefresher
from hikd.config import Config, ListenConfig
from hikd.events import Event
from hikd.hosts.handle import HostHandle, HostUnavailable
from hikd.hosts.supervisor import HostSupervisor
from hikd.listeners.front import ListenFront
from hikd.listeners.senders import LIBRARY_ADDRESS, SenderMap
from hikd.listeners.spool import Spool
from hikd.listeners.spool_file import spool_path, spools_left
from hikd.listeners.vet import listen_limits, port_in_use

log = structlog.get_logger("hikd.listen")

INTRODUCE_TIMEOUT_S = 5.0
_MEMO_MAX = 4096


class DeviceAddresses:
    """Which device (and so which host) a sender's address belongs to."""

    def __init__(self, supervisor: HostSupervisor) -> None:
        self.supervisor = supervisor
        self.sets: dict[str, AddressSet] = {}
        self._entries: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._memo: dict[str, HostHandle] = {}
        self.devices_changed()

    def devices_changed(self) -> list[AddressSet]:
        """Take the supervisor's devices again (at start, after a reload); the address
        sets that are new (their names are to be resolved)."""
        sets, entries, new = {}, {}, []
        for handle in self.supervisor.handles:
            for device in handle.devices:
                entries[device.name] = [device.host, *device.allowed_addresses]
                known = self.sets.get(device.name)
                if known is None or self._entries.get(device.name) != entries[device.name]:
                    known = AddressSet(entries[device.name], where=f"device {device.name}")
                    new.append(known)
                sets[device.name] = known
        self.sets, self._entries = sets, entries
        self.changed()
        return new

    def changed(self) -> None:
        with self._lock:
            self._memo.clear()

    def host_for(self, sender: str) -> HostHandle:
        with self._lock:
            handle = self._memo.get(sender)
        if handle is not None:
            return handle
        name = next((n for n, s in self.sets.items() if sender in s), None)
        handle = self.supervisor.host_of(name) if name else self.supervisor.handles[0]
        with self._lock:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            self._memo[sender] = handle
        return handle


class HostRouter:
    """`hikd.listeners.host_relay.Router` for one public listen port."""

    def __init__(self, supervisor: HostSupervisor, addresses: DeviceAddresses, port: int):
        self.supervisor = supervisor
        self.addresses = addresses
        self.public_port = port

    def port(self, sender: str, alias: str) -> int | None:
        handle = self.addresses.host_for(sender)
        if handle.state != "running" or alias not in handle.aliases:
            return None
        return handle.library_ports.get(self.public_port)

    def introduce(self, sender: str, alias: str, again: int) -> int | None:
        handle = self.addresses.host_for(sender)
        try:
            self.supervisor.tell_alias(handle, alias, sender, INTRODUCE_TIMEOUT_S, again)
        except (HostUnavailable, TimeoutError):
            return None
        return handle.library_ports.get(self.public_port)

    def mark_resent(self, sender: str, alias: str, number: int) -> bool:
        handle = self.addresses.host_for(sender)
        try:
            self.supervisor.tell_resent(handle, alias, number, INTRODUCE_TIMEOUT_S)
        except (HostUnavailable, TimeoutError):
            return False
        return True

    def incarnation(self, sender: str) -> Hashable:
        return self.addresses.host_for(sender).incarnation


class SupervisedFronts:
    def __init__(
        self, config: Config, supervisor: HostSupervisor, publish: Callable[[Event], None]
    ) -> None:
        self.config = config
        self.supervisor = supervisor
        self.publish = publish
        self.senders = SenderMap()
        self.fronts: list[ListenFront] = []
        self.resolver: NameRefresher | None = None
        self.addresses: DeviceAddresses | None = None

    def devices_changed(self) -> None:
        """A reload changed the devices: route their senders to their hosts now."""
        if self.addresses is not None:
            new = self.addresses.devices_changed()
            if self.resolver is not None:
                self.resolver.watch(new)

    def start(self) -> None:
        """Listen on every ``[[listen]]`` port (a port in use: `UserError`)."""
        allowed = {
            listen.port: AddressSet(listen.allowed, where=f"listen port {listen.port}")
            for listen in self.config.listen
        }
        addresses = self.addresses = DeviceAddresses(self.supervisor)
        self.resolver = NameRefresher(
            [*allowed.values(), *addresses.sets.values()], on_change=addresses.changed
        )
        self.resolver.start()
        # Pushes a removed (or moved) listen port answered and no host stored: relayed
        # through the first port that is configured now.
        left = spools_left(self.config.daemon.state_dir, allowed)
        for listen in self.config.listen:
            self.fronts.append(self._front(listen, allowed[listen.port], addresses, left))
            left = []
        self.supervisor.shared.on_misread = self.misread
        self.supervisor.shared.on_listen_stored = self.stored

    def misread(self, alias: str, number: int) -> None:
        for front in self.fronts:
            front.misread(alias, number)

    def stored(self, host: Hashable, heard: dict[str, int]) -> None:
        for front in self.fronts:
            front.stored(host, heard)

    def _front(
        self,
        cfg: ListenConfig,
        allowed: AddressSet,
        addresses: DeviceAddresses,
        left: list[tuple[int, Path]],
    ) -> ListenFront:
        front = ListenFront(
            cfg.address,
            cfg.port,
            0,
            allowed,
            self.senders,
            self.publish,
            listen_limits(cfg),
            relay_host=LIBRARY_ADDRESS,
            router=HostRouter(self.supervisor, addresses, cfg.port),
            spool=Spool(spool_path(self.config.daemon.state_dir, cfg.port)),
            spools_left=left,
        )
        try:
            front.start()
        except OSError as exc:
            self.stop()
            raise port_in_use(cfg, exc) from None
        log.info("listening for pushed alarms", address=cfg.address, port=cfg.port)
        return front

    def alive(self) -> bool:
        return all(front.alive() for front in self.fronts)

    def stats(self) -> list[dict[str, Any]]:
        """Each front's numbers (`hikd status`, metrics)."""
        return [front.stats() for front in list(self.fronts)]

    def stop(self) -> None:
        if self.resolver is not None:
            self.resolver.stop()
        for front in self.fronts:
            front.stop()
        self.fronts = []
