"""A device's alarm output: its alertStream connections and the hosts it pushes to.

`GET /ISAPI/Event/notification/alertStream` is what NET_DVR_SetupAlarmChan_V41 opens
(its own connection, session cookie). The reply is an endless multipart/mixed stream;
a heartbeat part keeps the library from reconnecting (sdk-over-isapi.md part 1 §2).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any, Protocol

from hikd.sim import documents
from hikd.sim.alerts import (
    HEARTBEAT,
    HEARTBEAT_EVENT,
    STREAM_BOUNDARY,
    SimAlert,
    Stamp,
    malformed_part,
    push_body,
)
from hikd.sim.config import PushTarget
from hikd.sim.http import Connection, Request, Response
from hikd.sim.parts import DevicePart
from hikd.sim.push import PushResult, post
from hikd.sim.renderer import AlertRenderer

ALERT_STREAM_PATH = "/ISAPI/Event/notification/alertStream"
MAX_SENT_LOG = 200_000
MAX_MISSED = 50_000
"""Alarms a device keeps for re-sending after a broken link (devices keep a bounded queue)."""
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Connection: close\r\n"
    b"Content-Type: multipart/mixed; boundary=" + STREAM_BOUNDARY + b"\r\n\r\n"
    b"--" + STREAM_BOUNDARY + b"\r\n"
)


class AlarmsHost(DevicePart, Protocol):
    """What the alarm stream needs of the device: it notes each alarm it sends, and sends
    only those its event set-up lets out."""

    def note_alarm(self, alert: SimAlert) -> None: ...

    def notifies_center(self, alert: SimAlert, push: bool = False) -> bool:
        """Whether the alarm's linkage and arming schedule let it reach clients (with
        `push`: the alarm hosts, which an "HTTP" linkage also reaches)."""
        ...


@dataclass(frozen=True, slots=True)
class SentAlert:
    """What one trigger did."""

    seq: int
    type: str
    channel: int
    state: str
    sent_ns: int
    streams: int
    """Alert streams it was written to."""
    pushes: int
    """POSTs started to push targets."""
    date_time: str = ""
    """The alert's dateTime: the device's time of the alarm."""


class DeviceAlarms:
    """The alert streams, push targets and sent-alarm log of one device."""

    def __init__(self, device: AlarmsHost) -> None:
        self.device = device
        self.stream_status = 200
        """Answer to alertStream: 404 makes SetupAlarmChan_V41 fail with error 23, 403 or 500
        with error 29 (part 1 §2)."""
        self.streams: set[Connection] = set()
        self.push_targets: list[PushTarget] = list(device.config.push_targets)
        self.sent: list[SentAlert] = []
        self.push_results: list[PushResult] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.streams_opened = 0
        self.clock = documents.DeviceClock(device.config)
        self.renderer = AlertRenderer(device.config)
        self.missed: deque[tuple[SimAlert, Stamp]] = deque(maxlen=MAX_MISSED)
        """Alarms raised while no stream was open, kept when `resend_missed` is on."""
        self.resent = 0
        self.heartbeat_s: float | None = device.config.heartbeat_s
        """The heartbeat period now; None: the device has stopped sending heartbeats."""
        self.malformed_sent = 0
        device.route("GET", ALERT_STREAM_PATH, self._open_stream)

    # ----- the stream --------------------------------------------------------------------

    async def _open_stream(self, request: Request, conn: Connection) -> Response | None:
        if self.stream_status != 200:
            return Response(self.stream_status, documents.not_supported(request.path), close=True)
        conn.write(STREAM_HEAD)
        self._resend_missed(conn)
        self.streams.add(conn)
        self.streams_opened += 1
        beat = asyncio.create_task(self._heartbeat(conn))
        try:
            await conn.wait_closed_by_peer()
        finally:
            self.streams.discard(conn)
            beat.cancel()
        return None

    def _resend_missed(self, conn: Connection) -> None:
        """Send what no stream heard, with its own time and number, marked as re-sent."""
        while self.missed:
            alert, stamp = self.missed.popleft()
            conn.write(self.renderer.stream_parts(replace(alert, resent=True), stamp))
            self.resent += 1

    async def _heartbeat(self, conn: Connection) -> None:
        cfg = self.device.config
        beat = HEARTBEAT_EVENT if cfg.heartbeat_event == "heartBeat" else HEARTBEAT
        while not conn.closing:
            await asyncio.sleep(self.heartbeat_s or 0.25)
            if self.heartbeat_s is None:
                continue
            stamp = Stamp(None, time.monotonic_ns(), self.clock.text(), self.device.port)
            conn.write(self.renderer.stream_parts(beat, stamp))

    def send_malformed(self, kind: str) -> int:
        """Write one broken part (`malformed_part`) to every open stream. On the loop."""
        self.malformed_sent += 1
        data = malformed_part(kind, self.malformed_sent)
        written = 0
        for conn in list(self.streams):
            if not conn.closing:
                conn.write(data)
                written += 1
        return written

    def close_streams(self) -> int:
        """Close every alert stream cleanly (on the loop); returns how many."""
        count = len(self.streams)
        for conn in list(self.streams):
            conn.writer.close()
        return count

    # ----- sending -----------------------------------------------------------------------

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def send(self, alert: SimAlert, *, push: bool = True) -> SentAlert:
        """Write `alert` to every open stream and start its POSTs. On the loop only."""
        seq = self.next_seq()
        written = 0
        stamp = Stamp(seq, time.monotonic_ns(), self.clock.text(), self.device.port)
        # A real device sends an event to no client at all unless its linkage includes
        # "notify surveillance center" and its arming schedule covers now (README "No
        # events?"); it still writes it to its own log.
        reaches = self.device.notifies_center(alert)
        if self.streams and reaches:
            data = self.renderer.stream_parts(alert, stamp)
            for conn in list(self.streams):
                if not conn.closing:
                    conn.write(data)
                    written += 1
        if not written and reaches and self.device.config.resend_missed:
            self.missed.append((alert, stamp))
        pushes = 0
        if push and (reaches or self.device.notifies_center(alert, push=True)):
            for target in self.push_targets:
                self._spawn(self._push(target, alert, seq))
                pushes += 1
        self.device.note_alarm(alert)
        sent = SentAlert(
            seq,
            alert.type,
            alert.channel,
            alert.state,
            stamp.sent_ns,
            written,
            pushes,
            stamp.date_time,
        )
        with self._lock:
            if len(self.sent) >= MAX_SENT_LOG:
                del self.sent[: MAX_SENT_LOG // 2]
            self.sent.append(sent)
        return sent

    @property
    def backlog(self) -> int:
        """Largest number of bytes waiting in one stream's send buffer."""
        largest = 0
        for conn in self.streams:  # a loop, not max(): read after every scenario alarm
            largest = max(largest, conn.buffered)
        return largest

    async def drain(self) -> None:
        for conn in list(self.streams):
            if not conn.closing:
                with contextlib.suppress(ConnectionError, OSError):
                    await conn.drain()

    async def push(self, target: PushTarget, alert: SimAlert, seq: int | None = None) -> PushResult:
        """POST `alert` to `target` now; it gets the next sequence number unless given one."""
        cfg = self.device.config
        number = self.next_seq() if seq is None else seq

        def make_body() -> tuple[str, bytes]:
            stamp = Stamp(number, time.monotonic_ns(), self.clock.text(), self.device.port)
            return push_body(alert, cfg, stamp, target.form)

        result = await post(target.host, target.port, target.path, make_body, source=target.source)
        with self._lock:
            if len(self.push_results) >= MAX_SENT_LOG:
                del self.push_results[: MAX_SENT_LOG // 2]
            self.push_results.append(result)
        return result

    async def _push(self, target: PushTarget, alert: SimAlert, seq: int) -> None:
        await self.push(target, alert, seq)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_pushes(self) -> None:
        """Wait until every POST started so far has finished."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))
