"""One simulated device: the Python API tests use, and its request routing.

Each feature area (login, alarms, recordings, status, ...) lives in its own module and
adds its routes with `SimDevice.route()`; the device only checks the session and
dispatches (`hikd.sim.routing`).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar, get_args

from hikd.errors import UserError
from hikd.sim import digest, documents
from hikd.sim.alarms import DeviceAlarms, SentAlert
from hikd.sim.alerts import AlertFormat, AlertState, SimAlert
from hikd.sim.auth import Accounts
from hikd.sim.config import DiskStatus, PushTarget, SimDeviceConfig
from hikd.sim.controls import DeviceControls
from hikd.sim.device_setup import DeviceSetup
from hikd.sim.devicelog import DeviceLog
from hikd.sim.http import Connection, Handler, Request, Response
from hikd.sim.linkage import EventLinkage
from hikd.sim.login import add_login_endpoints, add_system_documents
from hikd.sim.parts import SyncHandler
from hikd.sim.push import PushResult
from hikd.sim.recordings import Recording, RecordingStore
from hikd.sim.routing import CONTROL_PREFIX, Routes, request_user
from hikd.sim.rtsp import RtspServer
from hikd.sim.status import DeviceStatus

MAX_LOGGED_REQUESTS = 200_000

T = TypeVar("T")


class SimDevice:
    """A simulated Hikvision device. Created by `Simulator`; read its state from any thread."""

    def __init__(self, config: SimDeviceConfig) -> None:
        # A private copy: knobs change it (disk status, ...) and configs may be reused.
        config = config.model_copy(deep=True)
        self.config = config
        self.port: int = config.port
        self.accounts = Accounts(
            serial=config.serial_number,
            users={config.username: config.password},
            iterations=config.iterations,
            lock_after=config.lock_after,
            lock_seconds=config.lock_seconds,
            session_id_version=config.session_id_version,
        )
        self.realm = f"Login to {config.serial_number}"
        self.http_nonce = secrets.token_hex(16)
        """Digest nonce of the device's HTTP server (one per run, like a device's boot)."""
        self.requests: list[tuple[str, str]] = []
        """(method, path without query) of every request, in order."""
        self.request_targets: list[tuple[str, str]] = []
        """(method, full request target with query), in the same order."""
        self.cookie_check = True
        """False: accept any or no session cookie (a device that keeps sessions over a restart)."""
        self.unavailable: set[str] = set()
        """Paths that answer 404 notSupport, to imitate older firmware."""
        self.connections: set[Connection] = set()
        self.server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The simulator's loop, set when it starts."""
        self._log_lock = threading.Lock()
        self._routes = Routes()
        self.log = DeviceLog(self)
        add_login_endpoints(self)
        add_system_documents(self)
        self.alarms = DeviceAlarms(self)
        self.recordings = RecordingStore(self)
        self.status = DeviceStatus(self)
        self.linkage = EventLinkage(self)
        """Event triggers, detections, arming schedules and alarm hosts (`hikd doctor`)."""
        DeviceSetup(self)
        self.rtsp = RtspServer(self)
        self.controls = DeviceControls(self)
        """Alarm outputs and detections as users' commands switch them."""

    # ----- what tests and the CLI read -------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def scheme(self) -> str:
        return "https" if self.config.https else "http"

    def bad_tries(self, username: str) -> int:
        """Wrong passwords sent for `username` since start (also those sent while locked)."""
        return self.accounts.bad_tries(username)

    def is_locked(self, username: str) -> bool:
        return self.accounts.is_locked(username)

    def logins(self, username: str) -> int:
        """Successful logins of `username` since start."""
        return self.accounts.logins(username)

    def unlock(self, username: str) -> None:
        self.accounts.unlock(username)

    def set_password(self, password: str, username: str | None = None) -> None:
        self.accounts.set_password(username or self.config.username, password)

    def forget_sessions(self) -> None:
        """Forget every session cookie, as a restarted device does (the library re-logs in)."""
        self.accounts.forget_sessions()

    def count(self, path: str, method: str | None = None) -> int:
        """How many requests for `path` (optionally with `method`) the device has answered."""
        with self._log_lock:
            return sum(1 for m, p in self.requests if p == path and (method is None or m == method))

    def clear_requests(self) -> None:
        with self._log_lock:
            self.requests.clear()
            self.request_targets.clear()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run `coro` on the simulator's loop from another thread and wait for it."""
        if self.loop is None or self.loop.is_closed():
            coro.close()
            raise RuntimeError(f"simulated device {self.name} is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def rtsp_port(self) -> int:
        """The RTSP port (downloads); opened now if it was not yet. Not on the loop."""
        if self.rtsp.port is not None:
            return self.rtsp.port
        return self.call(self.rtsp.ensure_started())

    async def started(self) -> None:
        """Called on the loop once the device's HTTP port listens. A fixed RTSP port is
        opened now (to fail early when taken); a free one (0) on first use."""
        if not self.config.rtsp_port:
            return
        try:
            await self.rtsp.ensure_started()
        except OSError as exc:
            where = f"{self.config.host}:{self.config.rtsp_port}"
            raise UserError(
                f"simulated device {self.name}: cannot open RTSP port {where}: {exc.strerror}; "
                "pick another rtsp_port or 0 for a free one"
            ) from None

    async def stopping(self) -> None:
        """Called on the loop before the device's connections are cut."""
        self.rtsp.stop()

    # ----- state knobs (recordings and status) ---------------------------------------------

    def set_disk_status(self, disk_id: int, status: DiskStatus, *, alarm: bool = False) -> None:
        """Change a disk's status (hdd list, working status); with `alarm`, also raise the
        matching diskerror event (or nothing when the disk is back to ok)."""
        if status not in get_args(DiskStatus):
            raise ValueError(f"disk status must be one of {', '.join(get_args(DiskStatus))}")
        self.status.set_disk_status(disk_id, status)
        if alarm and status not in ("ok", "idle", "sleeping"):
            self.trigger("diskerror", channel=disk_id)

    def set_recording(self, channel: int, on: bool) -> None:
        """Stop (or restart) recording on a channel: its open segment ends, status says so."""
        self.recordings.set_recording(channel, on)

    def set_input(self, port: int, active: bool) -> None:
        """Set an alarm input's state as /ISAPI/System/IO/inputs/status reports it."""
        self.status.set_input(port, active)

    def set_output(self, port: int, active: bool) -> None:
        """Set an alarm output's state as the IO status documents report it."""
        self.status.set_output(port, active)

    def set_channel_online(self, channel: int, online: bool) -> None:
        self.status.set_channel_online(channel, online)

    def snapshot(self, channel: int) -> bytes:
        """The exact JPEG bytes `GET /ISAPI/Streaming/channels/<ch>01/picture` returns."""
        return self.status.snapshot(channel)

    def configuration_data(self) -> bytes:
        """The exact bytes of `GET /ISAPI/System/configurationData`."""
        return self.status.configuration_data()

    def recording_list(self, channel: int) -> list[Recording]:
        """The recordings a search for `channel` finds, oldest first."""
        return self.recordings.recordings(channel)

    def recording_bytes(self, name: str) -> bytes:
        """The exact bytes /ISAPI/ContentMgmt/download returns for a recording name (the
        whole recording)."""
        rec = self.recordings.find(name)
        if rec is None:
            raise KeyError(name)
        return self.recordings.content(rec)

    def notifies_center(self, alert: SimAlert, push: bool = False) -> bool:
        """Whether the event set-up lets `alert` out to clients (`EventLinkage.lets_out`)."""
        return self.linkage.lets_out(alert.type, alert.channel, push=push)

    def note_alarm(self, alert: SimAlert) -> None:
        """What a sent alarm changes on the device: its log, and alarm input states."""
        self.log.alarm(alert.type, alert.channel, alert.state)
        if alert.type == "IO":
            self.status.set_input(alert.channel, alert.state == "active")

    # ----- alarms ------------------------------------------------------------------------

    def trigger(
        self,
        type: str = "VMD",
        channel: int = 1,
        state: AlertState = "active",
        pictures: int = 0,
        fmt: AlertFormat = "xml",
        *,
        push: bool = True,
        **details: Any,
    ) -> SentAlert:
        """Send one alarm to every open alert stream of this device, and POST it to the push
        targets when `push`. `details`: more `SimAlert` fields (region_id, target, extra...)."""
        alert = SimAlert(
            type=type, channel=channel, state=state, pictures=pictures, fmt=fmt, **details
        )
        return self.send(alert, push=push)

    def send(self, alert: SimAlert, *, push: bool = True) -> SentAlert:
        """`trigger` with a ready-made `SimAlert`; callable from any thread."""
        if self._on_loop():
            return self.alarms.send(alert, push=push)

        async def on_loop() -> SentAlert:
            return self.alarms.send(alert, push=push)

        return self.call(on_loop())

    def push_to(
        self,
        host: str,
        port: int,
        alert: SimAlert | None = None,
        *,
        path: str = "/",
        form: Literal["xml", "json", "multipart"] = "xml",
        source: str = "",
    ) -> PushResult:
        """POST one alarm to an alarm host now (one connection) and return how it went;
        `source`: the address it comes from (`PushTarget.source`)."""
        target = PushTarget(host=host, port=port, path=path, form=form, source=source)
        return self.call(self.alarms.push(target, alert or SimAlert()))

    def add_push_target(
        self,
        host: str,
        port: int,
        path: str = "/",
        form: Literal["xml", "json", "multipart"] = "xml",
    ) -> None:
        """From now on every triggered alarm is also POSTed there."""
        self.alarms.push_targets.append(PushTarget(host=host, port=port, path=path, form=form))

    @property
    def alert_stream_status(self) -> int:
        """HTTP status of alertStream: 404 -> arming error 23; 403/500 -> error 29."""
        return self.alarms.stream_status

    @alert_stream_status.setter
    def alert_stream_status(self, status: int) -> None:
        self.alarms.stream_status = status

    @property
    def stream_count(self) -> int:
        """Alert streams open now."""
        return len(self.alarms.streams)

    @property
    def sent(self) -> list[SentAlert]:
        """Every alarm triggered, in order (heartbeats not included)."""
        return self.alarms.sent

    def wait_for_streams(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until at least `count` alert streams are open."""
        deadline = time.monotonic() + timeout
        while self.stream_count < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close_streams(self) -> int:
        """End every alert stream cleanly (the library reconnects it); returns how many."""
        if self._on_loop():
            return self.alarms.close_streams()

        async def on_loop() -> int:
            return self.alarms.close_streams()

        return self.call(on_loop())

    def send_malformed(self, kind: str) -> int:
        """Write one broken part to every open alert stream (`hikd.sim.alerts.malformed_part`:
        headerless, empty, empty_body, boundary_in_body, bad_xml); returns how many."""

        async def on_loop() -> int:
            return self.alarms.send_malformed(kind)

        return self.alarms.send_malformed(kind) if self._on_loop() else self.call(on_loop())

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    # ----- routing -----------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler, *, public: bool = False) -> None:
        """Serve `method path`; a path with regex characters is matched as a regex."""
        self._routes.add(method, path, handler, public=public)

    def route_static(self, method: str, path: str, make: SyncHandler) -> None:
        async def handler(request: Request, conn: Connection) -> Response:
            return make(request)

        self.route(method, path, handler)

    def _log(self, request: Request) -> None:
        with self._log_lock:
            if len(self.requests) >= MAX_LOGGED_REQUESTS:
                del self.requests[: MAX_LOGGED_REQUESTS // 2]
                del self.request_targets[: MAX_LOGGED_REQUESTS // 2]
            self.requests.append((request.method, request.path))
            self.request_targets.append((request.method, request.target))

    def _challenge(self) -> str:
        return digest.challenge(self.realm, self.http_nonce, qop=True)

    def authorized(self, request: Request) -> str | None:
        """The user a request is from (session cookie, Digest or Basic auth), or None."""
        anyone = None if self.cookie_check else self.config.username
        return request_user(
            request, self.accounts, self.realm, self.http_nonce, any_cookie_is=anyone
        )

    async def handle(self, request: Request, conn: Connection) -> Response | None:
        if not request.path.startswith(CONTROL_PREFIX):
            self._log(request)
        if request.path in self.unavailable:
            return Response(404, documents.not_supported(request.path))
        handler = self._routes.find(request)
        if not self._routes.is_public(request.path) and self.authorized(request) is None:
            # An unknown cookie (e.g. after a device restart) makes the library log in
            # again (part 1 §3). Clients without a cookie are asked for Digest, as devices
            # do; the library, which always sends its cookie, never sees that challenge.
            asked = [] if request.header("cookie") else [("WWW-Authenticate", self._challenge())]
            return Response(401, documents.not_logged_in(), headers=asked)
        if handler is None:
            return Response(404, documents.not_supported(request.path))
        return await handler(request, conn)
