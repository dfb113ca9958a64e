"""The supervisor's side of the device hosts: start them, watch them, restart them.

Each host is a "spawn" child process (`hikd.hosts.child.main`) with two pipes: the control
pipe (`hikd.hosts.messages`) and a wake pipe on which it writes a byte after each commit to
the outbox. One thread per host watches it: its messages, its process, its heartbeat (a
`Ping` a second; no `Pong` for `HANG_S`: hung, killed). A host that ends without being told
to (a signal such as SIGSEGV, SIGSYS or SIGKILL from the OOM killer, an exit, a hang) is
started again: at once the first time, then after 2, 4, 8 ... s up to `MAX_BACKOFF_S` while it
keeps crashing within `STABLE_S` of its start. Each crash publishes ``device_host_crashed``
(health about hikd), ``offline`` for each of its devices, and a ``stop`` with
``ended_by: "restart"`` for each alarm that was on in it.

API for the rest of the supervisor (status, commands):

- ``command(device, name, args, timeout)``: run a command on the session of `device` in the
  host that owns it; returns its value, raises `HostUnavailable` (host restarting),
  `CommandFailed` (the host's handler raised) or `TimeoutError`.
- ``run_job(name, timeout)``: run a job now on every host; the results of all.
- ``reload(config, timeout)``: run `config`'s devices from now on (a configuration reload).
- ``hosts()``: one `HostState` per host (pid, state, devices and their state, restarts,
  last crash).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from hikd.config import Config
from hikd.config.changes import same_devices
from hikd.events import Event
from hikd.hosts.handle import START_S, HostHandle, HostState, HostUnavailable, Shared
from hikd.hosts.messages import Command, Reload, Resent, RunJob, SenderAlias
from hikd.hosts.placement import spread
from hikd.plain_config import plain

__all__ = ["CommandFailed", "HostHandle", "HostState", "HostSupervisor", "HostUnavailable"]

log = structlog.get_logger("hikd.hosts")

RELOAD_WAIT_S = 60.0
"""How long a reload waits for a host that was not running to run, and for its answer."""


class CommandFailed(RuntimeError):
    """The host ran the command and it failed; the message says why."""


class HostSupervisor:
    def __init__(
        self,
        config: Config,
        publish: Callable[[Event], None],
        on_stored: Callable[[], None],
    ) -> None:
        """`publish`: the supervisor's own events (crashes); `on_stored()`: a host committed
        events to the outbox (wake the delivery side)."""
        self.config = config
        self.shared = Shared(config, publish, on_stored)
        enabled = [d for d in config.devices if d.enabled]
        by_name = {d.name: d for d in enabled}
        placed = spread([d.name for d in enabled], config.daemon.device_hosts)
        self.handles = [
            HostHandle(self.shared, i, [by_name[n] for n in names])
            for i, names in enumerate(placed)
        ]
        self._owner = {n: h for h in self.handles for n in (d.name for d in h.devices)}
        self._reloading = threading.Lock()

    def start(self, ready_timeout: float = START_S) -> None:
        """Start every host; return once all are ready (or `ready_timeout` passed: they
        keep starting, a late one is watched like any other)."""
        for handle in self.handles:
            handle.start()
        deadline = time.monotonic() + ready_timeout
        for handle in self.handles:
            handle.ready.wait(max(0.0, deadline - time.monotonic()))

    def host_of(self, device: str) -> HostHandle:
        handle = self._owner.get(device)
        if handle is None:
            raise LookupError(f"no enabled device named {device!r}")
        return handle

    def command(
        self, device: str, name: str, args: Mapping[str, Any] | None = None, timeout: float = 30.0
    ) -> Any:
        handle = self.host_of(device)
        reply = handle.request(lambda i: Command(i, device, name, dict(args or {})), timeout)
        if not reply.ok:
            raise CommandFailed(reply.error)
        return reply.value

    def run_job(self, job: str, timeout: float = 3600.0) -> list[Any]:
        results: list[Any] = []
        for handle in self.handles:
            if not handle.devices:
                continue
            reply = handle.request(lambda i: RunJob(i, job), timeout)
            if not reply.ok:
                raise CommandFailed(reply.error)
            results.extend(reply.value)
        return results

    def reload(self, config: Config, timeout: float, every_host: bool = False) -> dict[int, Any]:
        """Run `config`'s devices from now on (`hikd.config.changes.applied`: only devices,
        the log level, allowed senders, ``[alarms]``, ``[arming]`` and jobs differ): each
        host whose devices changed (`every_host`: each host) is sent a `Reload` and its
        answer waited for. A host that is not running starts with
        them next time. Host index -> what it did, or why it could not."""
        with self._reloading:
            self.shared.config = config
            enabled = [d for d in config.devices if d.enabled]
            by_name = {d.name: d for d in enabled}
            placed = spread([d.name for d in enabled], len(self.handles))
            results: dict[int, Any] = {}
            for handle, names in zip(self.handles, placed, strict=True):
                devices = [by_name[n] for n in names]
                if same_devices(handle.devices, devices) and not every_host:
                    handle.devices = devices  # the same, but their password's source
                    continue
                handle.devices = devices
                self._owner = {n: h for h in self.handles for n in (d.name for d in h.devices)}
                results[handle.index] = self._send_reload(handle, timeout)
            return results

    def _send_reload(self, handle: HostHandle, timeout: float) -> Any:
        config, names = self.shared.config, [d.name for d in handle.devices]
        try:
            reply = handle.request(lambda i: Reload(i, plain(config), names), timeout)
        except HostUnavailable:
            threading.Thread(
                target=self._when_running, args=(handle,), name="hikd-reload", daemon=True
            ).start()
            return "not running now: it starts with the new devices"
        except TimeoutError as exc:
            log.error("device host did not apply the reload", device_host=handle.index)
            return str(exc)
        if not reply.ok:
            log.error("device host could not reload", device_host=handle.index, error=reply.error)
            return reply.error
        return reply.value

    def _when_running(self, handle: HostHandle) -> None:
        """The host was not running at the reload. One that crashed starts with the new
        devices; one that was starting had been sent the devices of before: once it runs,
        it is sent the current ones (a host that has them already does nothing)."""
        deadline = time.monotonic() + RELOAD_WAIT_S
        while handle.state != "running" and not self.shared.stopping.is_set():
            if time.monotonic() > deadline:
                return  # its next start has the new devices
            self.shared.stopping.wait(0.2)
        with self._reloading:
            if not self.shared.stopping.is_set():
                self._send_reload(handle, RELOAD_WAIT_S)

    def tell_alias(
        self, handle: HostHandle, alias: str, sender: str, timeout: float, again: int = 0
    ) -> None:
        """Make `handle`'s host know that `alias` stands for `sender` before a request from
        it is relayed there (the host matches the sender to its device); `again`: the first
        requests are this many relayed again after a crash (`SenderAlias.again`)."""
        if alias in handle.aliases:
            return
        handle.request(lambda i: SenderAlias(i, alias, sender, again), timeout)
        handle.aliases.add(alias)

    def tell_resent(self, handle: HostHandle, alias: str, number: int, timeout: float) -> None:
        """Make `handle`'s host mark the events of request `number` from `alias` ``resent``
        before it is relayed there (`Resent`)."""
        handle.request(lambda i: Resent(i, alias, number), timeout)

    def hosts(self) -> list[HostState]:
        return [handle.snapshot() for handle in self.handles]

    def healthy(self) -> bool:
        return all(handle.alive() for handle in self.handles)

    def stop(self, deadline: float) -> None:
        """Tell every host to stop (each stores its events, logs out); kill what is left at
        the deadline."""
        self.shared.stopping.set()
        for handle in self.handles:
            handle.join(max(0.1, deadline - time.monotonic()))
        for handle in self.handles:
            handle.kill()
