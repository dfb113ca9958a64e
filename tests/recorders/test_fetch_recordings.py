"""Recording search and scheduled downloads with the real library against hikd.sim.

The routes themselves (the device's file in pieces, the playback stream, cuts) have their
tests in test_download_routes.py; these are about the job: what it fetches, once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hikd.devices.capabilities.recordings import search_recordings
from hikd.devices.session import DeviceSession
from hikd.events import Event
from hikd.jobs.base import JobResult
from hikd.jobs.scheduler import JobScheduler
from hikd.recorders.fetch import BadFile, container_of
from hikd.recorders.retention import apply_retention
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.config import RecordingPlan
from hikd.state import StateStore
from tests.support import device_config, wait_for


def plan(**changes: Any) -> RecordingPlan:
    """Three 60 s recordings of 4 kB/s (streams of ~240 kB) on channel 1 only, 2 minutes
    apart. The last one is still being written: it began when the simulator started and
    ends at its "now", while the finished ones ended more than 2 minutes before."""
    values: dict[str, Any] = {
        "per_channel": 3,
        "segment_s": 60,
        "gap_s": 120,
        "bytes_per_second": 4000,
        "channels": [1],
    }
    values.update(changes)
    return RecordingPlan(**values)


Login = Callable[..., DeviceSession]


@pytest.fixture
def login(sdk: Library, start_sim: Callable[..., Simulator]) -> Iterator[Login]:
    """login(sim, index=0) -> an online session, logged out after the test (before the
    simulator stops: this fixture depends on start_sim)."""
    sessions: list[DeviceSession] = []

    def make(sim: Simulator, index: int = 0) -> DeviceSession:
        session = DeviceSession(sdk, device_config(sim, index), publish=lambda _e: None)
        sessions.append(session)
        session.login_once()
        return session

    try:
        yield make
    finally:
        for session in sessions:
            session.close()


def ten_minutes_ago() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(minutes=10)


def download_job(name: str = "rec", **options: Any) -> dict[str, Any]:
    job = {
        "name": name,
        "kind": "download",
        "channels": [1],
        "interval_s": 3600,
        "window_h": 1,
        "stall_timeout_s": 1,
        "retry_backoff_s": 0.2,
        "parallel": 3,
        "open_margin_s": 60,
    }
    job.update(options)
    return job


def run_download(
    job: dict[str, Any], session: DeviceSession, state: StateStore, out: Path
) -> tuple[JobResult, list[Event]]:
    """One run now of the download `job` on the device "nvr", and the events it published."""
    events: list[Event] = []
    scheduler = JobScheduler(
        [job], lambda: {"nvr": session}, events.append, state, threading.Event(), out
    )
    [result] = scheduler.run_now(job["name"])
    return result, events


def stem(start: datetime, end: datetime) -> str:
    return f"{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}"


def test_a_scheduled_download_fetches_each_finished_recording_once(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan()))
    device = sim.devices[0]
    session = login(sim)
    folder = tmp_path / "out" / "rec" / "nvr" / "1"
    # A file from long ago that retention (keep_days = 2) must remove.
    folder.mkdir(parents=True)
    old = folder / "20200101T000000_20200101T000059.ps"
    old.write_bytes(b"IMKH" + bytes(100))
    three_days_ago = time.time() - 3 * 86400
    os.utime(old, (three_days_ago, three_days_ago))

    events: list[Event] = []
    with StateStore.open(tmp_path / "state") as state:
        scheduler = JobScheduler(
            [download_job(keep_days=2)],
            lambda: {"nvr": session},
            events.append,
            state,
            threading.Event(),
            tmp_path / "out",
        )
        [result] = scheduler.run_now("rec")
        assert result.ok, result.summary
        assert result.details["fetched"] == 2
        # The third recording is still being written: left for a later run.
        assert result.details["still_recording"] == 1

        finished = [r for r in device.recording_list(1) if not r.open]
        assert len(finished) == 2
        expected = [f"{stem(r.start, r.end)}.ps" for r in finished]
        assert sorted(p.name for p in folder.iterdir()) == expected
        for rec, name in zip(finished, expected, strict=True):
            data = (folder / name).read_bytes()
            # The library's container: 40-byte IMKH header (system_format 2 = PS), then PS.
            assert data[:4] == b"IMKH" and data[8:10] == b"\x02\x00"
            assert data[40:44] == b"\x00\x00\x01\xba"
            # mtime = end of the footage, so retention by age counts from there.
            end = rec.end.replace(tzinfo=UTC).timestamp() + 1
            assert (folder / name).stat().st_mtime == pytest.approx(end)

        recordings = [e for e in events if e.kind == "file"]
        assert [e.type for e in recordings] == ["recording", "recording"]
        by_path = {e.attributes["path"]: e for e in recordings}
        assert set(by_path) == {str(folder / name) for name in expected}
        for rec, name in zip(finished, expected, strict=True):
            event = by_path[str(folder / name)]
            assert event.channel == 1 and event.device.name == "nvr"
            assert event.files == (str(folder / name),)
            assert event.attributes["size"] == (folder / name).stat().st_size
            assert event.attributes["channel"] == 1
            assert datetime.fromisoformat(event.attributes["start"]) == rec.start.replace(
                tzinfo=UTC
            )
            assert datetime.fromisoformat(event.attributes["end"]) == rec.end.replace(tzinfo=UTC)

        streams = device.rtsp.stats.streams_started
        [again] = scheduler.run_now("rec")
        assert again.ok and again.details["fetched"] == 0
        assert again.details["already_done"] == 2
        assert device.rtsp.stats.streams_started == streams
        last = state.last_run("rec", "nvr")
        assert last is not None and last["ok"] and last["summary"].startswith("0 recordings")


def test_a_restart_in_the_middle_of_a_window_fetches_only_the_rest(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(
        SimDeviceConfig(name="nvr", recordings=plan(still_recording=False, end=ten_minutes_ago()))
    )
    device = sim.devices[0]
    session = login(sim)
    recordings = device.recording_list(1)
    assert len(recordings) == 3
    folder = tmp_path / "out" / "rec" / "nvr" / "1"

    # First life: hikd stops right after the first recording is in.
    stop = threading.Event()
    first_events: list[Event] = []

    def publish_then_stop(event: Event) -> None:
        first_events.append(event)
        stop.set()

    job = download_job(parallel=1)
    state = StateStore.open(tmp_path / "state")
    try:
        scheduler = JobScheduler(
            [job], lambda: {"nvr": session}, publish_then_stop, state, stop, tmp_path / "out"
        )
        [first] = scheduler.run_now("rec")
    finally:
        state.close()
    assert first.details["fetched"] == 1
    assert "interrupted" in first.summary
    assert len(first_events) == 1
    # A crash in the middle of the next download would leave its part file behind.
    leftover = folder / f"{stem(recordings[1].start, recordings[1].end)}.part"
    leftover.write_bytes(b"IMKH" + bytes(36) + b"half a recording")

    # Second life: a new state store on the same file; only the other two are fetched.
    with StateStore.open(tmp_path / "state") as state:
        second, events = run_download(download_job(), session, state, tmp_path / "out")
        assert second.ok, second.summary
        assert second.details["fetched"] == 2
        assert second.details["already_done"] == 1
    fetched_first = Path(first_events[0].attributes["path"]).name
    fetched_second = sorted(Path(e.attributes["path"]).name for e in events)
    assert fetched_first not in fetched_second
    assert sorted([fetched_first, *fetched_second]) == sorted(
        f"{stem(r.start, r.end)}.ps" for r in recordings
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted([fetched_first, *fetched_second])
    assert device.recordings.download_stats.served == 3  # each recording once


def test_a_cut_stream_is_detected_retried_and_never_left_under_a_final_name(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    two = plan(per_channel=2)  # one finished, one open
    sim = start_sim(
        SimDeviceConfig(name="once", recordings=two),
        SimDeviceConfig(name="always", recordings=two),
    )
    once, always = sim.devices
    for dev in (once, always):
        dev.rtsp.knobs.cut_after_bytes = 30_000  # of a ~240 kB stream
    sessions = {"once": login(sim, 0), "always": login(sim, 1)}
    # The playback stream (the file route has tests of its own: test_download_routes.py).
    # A 1 s stall timeout also gave up a stream the library had not started within 1 s on a
    # loaded machine (the test's other cases are quick, this one counts cuts): 3 s.
    jobs = [
        download_job("retry", devices=["once"], retries=2, route="stream", stall_timeout_s=3),
        download_job("give-up", devices=["always"], retries=1, route="stream", stall_timeout_s=3),
    ]
    events: list[Event] = []
    with StateStore.open(tmp_path / "state") as state:
        scheduler = JobScheduler(
            jobs, lambda: sessions, events.append, state, threading.Event(), tmp_path / "out"
        )
        results: dict[str, list[JobResult]] = {}
        runners = [
            threading.Thread(target=lambda n=n: results.__setitem__(n, scheduler.run_now(n)))
            for n in ("retry", "give-up")
        ]
        for runner in runners:
            runner.start()
        try:
            retry_folder = tmp_path / "out" / "retry" / "once" / "1"
            assert wait_for(lambda: once.rtsp.stats.streams_cut >= 1)
            # While the cut attempt waits out its stall timeout, only a part file exists.
            assert wait_for(lambda: any(retry_folder.glob("*.part")))
            assert not list(retry_folder.glob("*.ps"))
            once.rtsp.knobs.cut_after_bytes = None  # the device recovers
        finally:
            for runner in runners:
                runner.join(60)
        [retried] = results["retry"]
        [failed] = results["give-up"]

        assert retried.ok, retried.summary
        [done] = [p for p in retry_folder.iterdir()]
        assert done.suffix == ".ps" and done.stat().st_size > 30_000
        [rec] = [r for r in once.recording_list(1) if not r.open]
        info = state.done_info("retry", f"once/1/{stem(rec.start, rec.end)}")
        assert info is not None and info["path"] == str(done)
        assert (once.rtsp.stats.streams_cut, once.rtsp.stats.streams_started) == (1, 2), (
            retried.summary
        )

        assert not failed.ok
        assert "no data for" in failed.summary and "gave up after 2 attempts" in failed.summary
        give_up_folder = tmp_path / "out" / "give-up" / "always" / "1"
        assert not give_up_folder.exists() or not list(give_up_folder.iterdir())
        # Each attempt: the stream, then the rest from its last whole second, both cut.
        assert always.rtsp.stats.streams_cut == 4, failed.summary
        assert state.done_count("give-up") == 0
        last = state.last_run("give-up", "always")
        assert last is not None and not last["ok"]
    assert [e.attributes["path"] for e in events] == [str(done)]


def test_stopping_hikd_cancels_a_download_and_removes_its_part_file(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan()))
    device = sim.devices[0]
    device.rtsp.knobs.bytes_per_second = 20_000  # a slow device: ~12 s per recording
    session = login(sim)
    stop = threading.Event()
    with StateStore.open(tmp_path / "state") as state:
        scheduler = JobScheduler(
            [download_job(route="stream")],
            lambda: {"nvr": session},
            lambda _e: None,
            state,
            stop,
            tmp_path,
        )
        results: list[JobResult] = []
        runner = threading.Thread(target=lambda: results.extend(scheduler.run_now("rec")))
        runner.start()
        folder = tmp_path / "rec" / "nvr" / "1"
        try:
            assert wait_for(
                lambda: (
                    any(p.stat().st_size > 40 for p in folder.glob("*.part"))
                    if folder.is_dir()
                    else False
                )
            )
        finally:
            assert scheduler.shutdown(wait_s=10)
            runner.join(10)
        assert not runner.is_alive()
        assert results and results[0].details["fetched"] == 0
        assert list(folder.iterdir()) == []
        assert state.done_count("rec") == 0


def test_search_lists_4500_recordings(start_sim: Callable[..., Simulator], login: Login) -> None:
    many = RecordingPlan(per_channel=4500, segment_s=60, bytes_per_second=1, channels=[1])
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=many))
    device = sim.devices[0]
    session = login(sim)
    now = datetime.now(UTC)
    found = search_recordings(session, 1, now - timedelta(hours=80), now + timedelta(hours=1))
    expected = device.recording_list(1)
    assert len(found) == len(expected) == 4500
    assert [r.name for r in found] == [r.name for r in expected]
    assert found[0].start == expected[0].start.replace(tzinfo=UTC)
    assert found[-2].end == expected[-2].end.replace(tzinfo=UTC)
    assert found[0].size == expected[0].size
    # The library paged through the device's answers itself, 40 at a time.
    assert device.recordings.searches >= 113
    # A channel that records nothing.
    assert search_recordings(session, 2, now - timedelta(hours=1), now) == []


@pytest.mark.parametrize(
    ("head", "size", "ext"),
    [
        (b"IMKH" + bytes(4) + b"\x02\x00" + bytes(30) + b"\x00\x00\x01\xba", 5000, "ps"),
        (b"IMKH" + bytes(4) + b"\x03\x00" + bytes(30) + b"\x47", 5000, "ts"),
        (b"IMKH" + bytes(4) + b"\x01\x00" + bytes(30) + b"data", 5000, "mp4"),
        (b"\x00\x00\x01\xba" + bytes(100), 104, "ps"),
        (b"\x00\x00\x00\x20ftypisom", 5000, "mp4"),
    ],
)
def test_the_extension_says_what_the_library_wrote(head: bytes, size: int, ext: str) -> None:
    assert container_of(head, size) == ext


@pytest.mark.parametrize(
    ("head", "size", "why"),
    [
        (b"", 0, "empty"),
        (b"IMKH" + bytes(36), 40, "only the 40-byte IMKH header"),
        (b"<html>not found</html>", 22, "not a video container"),
    ],
)
def test_a_file_with_no_video_is_refused(head: bytes, size: int, why: str) -> None:
    with pytest.raises(BadFile, match=why):
        container_of(head, size)


def test_retention_by_age_then_by_size_oldest_first(tmp_path: Path) -> None:
    now = 1_700_000_000.0
    day = 86400.0

    def make(rel: str, size: int, age_days: float) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_days * day, now - age_days * day))
        return path

    ancient = make("nvr/1/a.ps", 100, 10)
    old = make("nvr/1/b.ps", 300, 5)
    middle = make("nvr/2/c.ps", 300, 3)
    new = make("nvr/2/d.ps", 300, 1)
    stale_part = make("nvr/3/e.part", 50, 2)
    fresh_part = make("nvr/1/f.part", 50, 0)

    result = apply_retention(tmp_path, keep_days=7, keep_bytes=650, now=now)
    assert not ancient.exists()  # by age
    assert not old.exists()  # by size: oldest first until 600 <= 650
    assert middle.exists() and new.exists()
    assert not stale_part.exists() and fresh_part.exists()
    assert not (tmp_path / "nvr" / "3").exists()  # emptied folders go too
    assert (result.removed_files, result.removed_bytes) == (3, 450)
    assert (result.kept_files, result.kept_bytes) == (2, 600)
    assert apply_retention(tmp_path / "missing", keep_days=1) == apply_retention(
        tmp_path / "missing"
    )


def test_pieces_of_a_download_above_1024_mb_move_into_place_together(tmp_path: Path) -> None:
    """Above 1024 MB the library goes on in <name>_1<ext>, <name>_2<ext>, ... (guide
    5.14.33). Not reachable with the simulator's streams: the files are made here."""
    from hikd.devices.capabilities.recordings import pieces, written
    from hikd.recorders.fetch import _finish

    head = b"IMKH" + bytes(4) + b"\x02\x00" + bytes(30) + b"\x00\x00\x01\xba"
    part = tmp_path / "A_B.part"
    part.write_bytes(head + bytes(1000))
    (tmp_path / "A_B_1.part").write_bytes(bytes(500))
    (tmp_path / "A_B_2.part").write_bytes(bytes(300))
    assert written(part) == len(head) + 1800
    end = datetime(2024, 5, 1, 0, 59, 59, tzinfo=UTC)
    fetched = _finish(tuple(pieces(part)), tmp_path, "A_B", end, attempt=1)
    assert [p.name for p in fetched.paths] == ["A_B.ps", "A_B_1.ps", "A_B_2.ps"]
    assert fetched.size == len(head) + 1800
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A_B.ps", "A_B_1.ps", "A_B_2.ps"]
    assert all(p.stat().st_mtime == end.timestamp() + 1 for p in fetched.paths)


def test_a_device_that_ignores_the_search_span_gets_only_the_window_fetched(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    # Issue 8 item 6: such a device listed 95 recordings from two years back for a 24 h
    # window and hikd fetched them all. Here: two finished recordings, 6 and 3 minutes
    # old, and a window of 4 minutes (2.4 of them before the open-recording margin).
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan(search_ignores_span=True)))
    device = sim.devices[0]
    session = login(sim)
    now = datetime.now(UTC)
    # What the device answers: every recording, whatever span was asked for.
    everything = device.recording_list(1)
    assert len(search_recordings(session, 1, now - timedelta(days=800), now)) == 3
    assert search_recordings(session, 1, now - timedelta(days=800), now - timedelta(days=700)) == []
    finished = [r for r in everything if not r.open]
    newer = finished[-1]
    inside = search_recordings(session, 1, now - timedelta(minutes=4), now)
    assert [r.name for r in inside] == [newer.name, everything[-1].name]

    with StateStore.open(tmp_path / "state") as state:
        job = download_job(window_h=4 / 60)
        result, _ = run_download(job, session, state, tmp_path / "out")
        assert result.ok, result.summary
        assert result.details["fetched"] == 1
    folder = tmp_path / "out" / "rec" / "nvr" / "1"
    assert [p.name for p in folder.iterdir()] == [f"{stem(newer.start, newer.end)}.ps"]
