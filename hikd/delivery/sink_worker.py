"""One sink's delivery loop: read after its cursor, send, acknowledge, back off on failure.

Each sink has its own worker thread and its own cursor in the outbox, so a slow or dead
sink only delays itself. Failures (``SinkUnavailable`` or any other exception, from
``open()`` or ``send()``) are retried with exponential backoff; the log gets one line when
a sink starts failing and one when it delivers again, never one per retry, and at most
one warning per sink every `WARN_INTERVAL_S` however often it fails and recovers.

An outage ends when the sink has proved it delivers: a send that delivered its whole
batch, or two sends in a row that delivered part of theirs. One send that delivered part
and then failed is no proof: a syslog sink over UDP whose receiver is down "delivers"
the first datagram of every retry; counting that as a recovery made a health event
start and stop on every retry (136 in 8 s), each one more event for the failing sink.

A `WindowedSink` (MQTT) gets a `WindowedSinkWorker` (hikd/delivery/sink_window.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hikd.delivery import hops
from hikd.delivery.latency import LatencyHistogram, LatencySnapshot
from hikd.delivery.outbox import Outbox, OutboxClosed, OutboxUnwritable
from hikd.events import Event
from hikd.logs import get_logger
from hikd.sinks.base import Sink, SinkUnavailable

WorkerState = Literal["idle", "opening", "delivering", "failing", "stopped"]

StateChange = Callable[[str, bool, str | None], None]
"""Called as (sink name, failing, error) when a sink starts failing or recovers."""

OutboxTrouble = Callable[[Exception], None]
"""Called when the outbox could not store this sink's acknowledgement."""

_UNSTORED_KEPT = 16
"""Events waiting to be sent straight from memory at most (the newest are kept)."""

# A safety net only: the bus wakes workers after every write.
IDLE_WAIT_S = 1.0

ACK_WRITE_EVERY_S = 0.2
"""While a sink delivers, its cursor is written to the outbox (a transaction) at most this
often; in between it advances in memory. A crash may send up to this much again (delivery
is at least once); a stop writes it. Keeps the cost per batch fixed at low rates, where
every event is a batch of its own."""

WARN_INTERVAL_S = 60.0
"""A sink's "unavailable" warning is logged at most this often; the next says how many
outages it left unsaid."""


class Backoff:
    """Exponential backoff: `first`, twice that, ... capped at `cap` seconds."""

    def __init__(self, first: float = 0.1, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.first


@dataclass(frozen=True, slots=True)
class SinkStats:
    delivered: int
    """Events this sink acknowledged since start."""
    failures: int
    """Failed open()/send() attempts since start."""
    last_error: str | None
    """The latest failure, kept after recovery."""
    state: WorkerState
    latency: LatencySnapshot
    """From hikd receiving each event to this sink acknowledging it."""


class SinkWorker:
    """Feeds one sink from the outbox on its own thread."""

    def __init__(
        self,
        name: str,
        sink: Sink,
        outbox: Outbox,
        *,
        batch_size: int = 500,
        backoff_first: float = 0.1,
        backoff_max: float = 30.0,
        on_state_change: StateChange | None = None,
        on_outbox_trouble: OutboxTrouble | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.name = name
        self.sink = sink
        self._outbox = outbox
        self._batch_size = batch_size
        self._backoff = Backoff(backoff_first, backoff_max)
        self._on_state_change = on_state_change
        self._on_outbox_trouble = on_outbox_trouble
        self._unstored: deque[Event] = deque(maxlen=_UNSTORED_KEPT)
        self._ack_unwritten = False  # the last ack is only in the outbox's memory
        self._ack_held: int | None = None  # acknowledged in memory, not written yet
        self._ack_due = 0.0  # when the next cursor write is due (monotonic)
        # One logger per worker, bound to its sink: every line says which sink it is about.
        self._log = get_logger(__name__, sink=name)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hikd-sink-{name}", daemon=True)
        self._opened = False
        self._failing = False
        self._partial_sends = 0  # sends in a row that delivered part of a batch, while failing
        self._attempts = 0
        self._warned_at = -WARN_INTERVAL_S
        self._unwarned = 0  # outages not logged since the last warning
        self._delivered = 0
        self._failures = 0
        self._last_error: str | None = None
        self._state: WorkerState = "idle"
        self._latency = LatencyHistogram()

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New events were stored."""
        self._wake.set()

    def deliver_now(self) -> None:
        """Another process stored events (`EventBus.others_stored`): wake the worker."""
        self._wake.set()

    def send_unstored(self, event: Event) -> None:
        """Send `event` before the next stored ones, straight from memory (never stored,
        never acknowledged; for news that the outbox cannot store, such as its own
        trouble). Kept until the sink takes it."""
        self._unstored.append(event)
        self._wake.set()

    def request_stop(self) -> None:
        """Stop after the current send (a send is never interrupted)."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; False if it is still running (stuck in the sink)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stats(self) -> SinkStats:
        return SinkStats(
            self._delivered,
            self._failures,
            self._last_error,
            self._state,
            self._latency.snapshot(),
        )

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._deliver()
        except OutboxClosed:
            pass  # the daemon closed the outbox while this sink was stuck; it stops here
        finally:
            self._state = "stopped"
            if self._ack_held is not None:
                with contextlib.suppress(Exception):  # else sent again at the next start
                    self._outbox.ack(self.name, self._ack_held)
            if self._opened:
                try:
                    self.sink.close()
                except Exception:
                    self._log.exception("sink close() failed")

    def _deliver(self) -> None:
        cursor = self._outbox.cursor(self.name)
        caught_up = False  # the last batch was all there was at the last wake-up
        while not self._stop.is_set():
            if not self._opened:
                self._state = "opening"
                try:
                    self.sink.open()
                except Exception as e:
                    self._fail("open", e)
                    continue
                self._opened = True
            if caught_up and not self._wake.is_set():
                # Nothing was stored since: no look at the outbox (a read and its lock per
                # batch); the wait below ends at the next wake-up, or reads after a second.
                batch = []
            else:
                self._wake.clear()
                if self._unstored and not self._send_unstored():
                    continue
                try:
                    batch = self._outbox.read(self.name, cursor, self._batch_size)
                except OutboxClosed:
                    raise
                except Exception as e:
                    self._fail("outbox read", e)
                    continue
            caught_up = False
            if not batch:
                self._recovered()  # opened, and nothing to prove: it is up
                self._state = "idle"
                self._wait_idle(cursor)
                continue
            if not self._failing:
                self._state = "delivering"
            try:
                events = [event for _, event in batch]
                if hops.ON:
                    hops.note(f"read:{self.name}", events)
                sent = self.sink.send(events)
                if hops.ON:
                    hops.note(f"sent:{self.name}", events)
                if not isinstance(sent, int) or not 0 <= sent <= len(batch):
                    raise TypeError(f"send() returned {sent!r}, expected 0..{len(batch)}")
                if sent == 0:
                    raise SinkUnavailable(f"send() delivered none of {len(batch)} events")
            except Exception as e:
                self._fail("send", e)
                continue
            if not self._ack(batch[sent - 1][0], write=time.monotonic() >= self._ack_due):
                continue
            cursor = batch[sent - 1][0]
            self._delivered += sent
            self._latency.delivered(event for _, event in batch[:sent])
            caught_up = sent == len(batch) < self._batch_size
            if sent < len(batch) and self._failing:
                self._partial_sends += 1
                if self._partial_sends < 2:
                    continue
            self._recovered()

    def _wait_idle(self, cursor: int, most_s: float | None = None) -> None:
        """Write the cursor when due, then wait for a wake-up (at most until it is due, and
        `most_s`, `IDLE_WAIT_S` by default)."""
        held = self._ack_held is not None
        if self._ack_unwritten or (held and time.monotonic() >= self._ack_due):
            self._ack(cursor)
        wait = IDLE_WAIT_S if most_s is None else most_s
        if self._ack_held is not None:  # written when due, if nothing comes first
            wait = max(0.0, min(wait, self._ack_due - time.monotonic()))
        self._sleep(wait)

    def _sleep(self, seconds: float) -> None:
        """Wait up to `seconds` for a wake-up."""
        self._wake.wait(seconds)

    def _send_unstored(self) -> bool:
        """Send the events waiting in memory; False if the sink failed."""
        while self._unstored and not self._stop.is_set():
            try:
                if self.sink.send([self._unstored[0]]) != 1:
                    raise SinkUnavailable("send() delivered none of 1 event")
            except Exception as e:
                self._fail("send", e)
                return False
            self._unstored.popleft()
        return True

    def _ack(self, seq: int, write: bool = True) -> bool:
        """Acknowledge up to `seq` (in memory only unless `write`); False (and the sink
        counted failing) if that failed for another reason than an outbox that cannot be
        written."""
        try:
            self._outbox.ack(self.name, seq, persist=write)
            if not write:
                self._ack_held = seq
                return True
            self._ack_held = None
            self._ack_due = time.monotonic() + ACK_WRITE_EVERY_S
        except OutboxClosed:
            raise
        except OutboxUnwritable as e:
            # Delivered, and the outbox remembers it: not the sink's fault. The bus
            # reports the outbox's trouble; the cursor is written by a later ack.
            self._ack_unwritten = True
            self._ack_held = None
            if self._on_outbox_trouble is not None:
                self._on_outbox_trouble(e)
            return True
        except Exception as e:
            # Delivered but not recorded: these events will be sent again.
            self._fail("outbox ack", e)
            return False
        self._ack_unwritten = False
        return True

    def _fail(self, phase: str, error: Exception) -> None:
        self._failures += 1
        self._attempts += 1
        if isinstance(error, SinkUnavailable):
            message = str(error) or "unavailable"
        else:
            message = f"{phase} failed: {type(error).__name__}: {error}"
        self._last_error = message
        self._state = "failing"
        self._partial_sends = 0
        if not self._failing:
            self._failing = True
            if isinstance(error, SinkUnavailable):
                now = time.monotonic()
                if now - self._warned_at >= WARN_INTERVAL_S:
                    self._warned_at = now
                    self._log.warning(
                        "sink unavailable; retrying with backoff",
                        error=message,
                        max_backoff_s=self._backoff.cap,
                        **({"outages_not_logged": self._unwarned} if self._unwarned else {}),
                    )
                    self._unwarned = 0
                else:
                    self._unwarned += 1
            else:
                # Not a condition the sink reported: most likely a bug, so keep the traceback.
                self._log.error(
                    "sink failed unexpectedly; retrying with backoff",
                    error=message,
                    max_backoff_s=self._backoff.cap,
                    exc_info=error,
                )
            self._notify(failing=True, error=message)
        self._stop.wait(self._backoff.next())

    def _recovered(self) -> None:
        if not self._failing:
            return
        if not self._unwarned:  # its start was logged: so is its end
            self._log.info("sink delivering again", failed_attempts=self._attempts)
        self._failing = False
        self._partial_sends = 0
        self._attempts = 0
        self._backoff.reset()
        self._state = "delivering"
        self._notify(failing=False, error=None)

    def _notify(self, failing: bool, error: str | None) -> None:
        if self._on_state_change is None:
            return
        try:
            self._on_state_change(self.name, failing, error)
        except Exception:
            self._log.exception("sink state change callback failed")
