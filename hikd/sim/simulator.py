"""`Simulator`: many simulated devices served by one asyncio loop on a background thread.

One loop serves every device (256 devices on 256 ports and their alert streams fit in
one thread). The Python API is blocking and thread-safe: tests and the daemon's demo call
it from their own threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import ssl
import threading
from collections.abc import Coroutine, Sequence
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from hikd.errors import UserError
from hikd.sim.alerts import AlertFormat
from hikd.sim.config import PushTarget, SimDeviceConfig, numbered
from hikd.sim.control import add_device_endpoints, add_simulator_endpoints
from hikd.sim.device import SimDevice
from hikd.sim.http import Connection, serve_connection
from hikd.sim.scenario import ScenarioResult, run_scenario
from hikd.sim.tls import SelfSignedCertificate

T = TypeVar("T")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
FDS_PER_DEVICE = 8
"""Sockets a device may need in a process that also runs the vendor library: listener,
RTSP, alert streams and login connections on both sides (256 devices armed: ~1,400)."""


def _raise_fd_limit(needed: int) -> None:
    """Raise this process's open-file soft limit towards `needed` (up to the hard limit):
    the usual default of 1024 is too low for a few hundred simulated devices."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Simulator:
    """Simulated Hikvision devices. `start()` returns once every device listens."""

    def __init__(self, configs: Sequence[SimDeviceConfig] | None = None) -> None:
        configs = list(configs) if configs is not None else [SimDeviceConfig()]
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise UserError("simulated devices need distinct names: two have the same `name`")
        self.devices: list[SimDevice] = [SimDevice(c) for c in configs]
        for device in self.devices:
            # The control endpoints (knobs, triggers, the scenario) know the whole device
            # and the simulator: they are added here, so the device never imports them.
            add_device_endpoints(device)
            add_simulator_endpoints(device, self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._certificate: SelfSignedCertificate | None = None
        self._stopped = False
        self._lock = threading.Lock()

    @classmethod
    def many(cls, count: int, base: SimDeviceConfig | None = None) -> Simulator:
        """`count` devices like `base`, named `<name>-01`.., with consecutive ports if
        `base.port` is set, and their own serial numbers and MAC addresses."""
        if count < 1:
            raise UserError("the number of simulated devices must be at least 1")
        base = base or SimDeviceConfig()
        return cls([numbered(base, i, count) for i in range(count)])

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> Simulator:
        _raise_fd_limit(FDS_PER_DEVICE * len(self.devices) + 256)
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("a Simulator starts once; make a new one to restart")
            loop = asyncio.new_event_loop()
            started = threading.Event()
            failure: list[BaseException] = []
            self._loop = loop
            self._thread = threading.Thread(
                target=self._run, args=(loop, started, failure), name="hikd-sim", daemon=True
            )
            self._thread.start()
        if not started.wait(START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("the simulator did not start listening in time")
        if failure:
            self.stop()
            raise failure[0]
        return self

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        started: threading.Event,
        failure: list[BaseException],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open_all())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            loop.run_until_complete(self._shutdown())
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open_all(self) -> None:
        context: ssl.SSLContext | None = None
        if any(d.config.https for d in self.devices):
            self._certificate = SelfSignedCertificate()
            context = self._certificate.server_context()
        loop = asyncio.get_running_loop()
        for device in self.devices:
            device.loop = loop
            try:
                device.server = await asyncio.start_server(
                    partial(self._accept, device),
                    device.config.host,
                    device.config.port,
                    ssl=context if device.config.https else None,
                    reuse_address=True,
                    backlog=1024,
                    ssl_handshake_timeout=10.0 if device.config.https else None,
                )
            except OSError as exc:
                where = f"{device.config.host}:{device.config.port}"
                if exc.errno == errno.EADDRINUSE:
                    raise UserError(
                        f"simulated device {device.name}: port {where} is in use; "
                        "pick another port or 0 for a free one"
                    ) from None
                raise UserError(
                    f"simulated device {device.name}: cannot listen on {where}: {exc.strerror}"
                ) from None
            device.port = device.server.sockets[0].getsockname()[1]
            await device.started()

    async def _accept(
        self, device: SimDevice, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = Connection(reader, writer)
        device.connections.add(conn)
        try:
            await serve_connection(conn, device.handle)
        except asyncio.CancelledError:
            # The top of a connection's task: ending quietly at shutdown is the point (and
            # asyncio 3.11's stream callback would log a cancelled task as an error).
            pass
        finally:
            device.connections.discard(conn)

    def stop(self) -> None:
        """Close every listener and connection at once, like a killed device. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(STOP_TIMEOUT_S)
            loop.call_soon_threadsafe(loop.stop)
            if threading.current_thread() is not thread:
                thread.join(STOP_TIMEOUT_S)
        if self._certificate is not None:
            self._certificate.cleanup()

    async def _shutdown(self) -> None:
        for device in self.devices:
            await device.stopping()
            if device.server is not None:
                device.server.close()
            for conn in list(device.connections):
                conn.abort()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S / 2)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- helpers for the API -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the simulator's loop and wait for its result."""
        if self._loop is None or not self.running:
            coro.close()
            raise RuntimeError("the simulator is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def run_scenario(
        self,
        rate: float,
        types: Sequence[str] = ("VMD",),
        duration: float = 1.0,
        devices: int | Sequence[SimDevice] | None = None,
        push_to: PushTarget | tuple[str, int] | None = None,
        *,
        pictures: int = 0,
        fmt: AlertFormat = "xml",
    ) -> ScenarioResult:
        """Send `rate` alarms/s in total, round-robin over `devices` (all, the first N, or
        those given), cycling through `types`, for `duration` s; blocks until done.

        Without `push_to` the alarms go to the devices' open alert streams; with it
        (`(host, port)` or a `PushTarget`) each is POSTed there instead.
        """
        if devices is None:
            chosen = list(self.devices)
        elif isinstance(devices, int):
            chosen = self.devices[:devices]
        else:
            chosen = list(devices)
        target: PushTarget | None
        if isinstance(push_to, tuple):
            target = PushTarget(host=push_to[0], port=push_to[1])
        else:
            target = push_to
        coro = run_scenario(
            chosen, rate, list(types), duration, push_to=target, pictures=pictures, fmt=fmt
        )
        return self.call(coro, timeout=duration + 60)

    def device(self, name: str) -> SimDevice:
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)
