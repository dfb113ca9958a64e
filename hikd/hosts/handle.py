"""One device host and the thread that keeps it running (`hikd.hosts.supervisor`).

The process is a fresh interpreter (``python -m hikd.hosts.child``) given two pipes: the
control pipe (`hikd.hosts.messages`) and a wake pipe on which the host writes a byte after
each commit to the outbox. The watching thread reads its messages, pings it every `PING_S`
(no answer for `HANG_S`: hung, killed), and when the process ends without being told to
(its end of the control pipe closes), reports the crash and starts it again.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import structlog

from hikd.config import Config, DeviceConfig
from hikd.delivery import hops
from hikd.delivery.outbox import HIKD
from hikd.events import DeviceRef, Event, health
from hikd.hosts.messages import (
    DeviceStatus,
    ListenMisread,
    ListenStored,
    Ping,
    Pong,
    Ready,
    Reply,
    Start,
    Stop,
    Stopped,
    ToHost,
)
from hikd.hosts.open_alarms import open_alarms_path, take_open_alarms
from hikd.listeners.alarm_state import restart_stop
from hikd.plain_config import plain

log = structlog.get_logger("hikd.hosts")

PING_S = 1.0
HANG_S = 10.0
"""A host that answers no ping for this long is hung: killed and restarted."""
START_S = 60.0
"""A host that is not ready this long after its start is hung at start."""
STABLE_S = 60.0
"""A host that ran this long before it crashed starts again at once."""
MAX_BACKOFF_S = 300.0
MALLOC_ARENA_MAX = "2"
"""glibc's malloc arenas in a host unless hikd's environment sets ``MALLOC_ARENA_MAX``: the
vendor library runs hundreds of threads (about 2.7 per armed device) and glibc gives threads
up to 8 arenas per core; 2 saved ~20 MB of 170 per 256 armed devices (1: no more)
(README "Processes")."""


class HostUnavailable(RuntimeError):
    """The device's host is not running now (it crashed and waits for its restart)."""


@dataclass(frozen=True, slots=True)
class HostState:
    index: int
    pid: int | None
    state: str
    """starting, running, restarting (crashed, waiting for its next start) or stopped."""
    devices: tuple[DeviceStatus, ...]
    restarts: int
    last_crash: str | None


@dataclass
class Shared:
    """What the hosts of one supervisor share."""

    config: Config
    publish: Callable[[Event], None]
    on_stored: Callable[[], None]
    stopping: threading.Event = field(default_factory=threading.Event)
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    on_misread: Callable[[str, int], None] = lambda _alias, _number: None
    """A host's library could not read a relayed request: the listen fronts relay it again."""
    on_listen_stored: Callable[[Hashable, dict[str, int]], None] = lambda _host, _heard: None
    """A host stored what came of relayed requests (`ListenStored`): the fronts forget them."""

    @property
    def stop_timeout_s(self) -> float:
        return self.config.sdk.shutdown_timeout_s


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Reply | None = None
        self.failed = ""
        """Why no reply will come (the host ended)."""


class HostHandle:
    """One device host and the thread that keeps it running."""

    def __init__(
        self,
        shared: Shared,
        index: int,
        devices: list[DeviceConfig],
    ) -> None:
        self.shared = shared
        self.index = index
        self.devices = devices
        self.state = "starting"
        self.pid: int | None = None
        self.restarts = 0
        self.last_crash: str | None = None
        self.library_ports: dict[int, int] = {}
        self.ready = threading.Event()
        self.aliases: set[str] = set()
        """Sender aliases this incarnation knows (`SenderAlias`)."""
        self._statuses: dict[str, DeviceStatus] = {}
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(
            target=self._supervise, name=f"hikd-host-{index}", daemon=True
        )

    # -- API -----------------------------------------------------------------------------
    @property
    def incarnation(self) -> tuple[int, int]:
        """This host's current start: (index, restarts)."""
        return self.index, self.restarts

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def kill(self) -> None:
        """Kill the process if it still runs (it did not stop in time)."""
        process = self._process
        if process is not None and process.poll() is None:
            log.warning("device host did not stop in time; killing it", device_host=self.index)
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(1.0)

    def snapshot(self) -> HostState:
        with self._lock:
            known = dict(self._statuses)
        statuses = tuple(
            known.get(d.name)
            or DeviceStatus(d.name, "", f"{d.host}:{d.port}", "offline", armed=False)
            for d in self.devices
        )
        return HostState(self.index, self.pid, self.state, statuses, self.restarts, self.last_crash)

    def request(self, make: Callable[[int], ToHost], timeout: float) -> Reply:
        if self.state != "running":
            raise HostUnavailable(f"device host {self.index} is {self.state}")
        slot = _Pending()
        with self._lock:
            ident = next(self.shared.ids)
            self._pending[ident] = slot
        try:
            self._send(make(ident))
            if not slot.done.wait(timeout):
                raise TimeoutError(f"device host {self.index} did not answer in {timeout:g} s")
        finally:
            with self._lock:
                self._pending.pop(ident, None)
        if slot.reply is None:
            raise HostUnavailable(f"device host {self.index}: {slot.failed}")
        return slot.reply

    def _send(self, message: ToHost) -> None:
        conn = self._conn
        if conn is None:
            raise HostUnavailable(f"device host {self.index} is {self.state}")
        try:
            with self.shared.send_lock:
                conn.send(message)
        except OSError as exc:
            raise HostUnavailable(f"device host {self.index} is gone: {exc}") from None

    # -- the watching thread ---------------------------------------------------------------
    def _supervise(self) -> None:
        stopping = self.shared.stopping
        crashes = 0
        while not stopping.is_set():
            started = time.monotonic()
            why = self._run_once()
            if why is None or stopping.is_set():
                break
            crashes = 1 if time.monotonic() - started >= STABLE_S else crashes + 1
            delay = restart_delay_s(crashes)
            self._crashed(why, delay, crashes)
            if stopping.wait(delay):
                break
            self.restarts += 1
        self.state = "stopped"

    def _run_once(self) -> str | None:
        """Start the process and watch it until it ends; why it ended (None: told to)."""
        control, control_child = Pipe()
        wake, wake_child = Pipe(duplex=False)
        names = [d.name for d in self.devices]
        fds = (control_child.fileno(), wake_child.fileno())
        self.state = "starting"
        self.ready.clear()
        self.aliases = set()
        try:
            # A fresh interpreter (not a fork of this one with its threads), given only the
            # two pipes; it learns what to run from the first message.
            process = subprocess.Popen(
                [sys.executable, "-m", "hikd.hosts.child", *map(str, fds)],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                env=host_environment(os.environ),
            )
        except OSError as exc:
            for conn in (control, control_child, wake, wake_child):
                conn.close()
            return f"could not start: {exc}"
        control_child.close()
        wake_child.close()
        self._process, self._conn, self.pid = process, control, process.pid
        log.info("device host started", device_host=self.index, pid=process.pid, devices=names)
        threading.Thread(
            target=self._wakes, args=(wake,), name=f"hikd-host-{self.index}-wake", daemon=True
        ).start()
        try:
            with contextlib.suppress(HostUnavailable):
                self._send(Start(plain(self.shared.config), self.index, names, self.restarts > 0))
            return self._watch(process, control)
        finally:
            self._conn = None
            control.close()
            self._fail_pending("the device host ended")

    def _wakes(self, wake: Connection) -> None:
        """A byte per commit of the host: deliver what it stored, now. One read takes every
        byte waiting (one wake-up of the delivery side for all the commits it missed)."""
        fd = wake.fileno()
        try:
            while os.read(fd, 65536):  # empty: the host's end closed
                if hops.ON:
                    hops.note("woken")
                self.shared.on_stored()
        except OSError:
            pass
        finally:
            wake.close()

    def _watch(self, process: subprocess.Popen[bytes], control: Connection) -> str | None:
        """Until the process ends: its end of the control pipe closes only then."""
        started = last_answer = time.monotonic()
        next_ping = started + PING_S
        seq = 0
        stop_sent = False
        killed: str | None = None
        while True:
            if control.poll(max(0.0, next_ping - time.monotonic())):
                try:
                    self._receive(control.recv())
                    last_answer = time.monotonic()
                except (EOFError, OSError):
                    return self._ended(process, stop_sent, killed)
            now = time.monotonic()
            if self.shared.stopping.is_set() and not stop_sent:
                stop_sent = True
                self.state = "stopping"
                with contextlib.suppress(HostUnavailable):
                    self._send(Stop(self.shared.stop_timeout_s))
                continue
            if stop_sent or killed:
                continue
            if now >= next_ping:
                next_ping = now + PING_S
                if self.ready.is_set():
                    seq += 1
                    with contextlib.suppress(HostUnavailable):
                        self._send(Ping(seq))
            limit = HANG_S if self.ready.is_set() else START_S
            if now - last_answer > limit:
                killed = f"hung (no answer for {limit:g} s)"
                log.error("device host does not answer; killing it", device_host=self.index)
                process.kill()

    def _ended(
        self, process: subprocess.Popen[bytes], stop_sent: bool, killed: str | None
    ) -> str | None:
        try:
            code = process.wait(5.0)
        except subprocess.TimeoutExpired:  # closed its pipe but lives on: not a host any more
            process.kill()
            code = process.wait()
        if stop_sent:
            return None
        return killed or _exit_reason(code)

    def _receive(self, message: Any) -> None:
        if isinstance(message, Pong):
            with self._lock:
                self._statuses = {s.name: s for s in message.devices}
        elif isinstance(message, Reply):
            with self._lock:
                slot = self._pending.get(message.id)
            if slot is not None:
                slot.reply = message
                slot.done.set()
        elif isinstance(message, Ready):
            self.library_ports = dict(message.library_ports)
            self.state = "running"
            self.ready.set()
            log.info("device host ready", device_host=self.index, pid=message.pid)
        elif isinstance(message, ListenMisread):
            self.shared.on_misread(message.alias, message.number)
        elif isinstance(message, ListenStored):
            self.shared.on_listen_stored(self.incarnation, message.heard)
        elif isinstance(message, Stopped):
            pass

    def _fail_pending(self, why: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for slot in pending.values():
            slot.failed = why
            slot.done.set()

    def _crashed(self, why: str, delay: float, crashes: int) -> None:
        self.state = "restarting"
        self.last_crash = why
        with self._lock:
            statuses, self._statuses = self._statuses, {}
        names = [d.name for d in self.devices]
        publish = self.shared.publish
        log.error(
            "device host crashed; starting it again"
            + (f" in {delay:g} s (it keeps crashing: backing off)" if crashes > 1 else ""),
            device_host=self.index,
            pid=self.pid,
            reason=why,
            devices=names,
            restart_in_s=delay,
            crashes_in_a_row=crashes,
        )
        publish(
            health(
                HIKD,
                "device_host_crashed",
                host=self.index,
                pid=self.pid,
                reason=why,
                signal=why.removeprefix("signal ") if why.startswith("signal ") else None,
                devices=names,
                restart_in_s=delay,
                crashes_in_a_row=crashes,
            )
        )
        for device in self.devices:
            known = statuses.get(device.name)
            ref = DeviceRef(
                device.name,
                known.serial if known else "",
                known.address if known else f"{device.host}:{device.port}",
            )
            publish(health(ref, "offline", reason=f"its device host crashed ({why})"))
        for start in self._left_open():
            publish(restart_stop(start))

    def _left_open(self) -> list[Event]:
        """The alarms the dead host had open (`hikd.hosts.open_alarms`)."""
        path = open_alarms_path(self.shared.config.daemon.state_dir, self.index)
        try:
            return take_open_alarms(path)
        except OSError as exc:
            log.error(
                "cannot read the alarms the crashed device host had open; they stay on",
                device_host=self.index,
                path=str(path),
                error=str(exc),
            )
            return []


def host_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """A host's environment: the supervisor's, with `MALLOC_ARENA_MAX` unless it is set."""
    return {"MALLOC_ARENA_MAX": MALLOC_ARENA_MAX, **environ}


def restart_delay_s(crashes_in_a_row: int) -> float:
    """When a host that crashed starts again: at once after one crash, then 2, 4, 8 ... s
    while it keeps crashing within `STABLE_S` of its start, at most `MAX_BACKOFF_S`."""
    if crashes_in_a_row <= 1:
        return 0.0
    return min(MAX_BACKOFF_S, 2.0 ** (crashes_in_a_row - 1))


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
