"""Device sessions: one per configured device — login, facts, reconnect, logout.

A session logs in with ``NET_DVR_Login_V40`` and keeps trying with exponential backoff and
jitter while the device is unreachable. A wrong password, a locked user or an unactivated
device stops the retries for ``auth_retry_s`` (an hour by default), until the unlock time
the device gives, or for good when the device says one try is left: a device locks an
account after a few bad tries, and hikd must never be the cause.

Once logged in, the library itself re-connects and re-logs in (seed 5.2.4; observed
0x8040/0x8041 in sdk-over-isapi.md part 1 §3), so the session does not fight it: it
watches (exception callback, periodic ``NET_DVR_CHECK_USER_STATUS``) and reports
``online``/``offline`` as health events. But the library re-logs in once only: after a
refused re-login (0x8044, e.g. a changed password) it never tries again and the session
stays dead for ever. So when the library gives up (0x8044, or the check fails
``_DEAD_AFTER_CHECKS`` times in a row), hikd logs the session out and goes back to its
own login loop, which knows about lock-out (`hikd.devices.lockout`). What the session says
about its device (offline, unreachable, login refused) is `hikd.devices.session_health`.

Health episodes (``start`` ... ``stop``) of a session are tracked by it
(`hikd.devices.episodes`), so that each start gets its stop, at the latest when the
session is closed.
Capabilities (ISAPI pass-through, later snapshots, downloads) pick the route that works
on the session's protocol.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from hikd.devices import remembered
from hikd.devices.capabilities.channels import ChannelMap, read_channel_map
from hikd.devices.episodes import HealthEpisodes
from hikd.devices.identity import describe, read_identity
from hikd.devices.session_health import (
    SessionState,
    report_login_refused,
    report_offline,
    report_unreachable,
)
from hikd.devices.workers import Steps, Workers
from hikd.events import DeviceRef, Event, health
from hikd.sdk.constants import (
    EXCEPTION_EXCHANGE,
    EXCEPTION_RELOGIN_FAILED,
    RELOGIN_SUCCESS,
    RESUME_EXCHANGE,
)
from hikd.sdk.errors import AuthError, SdkError
from hikd.sdk.login import DeviceFacts, check_user_status, login, logout
from hikd.sdk.passthrough import IsapiReply, std_xml_config

if TYPE_CHECKING:
    from hikd.config import DeviceConfig
    from hikd.sdk.library import Library

log = structlog.get_logger("hikd.devices.session")

# Only so many logins run at once: a burst of 256 logins at start-up is fine for the
# library but not for a small NVR's web server.
_LOGIN_SLOTS = threading.BoundedSemaphore(16)

_JITTER = random.Random()
"""The backoff's jitter, shared: a generator per session held 2.5 kB of state each."""
WORKERS = Workers()
"""The threads that run the sessions of this process: logins, re-logins, checks."""

# Failed session checks in a row after which hikd stops waiting for the library's own
# re-login (a safety net for a lost 0x8044; a device that is merely down is no worse off:
# the login loop backs off until it answers).
_DEAD_AFTER_CHECKS = 3


def backoff_delays(minimum: float, maximum: float, rng: random.Random) -> Any:
    """Exponential backoff with full jitter in [delay/2, delay], capped at ``maximum``."""
    delay = minimum
    while True:
        yield rng.uniform(delay / 2, delay)
        delay = min(delay * 2, maximum)


@dataclass
class SessionHooks:
    """Who wants to know when a session comes and goes (arming, polls)."""

    on_login: list[Callable[[DeviceSession], None]] = field(default_factory=list)
    before_logout: list[Callable[[DeviceSession], None]] = field(default_factory=list)


class DeviceSession:
    def __init__(
        self,
        sdk: Library,
        config: DeviceConfig,
        publish: Callable[[Event], None],
        hooks: SessionHooks | None = None,
        check_interval_s: float = 30.0,
    ) -> None:
        self.sdk = sdk
        self.config = config
        self.name = config.name
        self._publish = publish
        self.hooks = hooks or SessionHooks()
        self.check_interval_s = check_interval_s
        self.state: SessionState = "starting"
        self.user_id: int | None = None
        self.facts: DeviceFacts | None = None
        self.identity: dict[str, Any] = {}
        """Model, versions, MAC and the alarm types it sends (devices/identity.py)."""
        self.channels = ChannelMap([])
        """hikd's channel numbers and what each place of the device calls them."""
        self.last_error: str = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._steps = Steps(WORKERS)
        self._rng = _JITTER
        self._delays = self._new_delays()
        self._failed_checks = 0
        self._library_gave_up = threading.Event()
        self._episodes = HealthEpisodes(publish, lambda: self.device)

    # -- identity ----------------------------------------------------------------------
    @property
    def device(self) -> DeviceRef:
        serial = self.facts.serial if self.facts else ""
        return DeviceRef(self.name, serial, f"{self.config.host}:{self.config.port}")

    @property
    def protocol(self) -> str:
        return self.facts.protocol if self.facts else ""

    def publish(self, event: Event) -> None:  # as its own events go (a command's snapshot)
        self._publish(event)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Log in now and keep the session (on `WORKERS`' threads, not one of its own)."""
        self._steps.run_at(0.0, self._login_step)

    def request_stop(self) -> None:
        self._stop.set()
        self._steps.cancel()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the session's step that runs now (a login, a check) has ended."""
        self._steps.join(timeout)

    def close(self, reason: str = "hikd stopped") -> None:
        """Close the alarm channel (before-logout hooks), log out, end episodes with `reason`."""
        self.request_stop()
        if self._log_out(reason):
            self._set_state("stopped")

    def _log_out(self, reason: str) -> bool:
        """Close the alarm channel (before-logout hooks), log out, end the session's health
        episodes with ``reason``. False when there was no session."""
        with self._lock:
            user_id, self.user_id = self.user_id, None
        if user_id is not None:
            for hook in self.hooks.before_logout:
                _call_hook(hook, self, "before_logout")
            try:
                logout(self.sdk, user_id)
            except SdkError as exc:
                log.debug("logout failed", device=self.name, error=str(exc))
        self.end_episodes(reason)
        return user_id is not None

    def wait_online(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state == "online":
                return True
            time.sleep(0.02)
        return self.state == "online"

    # -- the connect loop: one step at a time on `WORKERS` ------------------------------
    def _new_delays(self) -> Any:
        return backoff_delays(self.config.reconnect_min_s, self.config.reconnect_max_s, self._rng)

    def _next(self, delay: float, step: Callable[[], None]) -> None:
        if not self._stop.is_set():
            self._steps.run_at(delay, step)

    def _login_step(self) -> None:
        if self._stop.is_set():
            return
        try:
            self.login_once()
        except AuthError as exc:
            wait = report_login_refused(self, exc)
            if wait is not None:  # None: never spend the last try: only a restart tries again
                self._next(wait, self._login_step)
            return
        except SdkError as exc:
            if self._stop.is_set():
                return
            delay = next(self._delays)
            report_unreachable(self, exc, delay)
            self._next(delay, self._login_step)
            return
        except Exception:
            # A bug, not the device: say so loudly, and keep the session alive.
            log.exception("unexpected error while logging in", device=self.name)
            self._next(next(self._delays), self._login_step)
            return
        self._delays = self._new_delays()
        self._failed_checks = 0
        self._next(self.check_interval_s, self._check_step)

    def login_once(self) -> DeviceFacts:
        """One login attempt; on success the session is online and hooks have run."""
        password = self.config.password.get_secret_value() if self.config.password else ""
        with _LOGIN_SLOTS:
            result = login(
                self.sdk,
                self.config.host,
                self.config.port,
                self.config.username,
                password,
                mode=self.config.login_mode,
                https=self.config.https,
            )
        with self._lock:
            if self._stop.is_set():
                # close() ran while the login was under way: do not leave a session behind.
                logout(self.sdk, result.user_id)
                raise SdkError(3, "stopped while logging in")
            self.user_id = result.user_id
            self.facts = result.facts
        # After a crash of the host, what the host before read (hikd.devices.remembered).
        known = remembered.take(self.name, result.facts)
        if known is None:
            channels = read_channel_map(self)
            known = channels, read_identity(self.isapi, channels)
        self.channels, self.identity = known
        remembered.keep(self.name, result.facts, self.channels, self.identity)
        self.last_error = ""
        self._set_state("online")
        log.info(
            "logged in",
            device=self.name,
            serial=result.facts.serial,
            protocol=result.facts.protocol,
            channels=len(result.facts.channels),
        )
        self._publish(health(self.device, "online", **self.describe()))
        for hook in self.hooks.on_login:
            _call_hook(hook, self, "on_login")
        return result.facts

    def describe(self) -> dict[str, Any]:
        return describe(self.facts, self.channels, self.identity)

    @property
    def model(self) -> str:
        return str(self.identity.get("model") or "")

    @property
    def firmware(self) -> str:
        return str(self.identity.get("firmware") or "")

    def _check_step(self) -> None:
        """Logged in: check the session now and then. When the library has given up on the
        session, log it out and log in again."""
        if self._stop.is_set():
            return
        if not self._library_gave_up.is_set():
            self._failed_checks = 0 if self.check_online() else self._failed_checks + 1
            if self._failed_checks < _DEAD_AFTER_CHECKS:
                self._next(self.check_interval_s, self._check_step)
                return
            log.warning(
                "the vendor library did not get the session back; logging in again",
                device=self.name,
                failed_checks=self._failed_checks,
            )
        if self._stop.is_set():
            return
        self._drop_session()
        self._next(0.0, self._login_step)

    def _drop_session(self) -> None:
        """The library gave up: log the dead session out, so that the login loop starts
        afresh (and the alarm channel is opened again after the new login)."""
        self._library_gave_up.clear()
        self._log_out("session closed")
        report_offline(self, self.last_error or "the session ended")

    def check_online(self) -> bool:
        """NET_DVR_CHECK_USER_STATUS. On a 401 the library re-logs in by itself and returns
        TRUE; a dead device gives error 7 (sdk-over-isapi.md part 2 §c)."""
        user_id = self.user_id
        if user_id is None:
            return False
        try:
            check_user_status(self.sdk, user_id)
            ok = True
        except SdkError as error:
            ok = False
            report_offline(self, f"session check failed: {error}")
        if ok:
            self._back_online("device reachable again")
        return ok

    def _back_online(self, why: str) -> None:
        self.episode("session_heartbeat_lost", "stop")
        if self.state == "online" or self.user_id is None:
            return
        self._set_state("online")
        log.info(why, device=self.name)
        self._publish(health(self.device, "online", **self.describe()))

    # -- exception callback (already off the SDK thread) -------------------------------
    def on_sdk_exception(self, kind: int) -> None:
        if kind == EXCEPTION_EXCHANGE:
            report_offline(self, "session heartbeat to the device failed")
        elif kind in (RELOGIN_SUCCESS, RESUME_EXCHANGE):
            self._back_online("the vendor library logged in again")
        elif kind == EXCEPTION_RELOGIN_FAILED:
            # The library tries once and never again (sdk-over-isapi.md; README vendor
            # notes): wake the supervisor so that hikd's own login loop takes over now.
            report_offline(self, "the vendor library could not log in again")
            self._library_gave_up.set()
            self._steps.wake()

    # -- health episodes (hikd.devices.episodes) -----------------------------------------
    def episode(self, type_: str, state: Literal["start", "stop"], **attributes: Any) -> bool:
        """Publish a ``start`` only when the episode is not open and a ``stop`` only when
        it is. True if published."""
        return self._episodes.change(type_, state, **attributes)

    def in_episode(self, type_: str) -> bool:
        return self._episodes.is_open(type_)

    def end_episodes(self, reason: str) -> None:
        self._episodes.end_all(reason)

    # -- pass-through ------------------------------------------------------------------
    def isapi(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        timeout_ms: int = 5000,
        buffer: int = 256 * 1024,
    ) -> IsapiReply:
        """Any ISAPI request through the session; ``buffer`` is the first reply buffer
        (a GET is repeated with a larger one when the reply does not fit)."""
        user_id = self.user_id
        if user_id is None:
            raise SdkError(3, "not logged in")
        return std_xml_config(self.sdk, user_id, method, url, body, timeout_ms, buffer)

    # -- state and reporting -----------------------------------------------------------
    def _set_state(self, state: SessionState) -> None:
        self.state = state


def _call_hook(hook: Callable[[DeviceSession], None], session: DeviceSession, what: str) -> None:
    try:
        hook(session)
    except Exception:
        log.exception("session hook failed", device=session.name, hook=what)
