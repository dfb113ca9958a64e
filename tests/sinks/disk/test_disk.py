"""The disk sink: JSON lines, rotation, retention, and a full disk (real files, real ENOSPC)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import Outbox
from hikd.events import DeviceRef, Event
from hikd.sinks.base import SinkContext, SinkUnavailable
from hikd.sinks.disk.sink import DiskSink, DiskSinkConfig

CAM = DeviceRef("cam-1", "DS-2CD2043G2", "192.0.2.7:8000")


def alarm(i: int, **attributes: object) -> Event:
    return Event(
        kind="alarm",
        type="motion",
        state="pulse",
        device=CAM,
        channel=1,
        attributes={"n": i, **attributes},
        files=(f"/var/lib/hikd/pics/{i}.jpg",),
        id=f"ev-{i:08d}",
    )


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.005)


def read_events(directory: Path) -> list[Event]:
    """Every event in the directory: rotated files oldest first, then the current one."""
    files = [*sorted(directory.glob("events-*.jsonl")), directory / "events.jsonl"]
    return [
        Event.from_json(line) for f in files if f.exists() for line in f.read_text().splitlines()
    ]


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[Callable[..., DiskSink]]:
    """make_sink(**config) -> an opened DiskSink writing under tmp_path/events."""
    made: list[DiskSink] = []

    def make(**config: object) -> DiskSink:
        settings = DiskSinkConfig.model_validate({"path": str(tmp_path / "events"), **config})
        sink = DiskSink(settings, SinkContext("disk", tmp_path, {}))
        made.append(sink)
        return sink

    try:
        yield make
    finally:
        for sink in made:
            sink.close()


def test_writes_one_json_line_per_event(make_sink: Callable[..., DiskSink], tmp_path: Path) -> None:
    sink = make_sink()
    sink.open()
    sent = [alarm(i) for i in range(6)]
    assert sink.send(sent[:5]) == 5
    assert sink.send(sent[5:]) == 1
    lines = (tmp_path / "events" / "events.jsonl").read_text().splitlines()
    assert lines == [e.to_json() for e in sent]
    assert [Event.from_json(line) for line in lines] == sent
    assert Event.from_json(lines[0]).files == ("/var/lib/hikd/pics/0.jpg",)  # path kept


def test_default_is_the_state_directory_and_relative_paths_follow_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    context = SinkContext("disk", tmp_path / "state", {})
    default = DiskSink(DiskSinkConfig(), context)
    relative = DiskSink(DiskSinkConfig(path=Path("archive")), context)
    assert default.current == tmp_path / "state" / "events.jsonl"
    # Like every path of hikd's configuration (config/hikd.example.toml).
    assert relative.current == tmp_path / "archive" / "events.jsonl"


def test_rotates_by_size_and_keeps_max_files(
    make_sink: Callable[..., DiskSink], tmp_path: Path
) -> None:
    line = len(alarm(0).to_json()) + 1
    sink = make_sink(max_bytes=line * 10, max_files=3)
    sink.open()
    sent = [alarm(i) for i in range(100)]
    for i in range(0, 100, 7):
        assert sink.send(sent[i : i + 7]) == len(sent[i : i + 7])
    directory = tmp_path / "events"
    rotated = sorted(directory.glob("events-*.jsonl"))
    assert len(rotated) == 3
    for f in [*rotated, directory / "events.jsonl"]:
        assert f.stat().st_size <= line * 10
    # The newest files hold the newest events, in order, with nothing missing between.
    kept = [e.attributes["n"] for e in read_events(directory)]
    assert kept == list(range(100 - len(kept), 100))
    assert len(kept) > 30


def test_deletes_rotated_files_older_than_max_age(
    make_sink: Callable[..., DiskSink], tmp_path: Path
) -> None:
    directory = tmp_path / "events"
    directory.mkdir()
    old = directory / "events-20200101T000000.000000Z.jsonl"
    recent = directory / "events-20200102T000000.000000Z.jsonl"
    unrelated = directory / "notes.txt"
    for f in (old, recent, unrelated):
        f.write_text("{}\n")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    os.utime(unrelated, (ten_days_ago, ten_days_ago))
    make_sink(max_age_days=7).open()
    assert not old.exists()
    assert recent.exists()
    assert unrelated.exists()


def test_a_line_cut_short_by_a_crash_is_removed(
    make_sink: Callable[..., DiskSink], tmp_path: Path
) -> None:
    directory = tmp_path / "events"
    directory.mkdir()
    whole = alarm(0).to_json()
    (directory / "events.jsonl").write_text(whole + "\n" + alarm(1).to_json()[:40])
    sink = make_sink()
    sink.open()
    sink.send([alarm(1)])
    assert [e.id for e in read_events(directory)] == ["ev-00000000", "ev-00000001"]


def test_a_batch_soon_after_an_fsync_waits_out_the_interval_before_its_fsync(
    make_sink: Callable[..., DiskSink], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real clock cannot be held still: the sink's clock and its wait are driven by hand,
    # so the test says which fsync waits how long without measuring time. fsync is the real
    # one, only noted.
    sink = make_sink(fsync_interval_s=0.05)
    sink.open()
    now = [100.0]
    waits: list[float] = []
    fsynced: list[tuple[float, int]] = []  # (when, lines in the file then)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        fsynced.append((now[0], len(read_events(tmp_path / "events"))))
        real_fsync(fd)

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(os, "fsync", fsync)
    sink._clock = lambda: now[0]
    sink._sleep = sleep
    assert sink.send([alarm(0)]) == 1  # the first: fsynced at once
    now[0] += 0.01
    assert sink.send([alarm(1), alarm(2)]) == 2  # written, fsynced 0.05 s after the first
    now[0] += 0.2
    assert sink.send([alarm(3)]) == 1  # long after: at once
    assert waits == [pytest.approx(0.04)]
    assert fsynced == [(100.0, 1), (pytest.approx(100.05), 3), (pytest.approx(100.25), 4)]


def test_with_no_fsync_interval_every_batch_is_fsynced_at_once(
    make_sink: Callable[..., DiskSink], tmp_path: Path
) -> None:
    sink = make_sink(fsync_interval_s=0)
    sink.open()
    sink._sleep = lambda seconds: pytest.fail(f"waited {seconds} s")
    assert sink.send([alarm(0)]) == 1
    assert sink.send([alarm(1)]) == 1
    assert len(read_events(tmp_path / "events")) == 2


def test_without_fsync_it_still_writes(make_sink: Callable[..., DiskSink], tmp_path: Path) -> None:
    sink = make_sink(fsync=False)
    sink.open()
    assert sink.send([alarm(0)]) == 1
    assert len(read_events(tmp_path / "events")) == 1


def test_a_full_disk_is_one_clear_line_and_nothing_is_written(
    make_sink: Callable[..., DiskSink],
    tmp_path: Path,
) -> None:
    directory = tmp_path / "events"
    directory.mkdir()
    # /dev/full answers every write with ENOSPC: a real full disk, even for root.
    (directory / "events.jsonl").symlink_to("/dev/full")
    sink = make_sink()
    sink.open()
    with pytest.raises(SinkUnavailable) as info:
        sink.send([alarm(0)])
    assert (
        str(info.value)
        == f"disk sink: cannot write {directory / 'events.jsonl'}: No space left on device"
    )


def test_a_path_that_is_a_file_is_one_clear_line(
    make_sink: Callable[..., DiskSink], tmp_path: Path
) -> None:
    (tmp_path / "events").write_text("I am a file\n")
    sink = make_sink()
    # chmod cannot stop root; a file where the directory should be can.
    with pytest.raises(SinkUnavailable) as info:
        sink.open()
    assert (
        str(info.value) == f"disk sink: cannot write {tmp_path / 'events'}: it is not a directory"
    )


def test_through_the_bus_a_full_disk_loses_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "events"
    directory.mkdir()
    target = directory / "events.jsonl"
    target.symlink_to("/dev/full")
    sink = DiskSink(DiskSinkConfig(path=directory), SinkContext("disk", tmp_path, {}))
    outbox = Outbox(tmp_path / "outbox.sqlite")
    bus = EventBus(outbox, [("disk", sink)], backoff_first=0.01, backoff_max=0.05)
    try:
        bus.start()
        sent = [alarm(i) for i in range(200)]
        for event in sent[:100]:
            bus.publish(event)
        wait_until(lambda: bus.stats()["sinks"]["disk"]["failures"] >= 3)
        assert (
            bus.stats()["sinks"]["disk"]["last_error"]
            == f"disk sink: cannot write {target}: No space left on device"
        )
        for event in sent[100:]:
            bus.publish(event)
        target.unlink()  # space again
        # 200 alarms and two health events: the sink failing, and delivering again.
        wait_until(lambda: outbox.last_seq == 202 and outbox.pending("disk") == 0)
    finally:
        bus.stop()
        outbox.close()
    written = read_events(directory)
    assert [e for e in written if e.kind == "alarm"] == sent  # each once, in order
    assert [(e.type, e.state) for e in written if e.kind == "health"] == [
        ("sink_unavailable", "start"),
        ("sink_unavailable", "stop"),
    ]
