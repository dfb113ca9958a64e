"""A device host's side of the outbox: store every event, then wake the supervisor.

``publish()`` runs on session and job threads: it hands the event to the host's in-process
subscribers (alarm-driven jobs, the backfill's record) and queues the event, and a writer
thread stores it. The alarm decoder queues its events (`queue`) and stores them itself
(`flush`) after what it had to decode, with no hand-over between threads. Whoever stores
notes the alarm starts and stops of a batch (`hikd.hosts.open_alarms`: a crash closes what
was on), stores the batch in one transaction (`OutboxAppender`: SQLite WAL, beside the
supervisor's own writes) and then writes one byte on the wake pipe: the supervisor's
delivery side looks for new rows at once instead of polling. An event is the
supervisor's to deliver the moment its transaction commits: a crash of this process
afterwards loses nothing.

While the outbox cannot be written events wait in memory (bounded; what overflows is
counted and logged) and the writer thread retries.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hikd.delivery import hops
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
        self._appender = OutboxAppender(state_dir, sinks, on_commit=self._committed)
        self._wake_supervisor = wake
        self._committing: Sequence[Event] = ()
        self._note = note
        self._stored_heard = stored_heard
        self._subscribers: list[Callable[[Event], None]] = []
        self._after_commit: list[Callable[[Sequence[Event]], None]] = []
        self._queue: deque[Event | threading.Event | _Heard] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._dropped = 0
        self._storing = threading.Lock()
        """Held while a batch is taken from the queue and stored: one at a time, in order."""
        self._failing = False
        self._error = ""
        self._thread = threading.Thread(target=self._run, name="hikd-host-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def subscribe(self, consumer: Callable[[Event], None]) -> None:
        self._subscribers.append(consumer)

    def subscribe_stored(self, consumer: Callable[[Sequence[Event]], None]) -> None:
        """`consumer(batch)` after each batch is stored, on the thread that stored it: it
        must only note it (backfill's record of the alarms delivered live)."""
        self._after_commit.append(consumer)

    def publish(self, event: Event) -> None:
        """Queue `event`; the writer thread stores it."""
        if self.queue(event) and not self._wake.is_set():
            self._wake.set()

    def queue(self, event: Event) -> bool:
        """Queue `event` without waking the writer: the caller stores it with `flush()`
        (the alarm decoder, after what it had to decode). False when it was dropped."""
        for consumer in self._subscribers:
            consumer(event)
        if self._closed or len(self._queue) >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped == 1:
                log.error("device host: dropping events, the outbox does not keep up")
            return False
        self._queue.append(event)
        return True

    def flush(self) -> None:
        """Store what is queued now, on the caller's thread: an alarm is stored without a
        hand-over to the writer thread (each costs GIL switches, and the writer waits up to
        the interpreter's switch interval for the GIL while the decoder keeps it busy).
        While the writer stores or retries, it is left to the writer."""
        if not self._queue:
            return
        if self._failing or not self._storing.acquire(blocking=False):
            self._wake.set()
            return
        try:
            stored = self._store_some()
        finally:
            self._storing.release()
        if not stored or self._queue:
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
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wake.wait()
                self._wake.clear()
                continue
            with self._storing:
                stored = self._store_some()
            if stored:
                if self._failing:
                    log.info("device host: storing events again")
                    self._failing = False
            else:
                if not self._failing:
                    log.error("device host: cannot store events; retrying", error=self._error)
                    self._failing = True
                time.sleep(RETRY_S)  # a full disk: the events wait in memory

    def _committed(self) -> None:
        """The batch is in the outbox: its consumers first, then the supervisor's wake-up
        (what the supervisor delivers has been noted by then: backfill's record)."""
        for consumer in self._after_commit:
            try:
                consumer(self._committing)
            except Exception:  # stored is stored: a bug there must not store it twice
                log.exception("device host: a consumer of stored events failed")
        self._wake_supervisor()

    def _store_some(self) -> bool:
        """Store the next batch from the queue (with `_storing` held); False when it could
        not be stored (what was taken is back at the head of the queue then)."""
        queue = self._queue
        taken: list[Event | threading.Event | _Heard] = []
        batch: list[Event] = []
        markers: list[threading.Event] = []
        heard: dict[str, int] = {}
        while queue and len(batch) < WRITE_BATCH:
            item = queue[0]
            if isinstance(item, threading.Event):
                if batch:
                    break  # set once the batch before it is stored
                markers.append(item)
            elif isinstance(item, _Heard):
                heard[item.alias] = item.number
            else:
                batch.append(item)
            taken.append(queue.popleft())
        if batch:
            try:
                if hops.ON:
                    hops.note("storing", batch)
                self._note(batch)
                self._committing = batch
                self._appender.append(batch)
                if hops.ON:
                    hops.note("committed", batch)
            except Exception as exc:
                self._error = str(exc)
                queue.extendleft(reversed(taken))
                return False
            finally:
                self._committing = ()
        if heard:
            self._stored_heard(heard)
        while queue and isinstance(first := queue[0], threading.Event):
            queue.popleft()
            markers.append(first)
        for marker in markers:
            marker.set()
        return True
