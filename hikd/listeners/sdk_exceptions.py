"""The library's exception callback, turned into session state and health events.

``NET_DVR_SetExceptionCallBack_V30`` (seed 5.2.12) reports on the library's thread; the
handler only enqueues the three integers, and this router's thread does the rest.
Codes seen over ISAPI (sdk-over-isapi.md part 1 §3): 0x8006 at each arming retry,
0x8016 on reconnect, 0x8040/0x8041 around a re-login, 0x8000 when the session heartbeat
fails. 0x8022 / 0x8023 mean the library itself dropped alarms: counted and published.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable

import structlog

from hikd.events import Event, health
from hikd.sdk.constants import (
    ALARM_RECONNECTSUCCESS,
    EXCEPTION_ALARM,
    EXCEPTION_ALARM_RECONNECT_CLOSED,
    EXCEPTION_ALARMRECONNECT,
    EXCEPTION_EXCHANGE,
    EXCEPTION_LOST_ALARM,
    EXCEPTION_MAX_ALARM_INFO,
    EXCEPTION_RELOGIN,
    EXCEPTION_RELOGIN_FAILED,
    RELOGIN_SUCCESS,
)
from hikd.session import DeviceSession

log = structlog.get_logger("hikd.sdk")


# Health event type per exception code; the state says whether it starts or ends trouble.
_HEALTH: dict[int, tuple[str, str]] = {
    EXCEPTION_EXCHANGE: ("session_heartbeat_lost", "start"),
    EXCEPTION_ALARM: ("arming_lost", "start"),
    EXCEPTION_ALARMRECONNECT: ("arming_reconnecting", "start"),
    ALARM_RECONNECTSUCCESS: ("arming_reconnecting", "stop"),
    EXCEPTION_RELOGIN: ("relogin", "start"),
    RELOGIN_SUCCESS: ("relogin", "stop"),
    EXCEPTION_RELOGIN_FAILED: ("relogin_failed", "pulse"),
    EXCEPTION_ALARM_RECONNECT_CLOSED: ("arming_reconnect_closed", "pulse"),
    EXCEPTION_MAX_ALARM_INFO: ("alarms_lost", "pulse"),
    EXCEPTION_LOST_ALARM: ("alarms_lost", "pulse"),
}


class SdkExceptionRouter:
    def __init__(
        self,
        sessions: Callable[[], list[DeviceSession]],
        publish: Callable[[Event], None],
        on_rearmed: Callable[[DeviceSession], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._publish = publish
        self._on_rearmed = on_rearmed
        self._queue: queue.SimpleQueue[tuple[int, int, int] | None] = queue.SimpleQueue()
        self.counters: Counter[int] = Counter()
        self._thread: threading.Thread | None = None
        # Repeated 0x8006 (every reconnect interval) make one "reconnecting" episode.
        self._reconnecting: set[str] = set()

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
            item = self._queue.get()
            if item is None:
                return
            try:
                self.route(*item)
            except Exception:
                log.exception("exception-callback routing failed", code=hex(item[0]))

    def route(self, kind: int, user_id: int, handle: int) -> None:
        self.counters[kind] += 1
        session = self._find(user_id)
        name = session.name if session else f"user {user_id}"
        event_type, state = _HEALTH.get(kind, (f"sdk_exception_{kind:#x}", "pulse"))
        if kind == EXCEPTION_ALARMRECONNECT:
            if name in self._reconnecting:
                return  # one start per episode; the count stays in the counters
            self._reconnecting.add(name)
        elif kind == ALARM_RECONNECTSUCCESS:
            self._reconnecting.discard(name)
        log_fn = log.info if state == "stop" else log.warning
        log_fn("device link event", device=name, code=hex(kind), health=event_type, state=state)
        if session is None:
            return
        session.on_sdk_exception(kind)
        attributes: dict[str, int] = {"code": kind, "handle": handle}
        if event_type == "alarms_lost":
            attributes["count"] = (
                self.counters[EXCEPTION_MAX_ALARM_INFO] + self.counters[EXCEPTION_LOST_ALARM]
            )
        self._publish(health(session.device, event_type, state, **attributes))  # type: ignore[arg-type]
        if kind == ALARM_RECONNECTSUCCESS:
            self._publish(health(session.device, "rearmed", handle=handle))

    def _find(self, user_id: int) -> DeviceSession | None:
        for session in self._sessions():
            if session.user_id == user_id:
                return session
        return None
