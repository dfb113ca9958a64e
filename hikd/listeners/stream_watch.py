"""Watch each alert stream's heartbeat; re-arm at once when it stops.

Some broken parts on an alert stream (random bytes where a part's headers belong, a
boundary straight after a boundary, a boundary line inside a body) make the vendor
library silently stop delivering anything on that stream until its own reconnect, 35 s
after the last part it accepted: every alarm in between is lost, and nothing is reported
(measured; README, vendor-library notes). The one thing hikd can see is the absence of
parts — but only where the device's heartbeat reaches it: the library swallows the usual
heartbeat (``videoloss`` + ``inactive``) and delivers ``heartBeat`` events.

So a stream is watched once hikd has seen a few ``heartBeat`` parts on it and knows their
period; when no part at all arrives for ``misses`` periods, it reports ``arming_stalled``
(start), closes the alarm channel and arms again at once. The first part on the new
stream stops the episode. A device that never sends ``heartBeat`` (or stops sending it) is
never re-armed for being quiet.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from hikd.devices.session import DeviceSession
from hikd.listeners.arming import ArmingListener
from hikd.sdk.raw import RawAlarm

log = structlog.get_logger("hikd.arming")

ERROR_MESSAGE = 0x7FFF
"""The library's own error message: says nothing about the stream being alive."""
_HEARTBEAT = re.compile(rb'eventType[">:\s]*heartbeat', re.IGNORECASE)
_BEATS_TO_LEARN = 2
"""Intervals seen before a period counts (three heartbeats): one odd pair is no period."""


@dataclass(slots=True)
class _Stream:
    last_part: float
    last_beat: float | None = None
    intervals: deque[float] = field(default_factory=lambda: deque(maxlen=5))
    stalled_at: float | None = None
    """When hikd re-armed after a stall; None while the stream is healthy."""

    def period(self, minimum: float) -> float | None:
        if len(self.intervals) < _BEATS_TO_LEARN:
            return None
        # The median of at most 5, without the statistics module (it imports fractions and
        # decimal: ~0.8 MB of each device host's memory).
        ordered = sorted(self.intervals)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return max(minimum, ordered[middle])
        return max(minimum, (ordered[middle - 1] + ordered[middle]) / 2)


class StreamWatch:
    def __init__(
        self,
        arming: ArmingListener,
        sessions: Callable[[], list[DeviceSession]],
        misses: float = 2.0,
        tick_s: float = 0.25,
        min_period_s: float = 1.0,
        min_silence_s: float = 5.0,
    ) -> None:
        self.arming = arming
        self._sessions = sessions
        self.misses = misses
        self.tick_s = tick_s
        self.min_period_s = min_period_s
        self.min_silence_s = min_silence_s
        """Never less silence than this: a killed device's stream is the library's to
        reconnect, and its 0x8006 comes about 2.6 s after the link breaks (part 1 §3)."""
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- decoder thread: note only -------------------------------------------------------
    def on_part(self, device: str, raw: RawAlarm) -> None:
        if raw.source != "arming" or raw.command == ERROR_MESSAGE:
            return
        now = time.monotonic()
        beat = _HEARTBEAT.search(raw.payload, 0, 4096) is not None
        with self._lock:
            stream = self._streams.get(device)
            if stream is None:
                stream = self._streams[device] = _Stream(now)
            stream.last_part = now
            if beat:
                if stream.last_beat is not None:
                    stream.intervals.append(now - stream.last_beat)
                stream.last_beat = now

    def period(self, device: str) -> float | None:
        """The heartbeat period learnt for ``device``'s stream; None while not watched."""
        with self._lock:
            stream = self._streams.get(device)
            return stream.period(self.min_period_s) if stream else None

    # -- own thread ----------------------------------------------------------------------
    def start(self) -> None:
        if self.misses <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="stream-watch", daemon=True)
        self._thread.start()

    def set_misses(self, misses: float) -> None:
        """A reload changed ``[arming] heartbeat_misses``; 0 stops the watching."""
        self.misses = misses
        if misses > 0 and self._thread is None:
            self.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.check()
            except Exception:
                log.exception("stream watch failed")

    def check(self) -> None:
        if self.misses <= 0:  # turned off by a reload
            return
        now = time.monotonic()
        for session in self._sessions():
            with self._lock:
                stream = self._streams.get(session.name)
            if stream is None:
                continue
            if (
                session.state != "online"
                or not self.arming.is_armed(session.name)
                or session.in_episode("arming_reconnecting")
            ):
                # Not hikd's stream to judge now (logged out, arming failed, or the library
                # reconnecting it by itself): start afresh when it is armed again.
                with self._lock:
                    stream.last_part, stream.last_beat, stalled = now, None, stream.stalled_at
                    stream.stalled_at = None
                if stalled is not None:
                    session.episode("arming_stalled", "stop", reason="not armed")
                continue
            self._judge(session, stream, now)

    def _judge(self, session: DeviceSession, stream: _Stream, now: float) -> None:
        with self._lock:
            period = stream.period(self.min_period_s)
            silent_s = now - stream.last_part
            stalled_at = stream.stalled_at
            resumed = stalled_at is not None and stream.last_part > stalled_at
            if resumed:
                stream.stalled_at = None
        if stalled_at is not None:
            if resumed:
                session.episode("arming_stalled", "stop", silent_s=round(now - stalled_at, 1))
            elif period is not None and now - stalled_at > self._limit(period):
                self._heartbeat_stopped(session, stream, period)
            return
        if period is not None and silent_s > self._limit(period):
            self._rearm(session, stream, period, silent_s)

    def _limit(self, period: float) -> float:
        return max(self.misses * period, self.min_silence_s)

    def _rearm(self, session: DeviceSession, stream: _Stream, period: float, silent: float) -> None:
        log.warning(
            "no heartbeat on the alert stream: arming again",
            device=session.name,
            silent_s=round(silent, 1),
            heartbeat_s=round(period, 1),
        )
        session.episode(
            "arming_stalled", "start", silent_s=round(silent, 1), heartbeat_s=round(period, 1)
        )
        self.arming.disarm(session)
        self.arming.arm(session)
        with self._lock:
            stream.stalled_at = time.monotonic()
            stream.last_beat = None  # no interval across the re-arm

    def _heartbeat_stopped(self, session: DeviceSession, stream: _Stream, period: float) -> None:
        """Nothing on a fresh stream either: the device stopped its heartbeat (or its
        period changed). Stop watching until it shows a period again."""
        log.warning(
            "the device sends no heartbeat any more: its alert stream is not watched",
            device=session.name,
            heartbeat_s=round(period, 1),
        )
        with self._lock:
            stream.stalled_at = None
            stream.intervals.clear()
            stream.last_beat = None
        session.episode("arming_stalled", "stop", heartbeat_stopped=True)
