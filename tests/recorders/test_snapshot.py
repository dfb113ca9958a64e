"""Snapshots with the real vendor library against hikd.sim over ISAPI.

The library's own JPEG capture fails over ISAPI (189), so on ISAPI sessions hikd fetches
``/ISAPI/Streaming/channels/<ch>01/picture`` through the pass-through; the file must be
exactly what the device served.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hikd.devices.capabilities.snapshot import snapshot
from hikd.devices.session import DeviceSession
from hikd.events import DeviceRef, Event
from hikd.jobs.base import EventContext
from hikd.recorders.snapshot import SnapshotConfig, SnapshotJob, SnapshotRecorder
from hikd.sdk.errors import NotFoundError
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.state import StateStore
from tests.standin.jobs import Events, job_context
from tests.support import device_config, logged_in, wait_for

pytest_plugins = ["tests.standin.fixtures"]


@pytest.fixture
def nvr(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> Iterator[tuple[Simulator, DeviceSession]]:
    sim = start_sim(SimDeviceConfig(name="nvr", ip_channels=3))
    with logged_in(sdk, device_config(sim), Events()) as session:
        yield sim, session


def test_snapshot_is_the_devices_jpeg_byte_for_byte(nvr: tuple[Simulator, DeviceSession]) -> None:
    sim, session = nvr
    assert session.protocol == "isapi"
    for channel in (1, 3):
        picture = snapshot(session, channel)
        assert picture == sim.devices[0].snapshot(channel)
        assert picture.startswith(b"\xff\xd8")
    assert sim.devices[0].count("/ISAPI/Streaming/channels/101/picture") == 1


def test_snapshot_of_a_channel_the_device_lacks_fails_clearly(
    nvr: tuple[Simulator, DeviceSession],
) -> None:
    _sim, session = nvr
    with pytest.raises(NotFoundError, match="no such channel"):
        snapshot(session, 9)


def test_scheduled_snapshots_write_one_file_per_channel(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore, tmp_path: Path
) -> None:
    sim, session = nvr
    out = tmp_path / "snapshots"
    ctx, events = job_context(session, state_store, out, job="pictures")
    result = SnapshotJob(SnapshotConfig(channels=[1, 2, 9])).run(ctx)
    assert not result.ok  # channel 9 does not exist
    assert "1 failed" in result.summary
    files = sorted(out.rglob("*.jpg"))
    assert [f.name.rsplit("-", 1)[1] for f in files] == ["ch1.jpg", "ch2.jpg"]
    assert all(f.parent.parent == out / "nvr" for f in files)
    for f in files:
        channel = int(f.stem.rsplit("ch", 1)[1])
        assert f.read_bytes() == sim.devices[0].snapshot(channel)
    snaps = events.of_type("snapshot")
    assert [(e.kind, e.channel) for e in snaps] == [("file", 1), ("file", 2)]
    assert snaps[0].files == (str(files[0]),)
    assert snaps[0].attributes["size"] == files[0].stat().st_size
    assert not list(out.rglob("*.part"))


def test_every_channel_by_default(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore, tmp_path: Path
) -> None:
    _sim, session = nvr
    ctx, events = job_context(session, state_store, tmp_path)
    result = SnapshotJob(SnapshotConfig()).run(ctx)
    assert result.ok, result.summary
    assert [e.channel for e in events] == [1, 2, 3]


def _alarm(state: str, channel: int | None = 2, type_: str = "motion") -> Event:
    return Event(
        kind="alarm",
        type=type_,
        state=state,  # type: ignore[arg-type]
        device=DeviceRef("nvr"),
        channel=channel,
        time=datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC),
    )


def test_an_alarm_start_gets_a_snapshot_of_its_channel(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore, tmp_path: Path
) -> None:
    sim, session = nvr
    published = Events()
    # The scheduler's side of an event-driven kind: start, on_event, close.
    job = SnapshotJob(SnapshotConfig(on_alarm=True, alarm_types=["motion"]))
    stop = threading.Event()
    job.start(
        EventContext(
            "alarm-pictures", lambda: {"nvr": session}, published, state_store, tmp_path, None, stop
        )
    )
    recorder = job.recorder
    assert recorder is not None
    try:
        start = _alarm("start")
        job.on_event(_alarm("stop"))
        job.on_event(_alarm("start", type_="tamper"))  # not a configured type
        job.on_event(Event(kind="health", type="online", state="pulse", device=start.device))
        job.on_event(start)
        assert wait_for(lambda: len(published) == 1)
    finally:
        job.close(5.0)
    (event,) = published
    assert event.kind == "file" and event.type == "snapshot" and event.channel == 2
    assert event.attributes["alarm_id"] == start.id
    path = Path(event.files[0])
    assert path == tmp_path / "nvr" / "2024-05-01" / f"{start.id}-ch2.jpg"
    assert path.read_bytes() == sim.devices[0].snapshot(2)
    assert recorder.taken == 1 and recorder.failed == 0


def test_without_on_alarm_there_is_no_recorder(state_store: StateStore, tmp_path: Path) -> None:
    job = SnapshotJob(SnapshotConfig())
    stop = threading.Event()
    job.start(EventContext("j", dict, Events(), state_store, tmp_path, None, stop))
    assert job.recorder is None
    job.on_event(_alarm("start"))  # ignored
    job.close(1.0)


def test_on_event_returns_at_once_and_a_full_queue_drops_the_oldest(tmp_path: Path) -> None:
    published = Events()
    # Not started: nothing drains the queue.
    recorder = SnapshotRecorder(lambda: {}, published, tmp_path, queue_size=2)
    for _ in range(5):
        recorder.on_event(_alarm("start"))
    assert recorder.dropped == 3
    assert published == []
