"""The event bus: outbox first, a worker per sink, retries, isolation, restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import Outbox
from hikd.events import DeviceRef, Event
from hikd.sinks.base import Sink, SinkUnavailable

CAM = DeviceRef("cam-1", "DS-2CD2043G2", "192.0.2.7:8000")


def alarm(i: int) -> Event:
    return Event(
        kind="alarm",
        type="motion",
        state="pulse",
        device=CAM,
        channel=1,
        attributes={"n": i},
        id=f"ev-{i:08d}",
    )


def new_bus(
    outbox: Outbox,
    sinks: Sequence[tuple[str, Sink]],
    on_health: Callable[[Event], None] | None = None,
    **options: Any,
) -> EventBus:
    """An EventBus that retries quickly, so failure tests do not slow the suite."""
    return EventBus(outbox, sinks, on_health, backoff_first=0.01, backoff_max=0.05, **options)


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.005)


class Recorder:
    """A sink that keeps what it is sent. Subclasses add failure or slowness."""

    Config: ClassVar[type[BaseModel]] = BaseModel

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.opened = 0
        self.closed = 0

    def open(self) -> None:
        self.opened += 1

    def send(self, batch: Sequence[Event]) -> int:
        self.events += batch
        return len(batch)

    def close(self) -> None:
        self.closed += 1

    def alarm_ids(self) -> list[str]:
        return [e.id for e in self.events if e.kind == "alarm"]


class Flaky(Recorder):
    """Unavailable for the first `failures` sends (or opens), then fine."""

    def __init__(
        self, failures: int, in_open: bool = False, error: type[Exception] = SinkUnavailable
    ) -> None:
        super().__init__()
        self.failures = failures
        self.in_open = in_open
        self.error = error
        self.attempts = 0

    def _maybe_fail(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error("broker refused the connection")

    def open(self) -> None:
        if self.in_open:
            self._maybe_fail()
        super().open()

    def send(self, batch: Sequence[Event]) -> int:
        if not self.in_open:
            self._maybe_fail()
        return super().send(batch)


class Partial(Recorder):
    """Slow, and delivers at most `per_send` events of each batch."""

    def __init__(self, per_send: int, delay: float = 0.0) -> None:
        super().__init__()
        self.per_send = per_send
        self.delay = delay

    def send(self, batch: Sequence[Event]) -> int:
        time.sleep(self.delay)
        return super().send(batch[: self.per_send])


class Stuck(Recorder):
    """Blocks inside send() (or open()) until released (a dead peer without a timeout)."""

    def __init__(self, in_open: bool = False) -> None:
        super().__init__()
        self.in_open = in_open
        self.entered = threading.Event()
        self.release = threading.Event()

    def open(self) -> None:
        if self.in_open:
            self.entered.set()
            self.release.wait()
        super().open()

    def send(self, batch: Sequence[Event]) -> int:
        if not self.in_open:
            self.entered.set()
            self.release.wait()
        return super().send(batch)


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite"


@pytest.fixture
def make_bus(outbox_path: Path) -> Iterator[Callable[..., tuple[EventBus, Outbox]]]:
    """make_bus(sinks, **options) -> a started bus; stopped and closed after the test."""
    made: list[tuple[EventBus, Outbox]] = []

    def make(sinks: list[tuple[str, Sink]], **options: Any) -> tuple[EventBus, Outbox]:
        outbox = Outbox(outbox_path)
        bus = new_bus(outbox, sinks, **options)
        made.append((bus, outbox))
        bus.start()
        return bus, outbox

    try:
        yield make
    finally:
        for bus, outbox in made:
            bus.stop(timeout=2.0)
            outbox.close()


def test_every_sink_gets_every_event_in_order(
    make_bus: Callable[..., tuple[EventBus, Outbox]],
) -> None:
    a, b = Recorder(), Recorder()
    bus, outbox = make_bus([("a", a), ("b", b)])
    sent = [alarm(i) for i in range(2000)]
    for event in sent:
        bus.publish(event)
    wait_until(lambda: len(a.events) == 2000 and len(b.events) == 2000)
    assert a.events == sent
    assert b.events == sent
    wait_until(lambda: outbox.stats().events == 0)  # acknowledged by both: pruned
    stats = bus.stats()
    assert stats["sinks"]["a"]["delivered"] == 2000
    assert stats["sinks"]["b"]["pending"] == 0
    assert stats["outbox"] == {"events": 0, "bytes": 0, "dropped": 0}
    assert a.opened == 1


def test_publishing_from_many_threads_keeps_each_threads_order(
    make_bus: Callable[..., tuple[EventBus, Outbox]],
) -> None:
    sink = Recorder()
    bus, _ = make_bus([("a", sink)])

    def publisher(t: int) -> None:
        for i in range(500):
            bus.publish(alarm(t * 1000 + i))

    threads = [threading.Thread(target=publisher, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: len(sink.events) == 2000)
    for t in range(4):
        mine = [e.attributes["n"] for e in sink.events if e.attributes["n"] // 1000 == t]
        assert mine == [t * 1000 + i for i in range(500)]


def test_a_failing_sink_recovers_and_gets_everything_in_order(
    make_bus: Callable[..., tuple[EventBus, Outbox]],
) -> None:
    flaky, steady = Flaky(failures=5), Recorder()
    health: list[Event] = []
    with capture_logs() as logs:
        bus, _ = make_bus([("flaky", flaky), ("steady", steady)], on_health=health.append)
        sent = [alarm(i) for i in range(300)]
        for event in sent:
            bus.publish(event)
        wait_until(lambda: len(flaky.alarm_ids()) == 300)
        wait_until(lambda: any(h.state == "stop" for h in health))
    assert flaky.alarm_ids() == [e.id for e in sent]  # no gap, no duplicate, in order
    stats = bus.stats()["sinks"]["flaky"]
    assert stats["failures"] == 5
    assert stats["last_error"] == "broker refused the connection"
    # One health event and one log line per state change, not one per retry.
    changes = [(h.type, h.state, h.attributes["sink"]) for h in health]
    assert changes == [
        ("sink_unavailable", "start", "flaky"),
        ("sink_unavailable", "stop", "flaky"),
    ]
    lines = [
        (entry["log_level"], entry["event"])
        for entry in logs
        if entry.get("sink") == "flaky" and entry["event"].startswith("sink ")
    ]
    assert lines == [
        ("warning", "sink unavailable; retrying with backoff"),
        ("info", "sink delivering again"),
    ]
    # The other sinks hear about it, after the alarms already stored.
    wait_until(lambda: len(steady.events) == 302)
    assert [e.type for e in steady.events[-2:]] == ["sink_unavailable", "sink_unavailable"]


class FirstThenRefused(Recorder):
    """A UDP syslog sink whose remote receiver is down: each retry's first datagram goes
    out before the refusal of the one before comes back, so every other send "delivers"
    one event and the next is refused. A stand-in: on loopback the refusal is back before
    the send returns, so the real sink cannot show this (tests/sinks/syslog/test_syslog.py runs it
    against a real receiver that is down)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.attempts = 0

    def send(self, batch: Sequence[Event]) -> int:
        self.attempts += 1
        if not self.down:
            return super().send(batch)
        if self.attempts % 2:
            return super().send(batch[:1])
        raise SinkUnavailable("Connection refused")


def test_an_outage_with_partial_sends_is_one_start_and_one_stop(
    make_bus: Callable[..., tuple[EventBus, Outbox]],
) -> None:
    sink, health = FirstThenRefused(), list[Event]()
    bus, _ = make_bus([("syslog", sink)], on_health=health.append)
    for i in range(100):
        bus.publish(alarm(i))
    wait_until(lambda: sink.attempts >= 30)
    sink.down = False
    wait_until(lambda: "ev-00000099" in sink.alarm_ids())
    wait_until(lambda: len(health) >= 2)
    assert [(h.type, h.state) for h in health] == [
        ("sink_unavailable", "start"),
        ("sink_unavailable", "stop"),
    ]


def test_a_sink_that_keeps_failing_and_recovering_warns_once_a_minute(
    make_bus: Callable[..., tuple[EventBus, Outbox]],
) -> None:
    class Outages(Recorder):
        """Fails one send in every three: each failure is an outage of its own."""

        attempts = 0

        def send(self, batch: Sequence[Event]) -> int:
            self.attempts += 1
            if self.attempts % 3 == 1:
                raise SinkUnavailable("Connection refused")
            return super().send(batch)

    sink, health = Outages(), list[Event]()
    with capture_logs() as logs:
        bus, _ = make_bus([("flappy", sink)], on_health=health.append)
        for i in range(5):
            bus.publish(alarm(i))
            wait_until(lambda i=i: f"ev-{i:08d}" in sink.alarm_ids())  # type: ignore[misc]
    starts = [h for h in health if h.state == "start"]
    assert len(starts) >= 3  # each outage is still reported, start and stop ...
    assert len([h for h in health if h.state == "stop"]) >= len(starts) - 1
    lines = [e["event"] for e in logs if e["event"].startswith("sink ")]
    # ... but the log says it once
    assert lines == ["sink unavailable; retrying with backoff", "sink delivering again"]


def test_open_failures_and_unexpected_exceptions_are_retried(
    make_bus: Callable[..., tuple[EventBus, Outbox]],
) -> None:
    opening = Flaky(failures=3, in_open=True)
    buggy = Flaky(failures=2, error=RuntimeError)
    bus, _ = make_bus([("opening", opening), ("buggy", buggy)])
    for i in range(50):
        bus.publish(alarm(i))
    wait_until(lambda: len(opening.alarm_ids()) == 50 and len(buggy.alarm_ids()) == 50)
    assert opening.opened == 1
    assert opening.alarm_ids() == buggy.alarm_ids() == [f"ev-{i:08d}" for i in range(50)]
    assert (
        bus.stats()["sinks"]["buggy"]["last_error"]
        == "send failed: RuntimeError: broker refused the connection"
    )


def test_a_stuck_sink_does_not_delay_the_others(
    make_bus: Callable[..., tuple[EventBus, Outbox]],
) -> None:
    stuck, other = Stuck(), Recorder()
    try:
        bus, _ = make_bus([("stuck", stuck), ("other", other)])
        bus.publish(alarm(0))
        assert stuck.entered.wait(10)
        for i in range(1, 1000):
            bus.publish(alarm(i))
        wait_until(lambda: len(other.events) == 1000)
        assert bus.stats()["sinks"]["stuck"]["pending"] == 1000
        # stop() gives up on it after its timeout instead of hanging.
        bus.stop(timeout=0.2)
        assert other.closed == 1
    finally:
        stuck.release.set()


def test_unacknowledged_events_are_resent_after_a_restart(outbox_path: Path) -> None:
    fast, slow = Recorder(), Partial(per_send=7, delay=0.002)
    sent = [alarm(i) for i in range(1000)]
    outbox = Outbox(outbox_path)
    bus = new_bus(outbox, [("fast", fast), ("slow", slow)])
    bus.start()
    try:
        for event in sent:
            bus.publish(event)
        wait_until(lambda: len(slow.events) >= 50)
        wait_until(lambda: len(fast.events) == 1000 and outbox.pending("fast") == 0)
    finally:
        bus.stop()  # mid-stream: "slow" has a backlog
        outbox.close()
    assert len(slow.events) < 1000

    fast2, slow2 = Recorder(), Recorder()
    outbox = Outbox(outbox_path)
    bus = new_bus(outbox, [("fast", fast2), ("slow", slow2)])
    bus.start()
    try:
        wait_until(lambda: outbox.pending("slow") == 0)
    finally:
        bus.stop()
        outbox.close()
    assert fast2.events == []  # everything was acknowledged before the restart
    # Exactly the rest, in order: Partial acknowledges all it was given.
    assert slow.events + slow2.events == sent


def test_stop_stores_what_is_queued(outbox_path: Path) -> None:
    stuck = Stuck()
    outbox = Outbox(outbox_path)
    bus = new_bus(outbox, [("stuck", stuck)])
    stored = threading.Event()

    def release_once_stored() -> None:
        # The sink stays stuck until everything queued is stored, so stop() must store with
        # a sink that never returns; then it is let go, so stop() need not wait it out.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(stuck.events) + outbox.pending("stuck") >= 5000:
                stored.set()
                break
            time.sleep(0.005)
        stuck.release.set()

    releaser = threading.Thread(target=release_once_stored)
    try:
        bus.start()
        for i in range(5000):
            bus.publish(alarm(i))
        releaser.start()
        bus.stop(timeout=30)
        releaser.join()
        assert stored.is_set()
        # Nothing lost: what the released sink delivered plus what waits in the outbox.
        assert len(stuck.events) + outbox.pending("stuck") == 5000
        bus.publish(alarm(5000))  # after stop: counted, not stored, no exception
        assert bus.stats()["queue"]["dropped"] == 1
    finally:
        stuck.release.set()
        if releaser.ident is not None:
            releaser.join()
        outbox.close()


def test_a_full_queue_drops_and_says_so(outbox_path: Path) -> None:
    sink, health = Recorder(), list[Event]()
    outbox = Outbox(outbox_path)
    bus = new_bus(outbox, [("a", sink)], health.append, max_queued=10)
    try:
        for i in range(25):  # not started: the writer is not draining the queue
            bus.publish(alarm(i))
        assert bus.stats()["queue"] == {"queued": 10, "dropped": 15}
        bus.start()
        wait_until(lambda: len(sink.events) == 11)
    finally:
        bus.stop()
        outbox.close()
    assert sink.alarm_ids() == [f"ev-{i:08d}" for i in range(10)]
    overflow = sink.events[-1]
    assert (overflow.type, overflow.attributes["dropped"]) == ("bus_overflow", 15)
    assert health == [overflow]


def test_outbox_overflow_through_the_bus_counts_every_lost_event(outbox_path: Path) -> None:
    # Stuck in open(): it holds no event in flight, so the counts are exact.
    stuck, quick, health = Stuck(in_open=True), Recorder(), list[Event]()
    outbox = Outbox(outbox_path, max_events=50)
    bus = new_bus(outbox, [("stuck", stuck), ("quick", quick)], health.append)
    try:
        bus.start()
        assert stuck.entered.wait(10)
        for i in range(300):
            bus.publish(alarm(i))
        # Once "quick" has the last one, everything is stored (overflow events included).
        wait_until(lambda: "ev-00000299" in quick.alarm_ids())
        wait_until(lambda: outbox.pending("quick") == 0)
        stuck.release.set()
        wait_until(lambda: outbox.pending("stuck") == 0)
    finally:
        stuck.release.set()
        bus.stop()
        outbox.close()
    overflows = [h for h in health if h.type == "outbox_overflow"]
    assert overflows
    stored = 300 + len(overflows)
    for name, sink in (("stuck", stuck), ("quick", quick)):
        lost = sum(h.attributes["dropped"][name] for h in overflows)
        assert lost + len(sink.events) == stored, name
    numbers = [e.attributes["n"] for e in stuck.events if e.kind == "alarm"]
    assert numbers == list(range(300 - len(numbers), 300))  # the newest, in order
    assert overflows[-1] in stuck.events


def test_a_sinks_cursor_is_written_per_interval_and_at_stop(
    outbox_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events one at a time are each a batch: the cursor advances in memory and is written
    when due (an hour here: only the first batch's), and at a clean stop; a restart then
    sends nothing again."""
    import sqlite3

    monkeypatch.setattr("hikd.delivery.sink_worker.ACK_WRITE_EVERY_S", 3600.0)

    def written() -> int:
        with sqlite3.connect(outbox_path) as conn:
            return int(conn.execute("SELECT seq FROM cursors WHERE sink = 'rec'").fetchone()[0])

    sink = Recorder()
    outbox = Outbox(outbox_path)
    bus = new_bus(outbox, [("rec", sink)])
    bus.start()
    try:
        for i in range(20):
            bus.publish(alarm(i))
            wait_until(lambda i=i: len(sink.events) == i + 1)
        assert outbox.pending("rec") == 0  # delivered, acknowledged in memory
        assert written() < outbox.last_seq  # not written per batch
    finally:
        bus.stop()
        last = outbox.last_seq
        outbox.close()
    assert written() == last
    again = Recorder()
    outbox = Outbox(outbox_path)
    bus = new_bus(outbox, [("rec", again)])
    bus.start()
    try:
        bus.publish(alarm(20))
        wait_until(lambda: len(again.events) == 1)
    finally:
        bus.stop()
        outbox.close()
    assert again.alarm_ids() == [alarm(20).id]


class CountingOutbox(Outbox):
    """Counts each sink's reads (they are real)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: dict[str, int] = {}

    def read(
        self, sink: str, after_cursor: int, limit: int, told: bool = False
    ) -> list[tuple[int, Event]]:
        self.reads[sink] = self.reads.get(sink, 0) + 1
        return super().read(sink, after_cursor, limit, told)


def test_a_sink_that_sent_all_there_was_waits_for_the_next_wake_up_without_a_read(
    outbox_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a batch that was all the outbox had when the worker was woken, it waits for the
    next wake-up; it used to read the outbox once more first, to find nothing (a read and
    the outbox's lock per batch). Only wake-ups make it read here: no periodic looks."""
    monkeypatch.setattr("hikd.delivery.sink_worker.IDLE_WAIT_S", 3600.0)
    monkeypatch.setattr("hikd.delivery.sink_worker.ACK_WRITE_EVERY_S", 0.0)
    monkeypatch.setattr("hikd.delivery.bus._OTHERS_POLL_S", 3600.0)
    outbox = CountingOutbox(outbox_path)
    sink = Recorder()
    bus = new_bus(outbox, [("a", sink)])
    bus.start()
    try:
        for i in range(20):
            bus.publish(alarm(i))
            wait_until(lambda i=i: len(sink.events) == i + 1)
        assert [e.id for e in sink.events] == [f"ev-{i:08d}" for i in range(20)]
        assert outbox.reads["a"] <= 25, outbox.reads  # one per event (it was two)
    finally:
        bus.stop(timeout=2.0)
        outbox.close()
