"""The delivery loop of a `WindowedSink` (MQTT): several batches in flight.

`SinkWorker` sends a batch and waits for the sink to deliver it before it reads the next, so
an event stored while a batch waits for the broker's acknowledgement waits a round trip more,
and the rate is capped at a batch per round trip. This worker sends the next batch ahead while
the sink has room (``[sinks.mqtt] max_inflight_messages``), and acknowledges in the outbox only
what the sink reports delivered, counted from the oldest event in flight: the cursor never
passes an event that is not delivered. After a failure (connection lost, no acknowledgement in
time) everything in flight is read again from the cursor and sent again, in order: at least
once and in order per sink, as with `SinkWorker`. At a stop, what is still in flight after
`STOP_DRAIN_S` is sent again at the next start.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from hikd.delivery import hops
from hikd.delivery.outbox import Outbox, OutboxClosed
from hikd.delivery.sink_worker import ACK_WRITE_EVERY_S, SinkWorker
from hikd.events import Event
from hikd.sinks.base import Sink, WindowedSink

STOP_DRAIN_S = 2.0
"""At a stop, how long the events in flight may take to be acknowledged."""


def sink_worker(name: str, sink: Sink, outbox: Outbox, **options: Any) -> SinkWorker:
    """The worker for `sink`: windowed when the sink can keep several batches in flight."""
    if isinstance(sink, WindowedSink):
        return WindowedSinkWorker(name, sink, outbox, **options)
    return SinkWorker(name, sink, outbox, **options)


class WindowedSinkWorker(SinkWorker):
    """Feeds one `WindowedSink` from the outbox on its own thread (see the module)."""

    def __init__(self, name: str, sink: WindowedSink, outbox: Outbox, **options: Any) -> None:
        super().__init__(name, sink, outbox, **options)
        self._window = sink
        self._stored = True  # events may have been stored since the last read
        self._flight: deque[tuple[int, Event]] = deque()  # sent ahead, not delivered yet
        self._batch_ends: deque[int] = deque()  # the last seq of each batch sent ahead
        self._flight_cursor = 0
        self._sent_to = 0  # the last event sent ahead
        self._caught_up = False  # the last read was all there was then
        self._turn = threading.Lock()
        """Held by whichever thread reads and sends: the worker, except while it waits idle,
        or a caller of `deliver_now`."""
        self._live = False  # the worker's loop runs (the sink is open or opening)

    def wake(self) -> None:
        self._stored = True  # (a wake-up from the sink only says it delivered)
        super().wake()

    def deliver_now(self) -> None:
        """Another process stored events: read and send them ahead on the caller's thread
        when the worker waits idle with the sink up and room in its window; else wake the
        worker. The worker's wake-up (a thread switch, and a wait for the interpreter's lock)
        was the longest step from a device host's commit to the socket (bench/README.md).
        Never waits for the sink: a sink that is not connected now is left to the worker."""
        if self._turn.acquire(blocking=False):
            try:
                if (
                    self._live
                    and self._opened
                    and not self._failing
                    and not self._unstored
                    and not self._stop.is_set()
                    and self._window.has_room()
                ):
                    self._send_next(self._window, told=True)
                    return
            except OutboxClosed:
                return
            except Exception:
                self._caught_up = False  # the worker meets it again, and handles it
            finally:
                self._turn.release()
        self.wake()

    def _sleep(self, seconds: float) -> None:
        self._turn.release()
        try:
            super()._sleep(seconds)
        finally:
            self._turn.acquire()

    def _send_next(self, sink: WindowedSink, told: bool = False) -> bool:
        """Read the next batch after the last one sent and send it ahead (with `_turn`);
        True if there was one. Raises what the outbox or the sink raised. `told`: for
        `deliver_now` (another process has just committed; never wait for the sink)."""
        self._stored = False
        batch = self._outbox.read(self.name, self._sent_to, self._batch_size, told)
        if batch:
            events = [event for _, event in batch]
            if hops.ON:
                hops.note(f"read:{self.name}", events)
            if told:
                sink.send_ahead(events, wait=False)
            else:
                sink.send_ahead(events)
            if hops.ON:
                hops.note(f"written:{self.name}", events)
        self._caught_up = len(batch) < self._batch_size
        if not batch:
            return False
        if not self._failing:
            self._state = "delivering"
        self._flight.extend(batch)
        self._sent_to = batch[-1][0]
        self._batch_ends.append(self._sent_to)
        return True

    def _deliver(self) -> None:
        """Acknowledge what it reports
        delivered, send the next batch ahead while it has room, wait when neither can be done.
        `_wake` is cleared before looking, so a wake-up while looking is never missed."""
        sink = self._window
        cursor = self._outbox.cursor(self.name)  # delivered for good
        self._sent_to = cursor
        self._caught_up = False
        sink.watch(self._wake.set)
        self._turn.acquire()
        self._live = True
        try:
            while not self._stop.is_set():
                if not self._opened:
                    self._state = "opening"
                    try:
                        sink.open()
                    except Exception as e:
                        self._fail("open", e)
                        continue
                    self._opened = True
                self._wake.clear()
                if not self._flight and self._unstored and not self._send_unstored():
                    continue
                # New events go out first, then the acknowledgements are taken: an event
                # stored now does not wait for the bookkeeping of the ones before.
                sent = False
                if sink.has_room() and (self._stored or not self._caught_up):
                    try:
                        sent = self._send_next(sink)
                    except OutboxClosed:
                        raise
                    except Exception as e:
                        self._fail("send", e)
                        self._caught_up = False
                        continue
                if self._flight:
                    done = self._take_delivered(sink)
                    if done is None:  # failed: send everything again from the cursor
                        self._sent_to, self._caught_up = cursor, False
                        continue
                    if done:
                        cursor = self._flight_cursor
                        continue
                if sent:
                    continue
                if not self._flight:
                    self._recovered()  # opened, and nothing to prove: it is up
                    self._state = "idle"
                # A sink wakes its worker for acknowledgements only as its window fills up:
                # otherwise they are taken at the next batch, or after this wait.
                self._wait_idle(cursor, ACK_WRITE_EVERY_S if self._flight else None)
        finally:
            try:
                self._drain(sink)
            finally:
                self._live = False
                self._turn.release()

    def _take_delivered(self, sink: WindowedSink) -> int | None:
        """Acknowledge what `sink` reports delivered; None after a failure (nothing is in
        flight any more then)."""
        try:
            done = sink.delivered()
            if not isinstance(done, int) or not 0 <= done <= len(self._flight):
                raise TypeError(f"delivered() returned {done!r}, expected 0..{len(self._flight)}")
        except Exception as e:
            self._flight.clear()
            self._batch_ends.clear()
            self._fail("send", e)
            return None
        if not done:
            return 0
        flight = self._flight
        events = [flight.popleft()[1] for _ in range(done - 1)]
        seq, last = flight.popleft()
        events.append(last)
        ends = self._batch_ends
        whole = False  # a whole batch delivered: proof that the sink works
        while ends and ends[0] <= seq:
            ends.popleft()
            whole = True
        self._ack(seq, write=time.monotonic() >= self._ack_due)  # a failure: written later
        self._flight_cursor = seq  # the seq up to which it acknowledged
        self._delivered += done
        self._latency.delivered(events, sink.acknowledged_at)
        if hops.ON:
            hops.note(f"sent:{self.name}", events)
        if whole:
            self._recovered()
        return done

    def _drain(self, sink: WindowedSink) -> None:
        """At a stop: wait a little for the events in flight to be acknowledged."""
        deadline = time.monotonic() + STOP_DRAIN_S
        while self._flight and self._opened and time.monotonic() < deadline:
            self._wake.clear()
            if not self._take_delivered(sink):
                self._wake.wait(max(0.0, min(0.1, deadline - time.monotonic())))
