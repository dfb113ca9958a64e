"""The library's exception callback, turned into session state and health events.

``NET_DVR_SetExceptionCallBack_V30`` (seed 5.2.12) reports on the library's thread; the
handler only enqueues the three integers, and this router's thread does the rest.
Codes seen over ISAPI (sdk-over-isapi.md part 1 §3): 0x8006 at each arming retry,
0x8016 on reconnect, 0x8040/0x8041 around a re-login, 0x8000 at every failed session
check, 0x8044 once when the device refuses the library's re-login (it never tries again:
the session then goes back to hikd's login loop). 0x8022 / 0x8023 mean the library itself
dropped alarms: counted and published.

The library raises a retry's 0x8006 and its 0x8016 on two threads of its own, so under
load the 0x8016 can come first (seen: 11 ms early). Such a 0x8016, with no reconnect
episode open, is held until its 0x8006 arrives (then both are routed in their order), or
for `EARLY_WAIT_S` at most: routed out of order, the episode would stay open for good.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import structlog

from hikd.devices.session import DeviceSession
from hikd.events import Event, health
from hikd.sdk.constants import (
    ALARM_RECONNECTSUCCESS,
    EXCEPTION_ALARMRECONNECT,
    EXCEPTION_LOST_ALARM,
    EXCEPTION_MAX_ALARM_INFO,
    EXCEPTION_NAMES,
)

log = structlog.get_logger("hikd.sdk")

Kind = Literal["start", "stop", "pulse"]

# Every dwType of the guide (ch. 5, SetExceptionCallBack_V30; HCNetSDK.h EXCEPTION_*), named
# in the user's words: (health event type, start/stop/pulse, what it means). A start is
# published once per episode and its stop ends it (`DeviceSession.episode`); episodes
# still open when the session closes are stopped then.
_HEALTH: dict[int, tuple[str, Kind, str]] = {
    0x8000: ("session_heartbeat_lost", "start", "the session heartbeat to the device failed"),
    0x8001: ("talk_failed", "pulse", "two-way audio failed"),
    0x8002: ("arming_lost", "pulse", "the alarm channel failed"),
    0x8003: ("preview_failed", "pulse", "live view failed"),
    0x8004: ("serial_channel_failed", "pulse", "the transparent serial channel failed"),
    0x8005: ("preview_reconnecting", "pulse", "live view is reconnecting"),
    0x8006: ("arming_reconnecting", "start", "the alarm channel is reconnecting"),
    0x8007: ("serial_channel_reconnecting", "pulse", "the serial channel is reconnecting"),
    0x8008: ("serial_channel_reconnected", "pulse", "the serial channel reconnected"),
    0x8010: ("playback_failed", "pulse", "playback or download failed"),
    0x8011: ("disk_formatting", "pulse", "the device is formatting a disk"),
    0x8012: ("passive_decode_failed", "pulse", "passive decoding failed"),
    0x8013: ("email_test_failed", "pulse", "the device's e-mail test failed"),
    0x8014: ("backup_failed", "pulse", "a backup failed"),
    0x8015: ("preview_reconnected", "pulse", "live view reconnected"),
    0x8016: ("arming_reconnecting", "stop", "the alarm channel reconnected"),
    0x8017: ("session_heartbeat_lost", "stop", "the session heartbeat works again"),
    0x8018: ("network_test_failed", "pulse", "the network traffic test failed"),
    0x8019: ("picture_preview_reconnecting", "pulse", "picture preview is reconnecting"),
    0x8020: ("picture_preview_reconnected", "pulse", "picture preview reconnected"),
    0x8021: ("picture_preview_failed", "pulse", "picture preview failed"),
    0x8022: ("alarms_lost", "pulse", "the library's alarm buffer was full: alarms lost"),
    0x8023: ("alarms_lost", "pulse", "the library lost alarms"),
    0x8024: ("passive_transfer_reconnecting", "pulse", "passive transfer is reconnecting"),
    0x8025: ("passive_transfer_reconnected", "pulse", "passive transfer reconnected"),
    0x8026: ("passive_transfer_failed", "pulse", "passive transfer failed"),
    0x8030: ("device_registered", "pulse", "a device registered (push logon)"),
    0x8040: ("relogin", "start", "the library is logging in again"),
    0x8041: ("relogin", "stop", "the library logged in again"),
    0x8042: ("passive_decode_reconnecting", "pulse", "passive decoding is reconnecting"),
    0x8043: ("cluster_arming_failed", "pulse", "arming through a cluster failed"),
    0x8044: ("relogin", "stop", "the library could not log in again"),
    0x8045: ("preview_reconnect_closed", "pulse", "live view stopped reconnecting"),
    0x8046: ("arming_reconnect_closed", "pulse", "the alarm channel stopped reconnecting"),
    0x8047: ("serial_channel_reconnect_closed", "pulse", "the serial channel stopped reconnecting"),
    0x8048: ("picture_preview_reconnect_closed", "pulse", "picture preview stopped reconnecting"),
    0x8049: ("passive_decode_reconnect_closed", "pulse", "passive decoding stopped reconnecting"),
    0x804A: ("passive_transfer_reconnect_closed", "pulse", "passive transfer stopped reconnecting"),
    0x804B: ("download_failed", "pulse", "a video download failed"),
}
_FAILED = {0x8044}
"""Stops that end an episode without success."""
EARLY_WAIT_S = 5.0
"""How long a 0x8016 that came before its 0x8006 waits for it (module docstring)."""


def describe_exception(kind: int) -> tuple[str, Kind, str]:
    """(health type, state, meaning) of one exception code; unknown codes are named too."""
    known = _HEALTH.get(kind)
    if known is not None:
        return known
    return ("library_exception", "pulse", f"the vendor library reported exception {kind:#x}")


class SdkExceptionRouter:
    def __init__(
        self,
        sessions: Callable[[], list[DeviceSession]],
        publish: Callable[[Event], None],
    ) -> None:
        self._sessions = sessions
        self._publish = publish
        self._queue: queue.SimpleQueue[tuple[int, int, int] | None] = queue.SimpleQueue()
        self.counters: Counter[int] = Counter()
        self._thread: threading.Thread | None = None
        self._early: dict[int, tuple[float, int]] = {}
        """user id -> (until when, handle) of a 0x8016 waiting for its 0x8006."""

    def handler(self, kind: int, user_id: int, handle: int) -> None:
        """Runs on the library's thread: enqueue only."""
        self._queue.put((kind, user_id, handle))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sdk-exceptions", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            until = min((u for u, _ in self._early.values()), default=None)
            try:
                item = self._queue.get(
                    timeout=None if until is None else max(0.0, until - time.monotonic())
                )
            except queue.Empty:
                self._guarded(self.release_early, time.monotonic())
                continue
            if item is None:
                self._guarded(self.release_early, float("inf"))
                return
            self._guarded(self.route, *item)

    def _guarded(self, step: Callable[..., None], *args: float) -> None:
        try:
            step(*args)
        except Exception:
            log.exception("exception-callback routing failed", step=step.__name__, args=args)

    def release_early(self, now: float) -> None:
        """Route every early 0x8016 whose 0x8006 did not come by `now` as it is."""
        for user_id, (until, handle) in list(self._early.items()):
            if until <= now:
                del self._early[user_id]
                self._route(ALARM_RECONNECTSUCCESS, user_id, handle)

    def route(self, kind: int, user_id: int, handle: int) -> None:
        session = self._find(user_id)
        if (
            kind == ALARM_RECONNECTSUCCESS
            and session is not None
            and not session.in_episode("arming_reconnecting")
        ):
            # Came before its 0x8006 (module docstring): wait for it.
            self._early[user_id] = (time.monotonic() + EARLY_WAIT_S, handle)
            return
        self._route(kind, user_id, handle)
        if kind == EXCEPTION_ALARMRECONNECT and user_id in self._early:
            _until, early_handle = self._early.pop(user_id)
            self._route(ALARM_RECONNECTSUCCESS, user_id, early_handle)

    def _route(self, kind: int, user_id: int, handle: int) -> None:
        self.counters[kind] += 1
        session = self._find(user_id)
        name = session.name if session else f"user {user_id}"
        event_type, state, meaning = describe_exception(kind)
        code_name = EXCEPTION_NAMES.get(kind, "")
        if session is None:
            log.warning("device link event", device=name, code=hex(kind), meaning=meaning)
            return
        session.on_sdk_exception(kind)
        attributes: dict[str, Any] = {"code": kind, "code_name": code_name, "handle": handle}
        attributes["meaning"] = meaning
        if kind in _FAILED:
            attributes["failed"] = True
        if event_type == "alarms_lost":
            attributes["count"] = (
                self.counters[EXCEPTION_MAX_ALARM_INFO] + self.counters[EXCEPTION_LOST_ALARM]
            )
        if state == "pulse":
            self._publish(health(session.device, event_type, state, **attributes))
            published = True
        else:
            # Repeated codes of one outage (0x8006 every reconnect interval, 0x8000 at
            # every failed check) make one episode; the counters keep the count.
            published = session.episode(event_type, state, **attributes)
        if published:
            log_fn = log.info if state == "stop" and kind not in _FAILED else log.warning
            log_fn(
                "device link event",
                device=name,
                code=hex(kind),
                health=event_type,
                state=state,
                meaning=meaning,
            )
        if kind == ALARM_RECONNECTSUCCESS:
            self._end_relogin_without_its_stop(session, handle)
            self._publish(health(session.device, "rearmed", handle=handle))

    @staticmethod
    def _end_relogin_without_its_stop(session: DeviceSession, handle: int) -> None:
        """The alarm channel reconnects only once the library is logged in again: 0x8040,
        0x8041, then 0x8016 (sdk-over-isapi.md part 3). A full-suite run under load saw the
        0x8016 without its 0x8041, and the `relogin` episode stayed open for ever."""
        if session.episode(
            "relogin",
            "stop",
            code=ALARM_RECONNECTSUCCESS,
            code_name=EXCEPTION_NAMES.get(ALARM_RECONNECTSUCCESS, ""),
            handle=handle,
            meaning="the alarm channel reconnected, so the library logged in again",
        ):
            log.info("device link event", device=session.name, health="relogin", state="stop")

    def _find(self, user_id: int) -> DeviceSession | None:
        for session in self._sessions():
            if session.user_id == user_id:
                return session
        return None
