"""The device-host process: ``python -m hikd.hosts.child <control fd> <wake fd>``, started
by the supervisor (`hikd.hosts.handle`): a fresh interpreter that inherits only the two pipes
(and stdout/stderr). The first message on the control pipe is `Start`.

The main thread answers the supervisor: pings (with the devices' state, and only while the
alarm pipeline lives: a host that cannot decode any more is restarted like a hung one),
commands and job runs (each on a thread of its own, so pings keep being answered), stop.
When the supervisor's end of the pipe closes (it died), the host stops too.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import structlog

from hikd.devices import remembered
from hikd.hosts import interpreter
from hikd.hosts.device_host import DeviceHost
from hikd.hosts.host_reload import reload_devices
from hikd.hosts.messages import (
    Command,
    FromHost,
    ListenMisread,
    ListenStored,
    Ping,
    Pong,
    Ready,
    Reload,
    Reply,
    Resent,
    RunJob,
    SenderAlias,
    Start,
    Stop,
    Stopped,
)
from hikd.hosts.open_alarms import OpenAlarmsFile, open_alarms_path
from hikd.hosts.publisher import HostPublisher
from hikd.hosts.publishing import Publishing
from hikd.listeners.senders import SenderMap
from hikd.logs import setup_logging
from hikd.native_stderr import route_native_stderr
from hikd.sdk import no_realtime

if TYPE_CHECKING:
    from hikd.config import Config

log = structlog.get_logger("hikd.hosts")

STOP_TIMEOUT_S = 10.0
"""When the supervisor vanished without saying how long a stop may take."""
_RELOADING = threading.Lock()


class _Link:
    """The control pipe (shared by the main thread and command threads) and the wake pipe."""

    def __init__(self, control: Connection, wake: Connection) -> None:
        self.control = control
        self.wake_conn = wake
        self._wake_fd = wake.fileno()
        # A supervisor that does not read its wake-ups must not stall the host's writes: a
        # full pipe holds wake-ups enough.
        os.set_blocking(self._wake_fd, False)
        self._lock = threading.Lock()

    def send(self, message: FromHost) -> None:
        try:
            with self._lock:
                self.control.send(message)
        except OSError:
            pass  # the supervisor is gone: the main loop sees it and stops

    def wake(self) -> None:
        """One byte on the wake pipe (a write of one byte is atomic: no lock, no framing)."""
        try:  # noqa: SIM105 - once per commit: no context manager built for it
            os.write(self._wake_fd, b"w")
        except OSError:
            pass  # full (the supervisor has wake-ups waiting), or it is gone


def main(
    config: Config,
    index: int,
    devices: list[str],
    control: Connection,
    wake: Connection,
    after_crash: bool = False,
) -> None:
    """Run device host `index` with `devices` until told to stop (or orphaned)."""
    # The supervisor stops its hosts in order (alarm channels closed, logged out, events
    # stored): a Ctrl-C in a terminal or systemd's SIGTERM to the whole unit is for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A hang-up of the terminal is the supervisor's too (it reloads its configuration).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging(config.logging.level, config.logging.format)
    structlog.contextvars.bind_contextvars(device_host=index)
    route_native_stderr()
    link = _Link(control, wake)
    alarms = OpenAlarmsFile(open_alarms_path(config.daemon.state_dir, index))
    devices_read = remembered.RememberedDevices(
        remembered.remembered_path(config.daemon.state_dir, index), after_crash
    )
    remembered.CURRENT = devices_read
    publisher = HostPublisher(
        config.daemon.state_dir,
        list(config.sinks),
        wake=link.wake,
        note=alarms.note,
        stored_heard=lambda heard: link.send(ListenStored(heard)),
    )
    publisher.start()
    owned = [d for d in config.devices if d.name in set(devices)]
    senders = SenderMap()
    host = DeviceHost(
        config,
        owned,
        Publishing(
            publisher.publish,
            publisher.subscribe,
            publisher.stored,
            queue=publisher.queue,
            flush=publisher.flush,
            subscribe_stored=publisher.subscribe_stored,
        ),
        listening="library",
        senders=senders,
        index=index,
    )
    host.start()
    if host.pipeline is not None:
        host.pipeline.misread = lambda alias, number: link.send(ListenMisread(alias, number))
        host.pipeline.heard = publisher.heard
    interpreter.started()
    link.send(Ready(os.getpid(), host.library_ports()))
    timeout = _serve(host, link, senders)
    deadline = time.monotonic() + timeout
    jobs_done = host.stop(deadline)
    publisher.stop(max(0.5, deadline - time.monotonic()))
    alarms.close(remove=True)
    devices_read.close(remove=True)
    host.close(deadline, jobs_done)
    link.send(Stopped())
    log.info("device host stopped")


def _serve(host: DeviceHost, link: _Link, senders: SenderMap) -> float:
    """Answer the supervisor until `Stop`; the stop's time-out."""
    settled = False
    while True:
        try:
            message = link.control.recv()
        except (EOFError, OSError):
            log.warning("the supervisor is gone; stopping")
            return STOP_TIMEOUT_S
        if isinstance(message, Ping):
            if host.healthy():
                statuses = tuple(host.statuses())
                link.send(Pong(message.seq, True, statuses))
                if not settled and all(s.state != "starting" for s in statuses):
                    settled = True
                    _give_back_free_memory()
        elif isinstance(message, Stop):
            return message.timeout_s
        elif isinstance(message, SenderAlias):
            senders.learn(message.alias, message.sender, message.again)
            link.send(Reply(message.id, True))
        elif isinstance(message, Resent):
            senders.mark_resent(message.alias, message.number)
            link.send(Reply(message.id, True))
        elif isinstance(message, Command | RunJob | Reload):
            # In this thread's context: its log lines name the device host too.
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(_answer, host, link, message),
                name="hikd-command",
                daemon=True,
            ).start()


def _give_back_free_memory() -> None:
    """glibc's ``malloc_trim(0)``, once every device's first login has ended: glibc keeps the
    heap that the logins in flight at once needed and freed (6 MB for 256 devices, most of it
    the vendor library's) until told (README "Processes")."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not glibc
        ctypes.CDLL(None).malloc_trim(0)


def _answer(host: DeviceHost, link: _Link, message: Command | RunJob | Reload) -> None:
    value: Any
    try:
        if isinstance(message, Command):
            value = host.command(message.device, message.name, message.args)
        elif isinstance(message, Reload):
            owned = set(message.devices)
            devices = [d for d in message.config.devices if d.name in owned]
            with _RELOADING:  # one at a time (the supervisor waits for each answer)
                wanted = message.config.logging  # the log level can change live
                if wanted != host.config.logging:
                    setup_logging(wanted.level, wanted.format)
                value = reload_devices(host, message.config, devices)
        else:
            value = host.run_job(message.job)
    except Exception as exc:
        link.send(Reply(message.id, False, error=str(exc) or type(exc).__name__))
        return
    try:
        link.send(Reply(message.id, True, value))
    except Exception as exc:  # a value that does not pickle
        link.send(Reply(message.id, False, error=f"cannot send the result: {exc}"))


def _entry(argv: list[str]) -> int:
    # Before any thread: the vendor library's threads run as under the systemd unit.
    no_realtime.refuse_realtime()
    control = Connection(int(argv[1]))
    wake = Connection(int(argv[2]), readable=False)
    try:
        start = control.recv()
    except (EOFError, OSError):
        return 1  # the supervisor is gone already
    assert isinstance(start, Start)
    main(start.config, start.index, start.devices, control, wake, start.after_crash)
    return 0


if __name__ == "__main__":
    sys.exit(_entry(sys.argv))
