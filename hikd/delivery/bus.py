"""The event bus: anyone publishes, the outbox stores, each sink's worker delivers.

``publish()`` is called from SDK decoder threads, device sessions and jobs, so it only
hands the event to the in-process subscribers (event-driven jobs: they only enqueue) and
appends it to an in-memory queue, and returns. One writer thread stores what is queued in the
outbox, one transaction per batch, then wakes every sink worker. The bus knows nothing of
who publishes or what a sink does with an event.

The in-memory queue is bounded (``max_queued``): if the outbox cannot keep up (a stalled
disk), further events are dropped and counted, and a ``bus_overflow`` health event says
how many once the writer catches up. Nothing is dropped silently.

When the outbox cannot be written (its file system is full, an I/O error), events wait in
memory up to that bound and the writer retries. An ``outbox_unwritable`` start goes to every
sink straight from memory (``attributes.stored`` is false: it is never stored, a sink that
cannot deliver it now gets it once it can); its stop is stored with the events that waited.
One log line when it starts, one when it ends, whichever part of hikd met it first.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from hikd.delivery.outbox import HIKD, Outbox, OutboxClosed
from hikd.delivery.outbox_checkpoint import WalCheckpointer
from hikd.delivery.sink_window import WindowedSinkWorker, sink_worker
from hikd.delivery.sink_worker import Backoff
from hikd.events import Event, health
from hikd.logs import get_logger
from hikd.sinks.base import Sink

log = get_logger(__name__)

HealthCallback = Callable[[Event], None]

# Events stored per outbox transaction at most: large enough for throughput, small
# enough that sinks see the first events of a burst soon.
_WRITE_BATCH = 2000

# The outbox is retried at least this often while it cannot be written: once space
# returns, the events waiting in memory are stored within this.
_OUTBOX_RETRY_MAX_S = 5.0

# How often the writer looks for events other processes stored (`hikd jobs --run`, see
# hikd/delivery/outbox_append.py) when nobody tells it (`others_stored`), and holds a device
# host's rows to the size limit: one cheap pragma.
_OTHERS_POLL_S = 0.5


class EventBus:
    def __init__(
        self,
        outbox: Outbox,
        sinks: Sequence[tuple[str, Sink]],
        on_health: HealthCallback | None = None,
        *,
        batch_size: int = 500,
        max_queued: int = 100_000,
        backoff_first: float = 0.1,
        backoff_max: float = 30.0,
    ) -> None:
        """`sinks` are (section name, sink); `on_health` gets the bus's own health events
        (outbox overflow, bus overflow, a sink failing or recovering) on the bus's threads,
        so it must return quickly. Those events are also published to every sink."""
        names = [name for name, _ in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique: {names}")
        self._outbox = outbox
        self._on_health = on_health
        self._subscribers: list[Callable[[Event], None]] = []
        self._max_queued = max_queued
        self._backoff = (backoff_first, backoff_max)
        # Events, and the markers of `wait_stored` (set once all before them are stored).
        self._queue: deque[Event | threading.Event] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._closed = False
        self._drop_lock = threading.Lock()
        self._queue_dropped = 0
        self._queue_reported = 0
        self._trouble_lock = threading.Lock()
        self._trouble: Event | None = None  # the outbox_unwritable start, while it lasts
        self._trouble_since = 0.0
        self._held = 0  # events the writer holds (taken from the queue, not stored yet)
        self._others = False  # another process said it stored events
        self._workers = [
            sink_worker(
                name,
                sink,
                outbox,
                batch_size=batch_size,
                backoff_first=backoff_first,
                backoff_max=backoff_max,
                on_state_change=self._sink_state_changed,
                on_outbox_trouble=self._outbox_unwritable,
            )
            for name, sink in sinks
        ]
        # The sinks whose batches go out at once (MQTT) first, on a device host's commit.
        self._woken_first = sorted(
            self._workers, key=lambda w: not isinstance(w, WindowedSinkWorker)
        )
        self._writer = threading.Thread(
            target=self._write_loop, name="hikd-bus-writer", daemon=True
        )
        self._checkpointer = WalCheckpointer(outbox.path)

    def start(self) -> None:
        self._outbox.set_sinks(w.name for w in self._workers)
        self._checkpointer.start()
        self._writer.start()
        for worker in self._workers:
            worker.start()

    def subscribe(self, consumer: Callable[[Event], None]) -> None:
        """Hand `consumer` every event published from now on, before it is queued, on the
        publisher's thread: it must only look and enqueue (event-driven jobs, the log
        reader of missed alarms). Subscribe before publishing starts."""
        self._subscribers.append(consumer)

    def publish(self, event: Event) -> None:
        """Queue `event` for storing and delivery. Thread-safe; never blocks."""
        for consumer in self._subscribers:
            consumer(event)
        self._enqueue(event)

    def _enqueue(self, event: Event) -> None:
        if self._closed or len(self._queue) >= self._max_queued:
            self._drop(event)
            return
        self._queue.append(event)
        if not self._wake.is_set():  # skip the Event's lock when the writer is awake anyway
            self._wake.set()

    def others_stored(self) -> None:
        """Another process stored events in the outbox (`OutboxAppender`'s ``on_commit``,
        relayed by whatever wakes this process): deliver them now rather than at the next
        look. Thread-safe; never waits for a sink.

        A windowed sink (MQTT) waiting idle gets the rows read and sent on the caller's
        thread (`WindowedSinkWorker.deliver_now`), before the other sinks' workers are woken;
        the first to read finds the rows and counts them (`Outbox.read`). The writer, which
        holds them to the size limit, looks at its next wake-up (within `_OTHERS_POLL_S`):
        waking it too cost a thread switch and a query per commit of a device host."""
        self._others = True
        for worker in self._woken_first:
            worker.deliver_now()

    def wait_stored(self, timeout: float) -> bool:
        """Wait until every event published before this call is stored in the outbox.
        False when that took longer than `timeout` (the outbox cannot be written) or the
        bus is stopped: they are not stored (yet)."""
        if self._closed:
            return False
        marker = threading.Event()
        self._queue.append(marker)
        self._wake.set()
        return marker.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Store what is queued, then stop the workers; undelivered events stay stored.

        A sink stuck inside ``send()`` is left behind (its thread is a daemon thread)
        after `timeout`; its unacknowledged events are sent again at the next start.
        """
        deadline = time.monotonic() + timeout
        self._closed = True
        for worker in self._workers:
            worker.request_stop()
        self._stopping.set()
        self._wake.set()
        if self._writer.ident is not None:
            self._writer.join(max(0.0, deadline - time.monotonic()))
            if self._writer.is_alive():
                self._abandon.set()
                log.error(
                    "event bus: could not store the queued events in the outbox in "
                    "time; they are lost",
                    lost=len(self._queue),
                    timeout_s=timeout,
                )
        for worker in self._workers:
            if not worker.join(max(0.0, deadline - time.monotonic())):
                log.warning(
                    "sink still inside send() at shutdown; leaving it behind, its "
                    "undelivered events stay in the outbox",
                    sink=worker.name,
                    timeout_s=timeout,
                )
        self._checkpointer.stop(max(0.0, deadline - time.monotonic()))

    def stats(self) -> dict[str, Any]:
        """Per sink: delivered, pending, oldest_pending (when hikd received the oldest
        event not acknowledged yet, epoch seconds, or None), failures, last_error, state,
        up (opened and not failing), latency (`LatencySnapshot`); the outbox: events,
        bytes, dropped; the in-memory queue: queued, dropped."""
        sinks: dict[str, Any] = {}
        for worker in self._workers:
            s = worker.stats()
            sinks[worker.name] = {
                "delivered": s.delivered,
                "pending": self._outbox.pending(worker.name),
                "oldest_pending": self._oldest_pending(worker.name),
                "failures": s.failures,
                "last_error": s.last_error,
                "state": s.state,
                "up": s.state in ("idle", "delivering"),
                "latency": s.latency,
            }
        o = self._outbox.stats()
        return {
            "sinks": sinks,
            "outbox": {"events": o.events, "bytes": o.bytes, "dropped": o.dropped},
            "queue": {"queued": len(self._queue) + self._held, "dropped": self._queue_dropped},
        }

    # -- inside --------------------------------------------------------------------------

    def _oldest_pending(self, sink: str) -> float | None:
        try:
            oldest = self._outbox.read(sink, self._outbox.cursor(sink), 1)
        except (KeyError, OutboxClosed, sqlite3.Error):  # not started, stopped, unreadable
            return None
        return oldest[0][1].received.timestamp() if oldest else None

    def _drop(self, event: Event) -> None:
        with self._drop_lock:
            self._queue_dropped += 1
            first = self._queue_dropped == 1
        if first:
            why = (
                "the bus is stopped"
                if self._closed
                else f"{self._max_queued} events are waiting for the outbox"
            )
            log.error("event bus: dropping events (counted in stats)", reason=why)

    def _write_loop(self) -> None:
        backoff = Backoff(self._backoff[0], min(self._backoff[1], _OUTBOX_RETRY_MAX_S))
        batch: list[Event] = []
        own: list[Event] = []  # the bus_overflow events in `batch`, reported once stored
        markers: list[threading.Event] = []  # of `wait_stored`, set once `batch` is stored
        others_at = time.monotonic() + _OTHERS_POLL_S
        while True:
            trouble = self._trouble is not None
            if not batch and not self._queue:
                if self._stopping.is_set():
                    return
                # While the outbox cannot be written, probe it now and then.
                self._wake.wait(backoff.next() if trouble else _OTHERS_POLL_S)
            self._wake.clear()
            if self._others or time.monotonic() >= others_at:
                self._others = False
                others_at = time.monotonic() + _OTHERS_POLL_S
                if self._look_for_others():
                    for worker in self._workers:
                        worker.wake()
            while self._queue and len(batch) < _WRITE_BATCH:
                item = self._queue.popleft()
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
            overflow = self._queue_overflow_event()
            if overflow is not None:
                batch.append(overflow)
                own.append(overflow)
            # While the outbox cannot be written, the end of that is stored with the batch
            # (or alone: it is the probe that finds the outbox writable again).
            self._held = len(batch)
            ended = self._trouble_end(len(batch) + len(self._queue)) if trouble else None
            if batch or ended is not None:
                try:
                    stored_health = self._outbox.append([*batch, *([ended] if ended else [])])
                except OutboxClosed:
                    log.error(
                        "event bus: the outbox was closed before these events were "
                        "stored; they are lost",
                        lost=len(batch) + len(self._queue),
                    )
                    return
                except Exception as e:
                    self._outbox_unwritable(e, waiting=len(batch) + len(self._queue))
                    if self._abandon.wait(backoff.next()):
                        return
                    continue
                if ended is not None:
                    backoff.reset()
                    self._trouble_ended(ended)
                batch = []
                self._held = 0
                for worker in self._workers:
                    worker.wake()
                for event in [*own, *stored_health]:
                    self._report(event)
                own = []
            for marker in markers:  # everything before them is stored now
                marker.set()
            markers = []

    def _look_for_others(self) -> bool:
        """Did another process store events since the last look?"""
        try:
            if not self._outbox.refresh():
                return False
            # Device hosts store through an appender, which knows no size limit.
            for event in self._outbox.append([]):
                self._report(event)
            return True
        except OutboxClosed:
            return False
        except Exception as e:  # the next append meets and reports the same trouble
            log.debug("event bus: cannot look for other processes' events", error=str(e))
            return False

    def _outbox_unwritable(self, error: Exception, waiting: int | None = None) -> None:
        """The outbox could not be written (by the writer, or a sink's acknowledgement):
        start an episode, unless one is on."""
        with self._trouble_lock:
            if self._trouble is not None:
                return
            waiting = len(self._queue) if waiting is None else waiting
            start = self._trouble = health(
                HIKD,
                "outbox_unwritable",
                state="start",
                stored=False,
                error=str(error),
                path=str(self._outbox.path),
                waiting=waiting,
                max_queued=self._max_queued,
            )
            self._trouble_since = time.monotonic()
        # One line for the episode, without a traceback: a full disk is not a bug.
        log.error(
            "event bus: cannot store events in the outbox; events wait in memory "
            "and are stored once it can be written again",
            error=str(error),
            path=str(self._outbox.path),
            max_queued=self._max_queued,
        )
        for worker in self._workers:
            worker.send_unstored(start)
        self._report(start)
        self._wake.set()  # the writer probes the outbox even with nothing to store

    def _trouble_end(self, waited: int) -> Event | None:
        with self._trouble_lock:
            start = self._trouble
            if start is None:
                return None
            lasted = round(time.monotonic() - self._trouble_since, 1)
        return health(
            HIKD,
            "outbox_unwritable",
            state="stop",
            start_id=start.id,
            path=str(self._outbox.path),
            waited=waited,
            lasted_s=lasted,
        )

    def _trouble_ended(self, stop: Event) -> None:
        with self._trouble_lock:
            self._trouble = None
        log.info(
            "event bus: storing events in the outbox again",
            waited=stop.attributes["waited"],
            lasted_s=stop.attributes["lasted_s"],
        )
        self._report(stop)

    def _queue_overflow_event(self) -> Event | None:
        with self._drop_lock:
            dropped = self._queue_dropped - self._queue_reported
            if not dropped or self._closed:
                return None
            self._queue_reported = self._queue_dropped
        return health(HIKD, "bus_overflow", dropped=dropped, max_queued=self._max_queued)

    def _sink_state_changed(self, name: str, failing: bool, error: str | None) -> None:
        event = health(
            HIKD, "sink_unavailable", state="start" if failing else "stop", sink=name, error=error
        )
        if not self._closed:  # a sink failing while everything stops is no news
            self._enqueue(event)
        self._report(event)

    def _report(self, event: Event) -> None:
        if self._on_health is None:
            return
        try:
            self._on_health(event)
        except Exception:
            log.exception("event bus: the health callback failed")
