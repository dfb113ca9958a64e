"""The durable outbox: order, cursors, pruning, the size limit, crashes (real SQLite files)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from hikd.delivery.outbox import Outbox
from hikd.errors import UserError
from hikd.events import DeviceRef, Event

CAM = DeviceRef("cam-1", "DS-2CD2043G2", "192.0.2.7:8000")
REPO = Path(__file__).resolve().parents[2]


def alarm(i: int, **attributes: object) -> Event:
    return Event(
        kind="alarm",
        type="motion",
        state="pulse",
        device=CAM,
        channel=1,
        attributes={"n": i, **attributes},
        id=f"ev-{i:08d}",
    )


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite"


@pytest.fixture
def outbox(outbox_path: Path) -> Iterator[Outbox]:
    box = Outbox(outbox_path)
    try:
        yield box
    finally:
        box.close()


def ids(rows: list[tuple[int, Event]]) -> list[str]:
    return [event.id for _, event in rows]


def test_events_come_back_in_order_with_their_content(outbox: Outbox) -> None:
    outbox.set_sinks(["a"])
    sent = [alarm(i, rect=[1, 2, 3, 4]) for i in range(10)]
    outbox.append(sent[:4])
    outbox.append(sent[4:])
    rows = outbox.read("a", 0, 100)
    assert [seq for seq, _ in rows] == list(range(1, 11))
    assert [event for _, event in rows] == sent
    assert ids(outbox.read("a", 4, 3)) == ["ev-00000004", "ev-00000005", "ev-00000006"]
    assert outbox.read("a", 10, 100) == []


def test_events_read_from_the_database_equal_the_ones_stored(outbox_path: Path) -> None:
    sent = [alarm(i) for i in range(5)]
    with Outbox(outbox_path) as box:
        box.set_sinks(["a"])
        box.append(sent)
    with Outbox(outbox_path) as box:  # a new process would see this: nothing in memory
        box.set_sinks(["a"])
        assert [event for _, event in box.read("a", 0, 100)] == sent


def test_each_sink_has_its_own_cursor_and_acked_rows_are_pruned(outbox: Outbox) -> None:
    outbox.set_sinks(["a", "b"])
    outbox.append([alarm(i) for i in range(10)])
    outbox.ack("a", 7)
    assert outbox.cursor("a") == 7
    assert outbox.pending("a") == 3
    assert outbox.pending("b") == 10
    assert outbox.stats().events == 10  # b still needs all of them
    outbox.ack("b", 4)
    assert outbox.stats().events == 6  # rows 1..4 are acknowledged by everyone
    assert ids(outbox.read("b", 4, 100))[0] == "ev-00000004"
    outbox.ack("b", 2)  # acknowledging less than before changes nothing
    assert outbox.cursor("b") == 4
    outbox.ack("b", 10)
    assert outbox.stats().events == 3
    outbox.ack("a", 10)
    assert outbox.stats().events == 0
    assert outbox.stats().bytes == 0


def test_cursors_survive_a_restart(outbox_path: Path) -> None:
    with Outbox(outbox_path) as box:
        box.set_sinks(["a", "b"])
        box.append([alarm(i) for i in range(10)])
        box.ack("a", 6)
        box.ack("b", 3)
    with Outbox(outbox_path) as box:
        box.set_sinks(["a", "b"])
        assert box.cursor("a") == 6
        assert ids(box.read("a", box.cursor("a"), 100)) == [f"ev-{i:08d}" for i in range(6, 10)]
        assert ids(box.read("b", box.cursor("b"), 100))[0] == "ev-00000003"
        # New events continue the numbering, after the ones still stored.
        box.append([alarm(10)])
        assert box.read("a", 10, 1)[0][0] == 11


def test_numbering_continues_after_everything_was_pruned(outbox_path: Path) -> None:
    with Outbox(outbox_path) as box:
        box.set_sinks(["a"])
        box.append([alarm(i) for i in range(5)])
        box.ack("a", 5)
        assert box.stats().events == 0
    with Outbox(outbox_path) as box:
        box.set_sinks(["a"])
        event = alarm(5)
        box.append([event])
        # seq 6, not 1: a reused number would sit at or below a cursor and never be sent.
        assert box.read("a", box.cursor("a"), 10) == [(6, event)]


def test_a_new_sink_starts_with_events_stored_from_then_on(outbox: Outbox) -> None:
    outbox.set_sinks(["a"])
    outbox.append([alarm(i) for i in range(3)])
    outbox.set_sinks(["a", "late"])
    outbox.append([alarm(3)])
    assert ids(outbox.read("late", outbox.cursor("late"), 10)) == ["ev-00000003"]
    assert outbox.pending("late") == 1


def test_a_sink_no_longer_configured_does_not_pin_the_outbox(outbox_path: Path) -> None:
    with Outbox(outbox_path) as box:
        box.set_sinks(["kept", "removed"])
        box.append([alarm(i) for i in range(10)])
        box.ack("kept", 10)
        assert box.stats().events == 10  # "removed" has not received them
    with Outbox(outbox_path) as box:
        box.set_sinks(["kept"])
        assert box.sinks == ["kept"]
        assert box.stats().events == 0


def test_without_sinks_nothing_is_kept(outbox: Outbox) -> None:
    outbox.set_sinks([])
    outbox.append([alarm(i) for i in range(5)])
    assert outbox.stats().events == 0


def test_size_limit_drops_the_oldest_and_says_how_many_per_sink(outbox_path: Path) -> None:
    with Outbox(outbox_path, max_events=100) as box:
        box.set_sinks(["a", "b"])
        box.append([alarm(i) for i in range(50)])
        box.ack("a", 20)
        assert box.append([alarm(i) for i in range(50, 60)]) == []  # still under the limit
        health = box.append([alarm(i) for i in range(60, 150)])

        assert len(health) == 1
        overflow = health[0]
        assert (overflow.kind, overflow.type) == ("health", "outbox_overflow")
        assert overflow.attributes["reason"] == "max_events"
        dropped = overflow.attributes["dropped"]
        total = overflow.attributes["total"]
        assert box.stats().dropped == total
        assert box.stats().events <= 100

        for sink, acked in (("a", 20), ("b", 0)):
            rows = box.read(sink, box.cursor(sink), 1000)
            events = [e for _, e in rows]
            assert events[-1] == overflow  # stored after what was kept, delivered in order
            originals = [e.attributes["n"] for e in events[:-1]]
            # The newest events are kept, contiguous, in order ...
            assert originals == list(range(150 - len(originals), 150))
            # ... and the count says exactly how many this sink will never receive.
            assert dropped[sink] == 150 - acked - len(originals)
        assert dropped["b"] == total


def test_size_limit_in_bytes(outbox_path: Path) -> None:
    with Outbox(outbox_path, max_bytes=20_000) as box:
        box.set_sinks(["a"])
        health: list[Event] = []
        for i in range(0, 200, 10):
            health += box.append([alarm(n, pad="x" * 200) for n in range(i, i + 10)])
        assert box.stats().bytes <= 20_000
        assert health
        assert {e.attributes["reason"] for e in health} == {"max_bytes"}
        events = [e for _, e in box.read("a", 0, 10_000)]
        originals = [e.attributes["n"] for e in events if e.kind == "alarm"]
        # Every row stored (the overflow events too: a later overflow may drop an earlier
        # one) is either still there or counted by exactly one overflow event.
        lost = sum(e.attributes["dropped"]["a"] for e in health)
        assert lost + len(events) == 200 + len(health)
        assert originals == list(range(200 - len(originals), 200))


def test_the_file_is_in_wal_mode_and_full_sync_works(outbox_path: Path) -> None:
    import sqlite3

    with Outbox(outbox_path, synchronous="FULL") as box:
        box.set_sinks(["a"])
        box.append([alarm(0)])
        assert ids(box.read("a", 0, 10)) == ["ev-00000000"]
    db = sqlite3.connect(outbox_path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


Op = tuple[str, int, int]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["append", "ack", "reopen"]), st.integers(0, 1), st.integers(0, 40)
        ),
        max_size=25,
    )
)
def test_reads_and_counts_match_a_simple_model(ops: list[Op]) -> None:
    """Any mix of appends, acks and restarts: each sink reads exactly what follows its
    cursor, and the counts agree (no size limit reached here)."""
    sinks = ["a", "b"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "outbox.sqlite"
        box = Outbox(path)
        box.set_sinks(sinks)
        stored: list[Event] = []  # seq n is stored[n - 1]
        cursors = dict.fromkeys(sinks, 0)
        try:
            for op, which, n in ops:
                sink = sinks[which]
                if op == "append":
                    batch = [alarm(len(stored) + i) for i in range(n)]
                    assert box.append(batch) == []
                    stored += batch
                elif op == "ack":
                    cursors[sink] = min(len(stored), cursors[sink] + n)
                    box.ack(sink, cursors[sink])
                else:
                    box.close()
                    box = Outbox(path)
                    box.set_sinks(sinks)
                for s in sinks:
                    assert box.cursor(s) == cursors[s]
                    assert box.pending(s) == len(stored) - cursors[s]
                    got = box.read(s, cursors[s], 1000)
                    assert [e.id for _, e in got] == [e.id for e in stored[cursors[s] :]]
                    assert [seq for seq, _ in got] == list(range(cursors[s] + 1, len(stored) + 1))
                kept = stored[min(cursors.values()) :]
                assert box.stats().events == len(kept)
                assert box.stats().bytes == sum(len(e.to_json().encode()) for e in kept)
        finally:
            box.close()


def test_a_second_process_cannot_open_the_same_outbox(outbox: Outbox, outbox_path: Path) -> None:
    with pytest.raises(UserError, match="in use by another hikd process"):
        Outbox(outbox_path)


def test_a_file_that_is_not_a_database_is_a_clear_error(outbox_path: Path) -> None:
    outbox_path.write_bytes(b"this is not SQLite\n" * 100)
    with pytest.raises(UserError, match=r"cannot be used .*move the file away") as info:
        Outbox(outbox_path)
    assert "\n" not in str(info.value)


def test_a_missing_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="check that the state directory exists"):
        Outbox(tmp_path / "missing" / "outbox.sqlite")


def test_closed_outbox_refuses_work(outbox_path: Path) -> None:
    from hikd.delivery.outbox import OutboxClosed

    box = Outbox(outbox_path)
    box.set_sinks(["a"])
    box.close()
    box.close()
    with pytest.raises(OutboxClosed):
        box.append([alarm(1)])


def test_unreadable_row_is_delivered_as_a_health_event(outbox_path: Path) -> None:
    import sqlite3

    with Outbox(outbox_path) as box:
        box.set_sinks(["a"])
        box.append([alarm(0), alarm(1)])
    # Damage one row the way a future or broken writer might.
    with sqlite3.connect(outbox_path) as db:
        db.execute("UPDATE events SET body = ? WHERE seq = 1", (b'{"id": "half',))
    db.close()
    with Outbox(outbox_path) as box:
        box.set_sinks(["a"])
        first, second = (e for _, e in box.read("a", 0, 10))
        assert (first.kind, first.type) == ("health", "outbox_corrupt_event")
        assert first.raw == {"body": '{"id": "half'}
        assert second.id == "ev-00000001"


# -- crash: SIGKILL while publishing ------------------------------------------------------

_PUBLISHER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from pydantic import BaseModel
    from hikd.delivery.bus import EventBus
    from hikd.events import DeviceRef, Event
    from hikd.delivery.outbox import Outbox

    state, delivered = Path(sys.argv[1]), sys.argv[2]

    class HalfSink:
        # Slow and acknowledging half of each batch: a backlog builds up.
        Config = BaseModel
        def __init__(self):
            self.fd = os.open(delivered, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        def open(self):
            pass
        def send(self, batch):
            time.sleep(0.002)
            n = max(1, len(batch) // 2)
            # Written before acknowledging: survives SIGKILL (page cache), may repeat.
            os.write(self.fd, "".join(e.id + "\\n" for e in batch[:n]).encode())
            return n
        def close(self):
            pass

    outbox = Outbox(state / "outbox.sqlite")
    bus = EventBus(outbox, [("probe", HalfSink())], batch_size=50)
    bus.start()
    i = 0
    device = DeviceRef("cam-1")
    while True:
        for _ in range(100):
            bus.publish(Event(kind="alarm", type="motion", state="pulse", device=device,
                              id=f"ev-{i:08d}"))
            i += 1
        while outbox.last_seq < i:
            time.sleep(0.0005)
        print(f"stored {i}", flush=True)
""")


class Recorder:
    """A sink that keeps what it is sent."""

    Config: ClassVar[type[BaseModel]] = BaseModel

    def __init__(self) -> None:
        self.ids: list[str] = []

    def open(self) -> None:
        pass

    def send(self, batch: Sequence[Event]) -> int:
        self.ids += [e.id for e in batch]
        return len(batch)

    def close(self) -> None:
        pass


def test_every_stored_event_is_delivered_after_sigkill(tmp_path: Path) -> None:
    from hikd.delivery.bus import EventBus

    delivered_before = tmp_path / "delivered-before-kill.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    errors = tmp_path / "publisher-stderr.txt"
    with errors.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _PUBLISHER, str(tmp_path), str(delivered_before)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    stored = 0
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while stored < 5000 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            if line.startswith("stored "):  # other lines are log lines
                stored = int(line.split()[1])
        # Killed in the middle of publishing, storing and delivering.
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert stored >= 5000, f"the publisher did not get going: {errors.read_text()[-2000:]}"

    recorder = Recorder()
    with Outbox(tmp_path / "outbox.sqlite") as box:
        bus = EventBus(box, [("probe", recorder)])
        bus.start()
        try:
            deadline = time.monotonic() + 30
            while box.pending("probe") and time.monotonic() < deadline:
                time.sleep(0.01)
            assert box.pending("probe") == 0
        finally:
            bus.stop()

    before = delivered_before.read_text().split()
    after = recorder.ids
    assert after, "there was a backlog at the time of the kill"
    # Resent in order, with no gap: each id is the next after the previous one.
    numbers = [int(i.removeprefix("ev-")) for i in after]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    # Nothing stored before the kill is missing: delivered before, or after.
    assert set(before) | set(after) >= {f"ev-{i:08d}" for i in range(stored)}
    # What came after picks up where the acknowledged part ended (overlap allowed).
    assert numbers[0] <= len(set(before))
