"""Clips around alarms: which events ask for which span, and a clip fetched for real."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hikd.devices.session import DeviceSession
from hikd.events import DeviceRef, Event, State
from hikd.jobs.scheduler import JobScheduler
from hikd.listeners.alarm_state import AlarmStateTracker
from hikd.recorders.clip_requests import ClipConfig, clip_request
from hikd.recorders.clips import PENDING, ClipRecorder
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator, video
from hikd.sim.config import RecordingPlan
from hikd.state import StateStore
from tests.support import Collector, device_config, logged_in, wait_for
from tests.video import decoded_frames

NVR = DeviceRef("nvr", "SERIAL", "127.0.0.1:80")
T0 = datetime(2024, 5, 1, 10, 2, 11, tzinfo=UTC)


def alarm(
    state: State,
    time: datetime,
    type_: str = "motion",
    channel: int = 3,
    device: DeviceRef = NVR,
    **attrs: Any,
) -> Event:
    return Event(
        kind="alarm",
        type=type_,
        state=state,
        device=device,
        channel=channel,
        time=time,
        attributes=attrs,
    )


def test_an_alarm_stop_asks_for_the_span_around_the_whole_alarm() -> None:
    cfg = ClipConfig(pre_s=5, post_s=10, margin_s=7)
    tracker = AlarmStateTracker(hold_s={"default": 10})
    [start] = tracker.feed(alarm("start", T0))
    assert clip_request(start, cfg) is None  # trigger "stop": the start only opens it
    [stop] = tracker.feed(alarm("stop", T0 + timedelta(seconds=29)))
    request = clip_request(stop, cfg)
    assert request is not None
    assert request.alarm_id == start.id
    assert (request.device, request.channel, request.alarm_type) == ("nvr", 3, "motion")
    assert request.start == T0 - timedelta(seconds=5)
    assert request.end == T0 + timedelta(seconds=39)
    assert request.due == request.end.timestamp() + 7


def test_trigger_start_takes_the_alarm_to_last_after_start_s() -> None:
    cfg = ClipConfig(trigger="start", after_start_s=20, pre_s=3, post_s=2)
    start = alarm("start", T0)
    request = clip_request(start, cfg)
    assert request is not None and request.alarm_id == start.id
    assert (request.start, request.end) == (T0 - timedelta(seconds=3), T0 + timedelta(seconds=22))
    assert clip_request(alarm("stop", T0, start_id=start.id, started=T0.isoformat()), cfg) is None


def test_filters_pulses_and_the_length_limit() -> None:
    cfg = ClipConfig(types=["line_crossing"], channels=[1, 2], pre_s=1, post_s=1, max_length_s=60)
    pulse = alarm("pulse", T0, "line_crossing", 2)
    request = clip_request(pulse, cfg)
    assert request is not None and request.alarm_id == pulse.id
    assert (request.start, request.end) == (T0 - timedelta(seconds=1), T0 + timedelta(seconds=1))
    assert clip_request(alarm("pulse", T0, "motion", 2), cfg) is None  # type
    assert clip_request(alarm("pulse", T0, "line_crossing", 3), cfg) is None  # channel
    assert clip_request(pulse, cfg, devices=["other"]) is None  # device
    assert clip_request(pulse, cfg, devices=["nvr"]) is not None
    health = Event(kind="health", type="online", state="pulse", device=NVR)
    assert clip_request(health, ClipConfig()) is None
    long_stop = alarm(
        "stop", T0 + timedelta(hours=1), "line_crossing", 1, start_id="s", started=T0.isoformat()
    )
    request = clip_request(long_stop, cfg)
    assert request is not None and request.alarm_id == "s"
    assert request.end - request.start == timedelta(seconds=60)


# -- with the real library ------------------------------------------------------------------


@pytest.fixture
def nvr(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> Iterator[tuple[Simulator, DeviceSession]]:
    plan = RecordingPlan(per_channel=2, segment_s=600)
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan))
    with logged_in(sdk, device_config(sim)) as session:
        yield sim, session


def test_a_clip_is_fetched_after_an_alarm_and_published_with_its_id(
    nvr: tuple[Simulator, DeviceSession], tmp_path: Path
) -> None:
    sim, session = nvr
    device = sim.devices[0]
    published = Collector()
    job = {
        "name": "clips",
        "kind": "clips",
        "types": ["motion"],
        "pre_s": 2,
        "post_s": 1,
        "margin_s": 0,
        "stall_timeout_s": 1,
    }
    with StateStore.open(tmp_path / "state") as state:
        scheduler = JobScheduler(
            [job], lambda: {"nvr": session}, published, state, threading.Event(), tmp_path / "out"
        )
        scheduler.start()
        try:
            tracker = AlarmStateTracker(hold_s={"default": 10})
            now = datetime.now(UTC).replace(microsecond=0)
            ref = session.device
            events = tracker.feed(alarm("start", now - timedelta(seconds=6), channel=2, device=ref))
            events += tracker.feed(alarm("stop", now - timedelta(seconds=3), channel=2, device=ref))
            start, stop = events
            # Another type and a health event: not for this job.
            scheduler.on_event(alarm("pulse", now, "tamper", 2, ref))
            scheduler.on_event(Event(kind="health", type="online", state="pulse", device=ref))
            scheduler.on_event(start)
            scheduler.on_event(stop)
            assert wait_for(lambda: len(published.matching("file", "clip")) == 1, timeout=30)
        finally:
            assert scheduler.shutdown(wait_s=10)
        [clip] = published.matching("file", "clip")
        assert clip.attributes["alarm_id"] == start.id
        assert clip.attributes["alarm_type"] == "motion"
        assert clip.channel == 2 and clip.device.name == "nvr"
        [path] = clip.files
        file = Path(path)
        assert file.parent == tmp_path / "out" / "clips" / "nvr" / "2"
        assert file.suffix == ".ps" and file.read_bytes()[:4] == b"IMKH"
        assert clip.attributes["size"] == file.stat().st_size
        clip_start = now - timedelta(seconds=8)
        clip_end = now - timedelta(seconds=2)
        assert datetime.fromisoformat(clip.attributes["start"]) == clip_start
        assert datetime.fromisoformat(clip.attributes["end"]) == clip_end
        assert state.is_done("clips", start.id)
        assert state.items("clips", PENDING) == {}
        assert sorted(p.name for p in file.parent.iterdir()) == [file.name]
    # The device was asked for exactly that span of channel 2's recording, as its own file.
    [(name, first, last)] = device.recordings.download_stats.spans
    assert name.startswith("ch02_") and clip.attributes["route"] == "file"
    assert (first, last) == (clip_start.replace(tzinfo=None), clip_end.replace(tzinfo=None))
    assert decoded_frames(file) >= 0.99 * 7 * video.FPS  # 7 whole seconds of real video


def test_a_clip_waiting_for_an_offline_device_is_fetched_after_a_restart(
    nvr: tuple[Simulator, DeviceSession], tmp_path: Path
) -> None:
    _sim, session = nvr
    cfg = ClipConfig(pre_s=1, post_s=1, margin_s=0, stall_timeout_s=1, retry_later_s=3600)
    now = datetime.now(UTC).replace(microsecond=0)
    pulse = alarm("pulse", now - timedelta(seconds=3), "io", 1, session.device)
    offline: dict[str, DeviceSession] = {}
    published = Collector()

    # First life: the device is offline, the clip is postponed, hikd stops.
    with StateStore.open(tmp_path / "state") as state:
        recorder = ClipRecorder("clips", cfg, lambda: offline, published, state, tmp_path)
        recorder.start()
        try:
            recorder.on_event(pulse)
            assert wait_for(
                lambda: bool(recorder.pending()) and recorder.pending()[0].attempts == 1
            )
        finally:
            recorder.close(timeout=5)
        assert list(state.items("clips", PENDING)) == [PENDING + pulse.id]
    assert published.matching("file", "clip") == []

    # Second life: the device is back; the clip is fetched without a new alarm.
    with StateStore.open(tmp_path / "state") as state:
        recorder = ClipRecorder("clips", cfg, lambda: {"nvr": session}, published, state, tmp_path)
        recorder.start()
        try:
            assert wait_for(lambda: len(published.matching("file", "clip")) == 1, timeout=30)
        finally:
            recorder.close(timeout=5)
        [clip] = published.matching("file", "clip")
        assert clip.attributes["alarm_id"] == pulse.id
        assert Path(clip.files[0]).is_file()
        assert state.items("clips", PENDING) == {}
        assert state.is_done("clips", pulse.id)
