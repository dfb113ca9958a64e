"""The outbox's batch paths: many rows per statement, acknowledgements in one script, row
sizes taken from memory, events read back keeping their stored JSON (real SQLite files)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hikd.delivery.outbox import Outbox
from hikd.events import DeviceRef, Event

CAM = DeviceRef("cam-1", "DS-2CD2043G2", "192.0.2.7:8000")
T0 = datetime(2024, 3, 10, 10, 2, 11, 250000, tzinfo=UTC)


def alarm(i: int) -> Event:
    return Event(
        kind="alarm",
        type="motion",
        state="pulse",
        device=CAM,
        channel=1,
        time=T0,
        received=T0,
        attributes={"n": i, "name": "Tür" if i % 2 else "gate", "pad": "x" * (i % 7)},
        id=f"ev-{i:08d}",
    )


def rows(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return [(seq, bytes(body).decode()) for seq, body in conn.execute("SELECT * FROM events")]


def cursors(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT sink, seq FROM cursors"))


def stored_bytes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (n,) = conn.execute("SELECT coalesce(sum(length(body)), 0) FROM events").fetchone()
        return int(n)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite"


@pytest.fixture
def outbox(path: Path) -> Iterator[Outbox]:
    box = Outbox(path)
    try:
        yield box
    finally:
        box.close()


@pytest.mark.parametrize("size", [1, 2, 3, 2000, 4096, 4097, 9000])
def test_a_batch_is_stored_in_order_with_each_events_json(
    outbox: Outbox, path: Path, size: int
) -> None:
    outbox.set_sinks(["a"])
    events = [alarm(i) for i in range(size)]
    outbox.append(events[:1])
    outbox.append(events[1:])
    assert rows(path) == [(i + 1, e.to_json()) for i, e in enumerate(events)]
    assert outbox.stats().events == size
    assert outbox.stats().bytes == stored_bytes(path)


def test_events_read_back_keep_the_stored_text(path: Path) -> None:
    with Outbox(path) as box:
        box.set_sinks(["a"])
        box.append([alarm(i) for i in range(10)])
    with Outbox(path) as box:
        back = box.read("a", 0, 100)
    stored = dict(rows(path))
    for seq, event in back:
        assert event == alarm(seq - 1)
        assert event.to_json() == stored[seq]
        assert Event.from_json(event.to_json()) == event


@pytest.mark.parametrize("name", ["plain", "it's", "a'';--", 'q"; DROP TABLE events; --', "nul\0x"])
def test_acknowledgements_persist_for_any_sink_name(path: Path, name: str) -> None:
    with Outbox(path) as box:
        box.set_sinks([name, "other"])
        box.append([alarm(i) for i in range(10)])
        box.ack(name, 4)
        box.ack("other", 7)
        assert box.stats().events == 6  # rows 1..4 are acknowledged by both
        box.ack(name, 10)
        assert box.stats().events == 3
        assert box.stats().bytes == stored_bytes(path)
    assert cursors(path) == {name: 10, "other": 7}
    assert [seq for seq, _ in rows(path)] == [8, 9, 10]
    with Outbox(path) as box:
        assert (box.cursor(name), box.cursor("other")) == (10, 7)


def test_sizes_of_rows_from_before_a_restart_come_from_the_database(path: Path) -> None:
    with Outbox(path) as box:
        box.set_sinks(["a"])
        box.append([alarm(i) for i in range(50)])
    with Outbox(path) as box:
        box.append([alarm(i) for i in range(50, 80)])
        for seq in (10, 49, 51, 60, 80):
            box.ack("a", seq)
            assert box.stats().bytes == stored_bytes(path)
            assert box.stats().events == len(rows(path)) == 80 - seq


def test_a_sink_behind_the_remembered_events_reads_them_from_the_database(
    outbox: Outbox, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hikd.delivery.outbox_recent.MOST", 100)
    outbox.set_sinks(["fast", "slow"])
    events = [alarm(i) for i in range(1000)]
    for i in range(0, 1000, 50):
        outbox.append(events[i : i + 50])
        outbox.ack("fast", i + 50)
    got = []
    cursor = 0
    while batch := outbox.read("slow", cursor, 64):
        got += [event for _, event in batch]
        cursor = batch[-1][0]
        outbox.ack("slow", cursor)
        assert outbox.stats().bytes == stored_bytes(path)
    assert got == events
    assert outbox.stats().events == 0
