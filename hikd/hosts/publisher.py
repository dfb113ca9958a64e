"""A device host's side of the outbox: store every event, then wake the supervisor.

``publish()`` runs on decoder, session and job threads: it hands the event to the host's
in-process subscribers (alarm-driven jobs, the backfill's record) and queues the event. One
writer thread notes the alarm starts and stops of a batch (`hikd.hosts.open_alarms`: a
crash closes what was on), stores the batch in one transaction (`OutboxAppender`: SQLite
WAL, beside the supervisor's own writes) and then writes one byte on the wake pipe: the
supervisor's delivery side looks for new rows at once instead of polling. An event is the
supervisor's to deliver the moment its transaction commits: a crash of this process
afterwards loses nothing.

While the outbox cannot be written events wait in memory (bounded; what overflows is
counted and logged) and the writer retries.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hikd.delivery.outbox_append import OutboxAppender
from hikd.errors import UserError
from hikd.events import Event
from hikd.logs import get_logger

log = get_logger(__name__)

WRITE_BATCH = 2000
MAX_QUEUED = 100_000
RETRY_S = 1.0
STORED_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class _Heard:
    alias: str
    number: int


class HostPublisher:
    def __init__(
        self,
        state_dir: Path,
        sinks: Iterable[str],
        wake: Callable[[], None],
        note: Callable[[Sequence[Event]], None],
        stored_heard: Callable[[dict[str, int]], None] = lambda _heard: None,
    ) -> None:
        """`wake()` is called after each commit; `note(batch)` with each batch before it is
        stored (so that a crash closes every alarm start that may be stored), one call per
        batch rather than per event; `stored_heard({alias: number})` after a batch with
        relayed requests in it is stored (`heard`)."""
        self._appender = OutboxAppender(state_dir, sinks, on_commit=wake)
        self._note = note
        self._stored_heard = stored_heard
        self._subscribers: list[Callable[[Event], None]] = []
        self._queue: deque[Event | threading.Event | _Heard] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="hikd-host-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def subscribe(self, consumer: Callable[[Event], None]) -> None:
        self._subscribers.append(consumer)

    def publish(self, event: Event) -> None:
        for consumer in self._subscribers:
            consumer(event)
        if self._closed or len(self._queue) >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped == 1:
                log.error("device host: dropping events, the outbox does not keep up")
            return
        self._queue.append(event)
        if not self._wake.is_set():
            self._wake.set()

    def heard(self, alias: str, number: int) -> None:
        """Everything request `number` relayed from `alias` gave is published: say so with
        the batch it ends up in, once stored (the listen front then forgets the request)."""
        if not self._closed and len(self._queue) < MAX_QUEUED:
            self._queue.append(_Heard(alias, number))

    def stored(self) -> None:
        """Return once every event published so far is stored (`Publishing.stored`)."""
        marker = threading.Event()
        self._queue.append(marker)
        self._wake.set()
        if not marker.wait(STORED_WAIT_S):
            raise UserError(
                f"its events are not stored in the outbox after {STORED_WAIT_S:g} s "
                "(is the outbox's file system full?); nothing was marked done"
            )

    def stop(self, timeout: float) -> None:
        """Store what is queued (within `timeout`), then close the outbox."""
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("device host: events not stored in time", lost=len(self._queue))
        else:
            self._appender.close()

    def _run(self) -> None:
        failing = False
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wake.wait()
                self._wake.clear()
                continue
            batch: list[Event] = []
            markers: list[threading.Event] = []
            heard: dict[str, int] = {}
            while self._queue and len(batch) < WRITE_BATCH:
                item = self._queue[0]
                if isinstance(item, threading.Event) and batch:
                    break  # set once the batch before it is stored
                self._queue.popleft()
                if isinstance(item, threading.Event):
                    markers.append(item)
                elif isinstance(item, _Heard):
                    heard[item.alias] = item.number
                else:
                    batch.append(item)
            if batch:
                self._note(batch)
            while batch:
                try:
                    self._appender.append(batch)
                except Exception as exc:  # a full disk: wait in memory and retry
                    if not failing:
                        log.error("device host: cannot store events; retrying", error=str(exc))
                        failing = True
                    time.sleep(RETRY_S)
                    continue
                if failing:
                    log.info("device host: storing events again")
                    failing = False
                batch = []
            if heard:
                self._stored_heard(heard)
            while self._queue and isinstance(first := self._queue[0], threading.Event):
                self._queue.popleft()
                markers.append(first)
            for marker in markers:
                marker.set()
