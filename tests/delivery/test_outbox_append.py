"""Other processes store events in the daemon's outbox (hikd/delivery/outbox_append.py): beside a
running daemon, and before its first start."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import OUTBOX_FILE, Outbox
from hikd.delivery.outbox_append import OutboxAppender
from tests.delivery.test_bus import Recorder, alarm, wait_until

# A second process appending while the daemon's outbox is open and appending too.
APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hikd.events import DeviceRef, Event
    from hikd.delivery.outbox_append import OutboxAppender
    state, first, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    with OutboxAppender(state, ["quick"]) as outbox:
        for i in range(first, first + count, 10):
            outbox.append([
                Event(kind="log", type="operation", state="pulse", device=DeviceRef("nvr"),
                      id=f"ev-{n:08d}", attributes={"n": n})
                for n in range(i, min(i + 10, first + count))
            ])
    """
)


def test_events_of_another_process_reach_the_running_daemons_sinks(tmp_path: Path) -> None:
    sink = Recorder()
    outbox = Outbox(tmp_path / OUTBOX_FILE)
    bus = EventBus(outbox, [("quick", sink)], backoff_first=0.01, backoff_max=0.05)
    bus.start()
    try:
        other = subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(tmp_path), "100000", "600"],
        )
        try:
            for i in range(600):  # the daemon's own, meanwhile
                bus.publish(alarm(i))
            assert other.wait(60) == 0
        finally:
            if other.poll() is None:
                other.kill()
                other.wait()
        wait_until(lambda: len(sink.events) == 1200)
    finally:
        bus.stop(timeout=2)
        outbox.close()
    numbers = [e.attributes["n"] for e in sink.events]
    assert len(set(numbers)) == 1200, "an event lost or delivered twice"
    assert [n for n in numbers if n < 100000] == list(range(600))  # each in its own order
    assert [n for n in numbers if n >= 100000] == list(range(100000, 100600))


def test_events_stored_before_the_first_start_are_delivered_by_it(tmp_path: Path) -> None:
    with OutboxAppender(tmp_path, ["mqtt", "disk"]) as appender:
        appender.append([alarm(i) for i in range(5)])
        assert appender.stored == 5
    with Outbox(tmp_path / OUTBOX_FILE) as outbox:
        outbox.set_sinks(["mqtt", "disk"])  # what the daemon does at its start
        for sink in ("mqtt", "disk"):
            rows = outbox.read(sink, outbox.cursor(sink), 100)
            assert [e.id for _, e in rows] == [f"ev-{i:08d}" for i in range(5)]
        # and the daemon goes on after them
        outbox.append([alarm(5)])
        rows = outbox.read("disk", outbox.cursor("disk"), 100)
        assert [e.id for _, e in rows][-1] == "ev-00000005"


def test_an_appender_wakes_the_daemons_delivery_after_each_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the hook (`on_commit` -> `EventBus.others_stored`) delivery does not wait for
    its periodic look (made an hour here, so only the hook can deliver)."""
    monkeypatch.setattr("hikd.delivery.bus._OTHERS_POLL_S", 3600.0)
    sink = Recorder()
    outbox = Outbox(tmp_path / OUTBOX_FILE)
    bus = EventBus(outbox, [("quick", sink)], backoff_first=0.01, backoff_max=0.05)
    bus.start()
    commits = []
    try:
        with OutboxAppender(
            tmp_path, ["quick"], on_commit=lambda: (commits.append(1), bus.others_stored())
        ) as appender:
            for i in range(0, 30, 10):
                appender.append([alarm(n) for n in range(i, i + 10)])
                wait_until(lambda i=i: len(sink.events) == i + 10)
        assert len(commits) == 3
    finally:
        bus.stop(timeout=2)
        outbox.close()
    assert [e.id for e in sink.events] == [f"ev-{i:08d}" for i in range(30)]


def test_rows_of_another_process_are_decoded_once_for_every_sink(tmp_path: Path) -> None:
    with Outbox(tmp_path / OUTBOX_FILE) as outbox:
        outbox.set_sinks(["mqtt", "disk"])
        with OutboxAppender(tmp_path, ["mqtt", "disk"]) as appender:
            stored = [alarm(i) for i in range(5)]
            appender.append(stored)
        assert outbox.refresh()
        first = outbox.read("mqtt", 0, 100)
        second = outbox.read("disk", 0, 100)
        assert [e.id for _, e in first] == [f"ev-{i:08d}" for i in range(5)]
        assert all(a is b for (_, a), (_, b) in zip(first, second, strict=True))
        # The sink's bytes are the stored row's, not a new encoding.
        assert first[0][1].to_json_bytes() == stored[0].to_json_bytes()
        outbox.ack("mqtt", first[-1][0])
        outbox.ack("disk", first[-1][0])
        assert outbox.stats().events == 0
        outbox.append([alarm(5)])  # the daemon's own go on after them
        assert [e.id for _, e in outbox.read("disk", first[-1][0], 100)] == ["ev-00000005"]


def test_a_read_finds_and_counts_the_rows_another_process_stored(tmp_path: Path) -> None:
    """A device host's rows are found by the first sink that reads after its wake-up, with
    no look of the bus's (`refresh`) in between, and counted for the backlog and the limit."""
    with Outbox(tmp_path / OUTBOX_FILE) as outbox:
        outbox.set_sinks(["mqtt", "disk"])
        with OutboxAppender(tmp_path, ["mqtt", "disk"]) as appender:
            appender.append([alarm(i) for i in range(5)])
            first = outbox.read("mqtt", 0, 3)
            assert [e.id for _, e in first] == [f"ev-{i:08d}" for i in range(3)]
            assert outbox.stats().events == 5
            assert outbox.pending("disk") == 5
            assert outbox.last_seq == 5
            second = outbox.read("disk", 0, 100)  # from memory: decoded once for both
            assert all(a is b for (_, a), (_, b) in zip(first, second, strict=True))
            assert [seq for seq, _ in second] == [1, 2, 3]
            assert [seq for seq, _ in outbox.read("disk", 3, 100)] == [4, 5]
            assert outbox.read("disk", 5, 100) == []
            # The bus's own look still says that rows came (it holds them to the limit).
            assert outbox.refresh()
            assert not outbox.refresh()
            appender.append([alarm(5)])
            assert [seq for seq, _ in outbox.read("mqtt", 5, 100)] == [6]
            assert outbox.stats().events == 6


def test_a_read_told_of_a_commit_asks_sqlite_nothing_before_reading_the_rows(
    tmp_path: Path,
) -> None:
    """A device host's wake-up says it has just committed: the read after it goes straight
    to the rows (it asked ``PRAGMA data_version`` first: one more statement, and one more
    hand-over of the interpreter's lock, on every alarm's way). The next look still finds
    nothing new and says so."""
    with Outbox(tmp_path / OUTBOX_FILE) as outbox:
        outbox.set_sinks(["mqtt"])
        statements: list[str] = []
        assert outbox._conn is not None
        outbox._conn.set_trace_callback(statements.append)
        with OutboxAppender(tmp_path, ["mqtt"]) as appender:
            appender.append([alarm(i) for i in range(3)])
            told = outbox.read("mqtt", 0, 100, told=True)
            assert [e.id for _, e in told] == [f"ev-{i:08d}" for i in range(3)]
            assert not [s for s in statements if "data_version" in s], statements
            assert len(statements) == 1  # the rows' SELECT
            appender.append([alarm(3)])
            assert [seq for seq, _ in outbox.read("mqtt", 3, 100)] == [4]  # looked, found
            assert outbox.read("mqtt", 4, 100) == []
            assert outbox.refresh()
            assert not outbox.refresh()
            assert outbox.stats().events == 4


def test_a_sink_gets_each_row_once_when_its_own_and_another_process_rows_mix(
    tmp_path: Path,
) -> None:
    """Rows another process stored after the daemon's own are read once, whether the read
    starts before them or at them (a read that ran past the rows counted in, then looked
    for other processes' rows after them, got those again: an event twice on disk)."""
    with Outbox(tmp_path / OUTBOX_FILE) as outbox:
        outbox.set_sinks(["disk"])
        outbox.append([alarm(0)])  # the daemon's own, before a restart: seq 1
    # Opened again: it counts that row and has it in no memory.
    with Outbox(tmp_path / OUTBOX_FILE) as outbox, OutboxAppender(tmp_path, ["disk"]) as appender:
        appender.append([alarm(1), alarm(2)])  # a host's: seq 2 and 3, not counted yet
        got: list[int] = []
        cursor = 0
        for _ in range(5):
            batch = outbox.read("disk", cursor, 100)
            if batch:
                cursor = batch[-1][0]
                outbox.ack("disk", cursor, persist=False)
            got += [seq for seq, _ in batch]
        assert got == [1, 2, 3]
        outbox.append([alarm(3)])  # after the host's rows
        appender.append([alarm(4)])
        assert [seq for seq, _ in outbox.read("disk", cursor, 100)] == [4]
        assert [seq for seq, _ in outbox.read("disk", 4, 100)] == [5]
        assert outbox.read("disk", 5, 100) == []


def test_an_append_of_any_size_is_stored_in_order(tmp_path: Path) -> None:
    """One INSERT for a usual batch; past SQLite's parameters per statement, several in one
    transaction. Either way in order, numbered after what is there."""
    events = [alarm(i) for i in range(5003)]
    with OutboxAppender(tmp_path, ["disk"]) as appender:
        appender.append(events[:3])
        appender.append(events[3:])
        assert appender.stored == 5003
    with Outbox(tmp_path / OUTBOX_FILE) as outbox:
        outbox.set_sinks(["disk"])
        got: list[int] = []
        while rows := outbox.read("disk", got[-1] if got else 0, 1000):
            assert [seq for seq, _ in rows] == list(range(len(got) + 1, len(got) + 1 + len(rows)))
            got += [seq for seq, _ in rows]
            assert [e.id for _, e in rows] == [events[s - 1].id for s, _ in rows]
        assert len(got) == 5003
