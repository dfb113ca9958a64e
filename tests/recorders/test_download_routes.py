"""The download routes with the real library against hikd.sim's real video: the device's
own file through the pass-through (byte for byte, in pieces), the playback stream as the
fallback (ended by hikd when the file holds the span, not by the library's 5 s
heartbeat), and cut or stalled streams fetched again at once."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hikd.devices.capabilities.downloads import download
from hikd.devices.capabilities.recordings import Recording, search_recordings
from hikd.devices.capabilities.stream_download import covered_s, video_pts
from hikd.devices.session import DeviceSession
from hikd.recorders.fetch import RetryPolicy, fetch_recording, file_event
from hikd.sim import SimDeviceConfig, Simulator, video
from hikd.sim.config import RecordingPlan
from tests.recorders.test_fetch_recordings import Login, login
from tests.video import decoded_frames

__all__ = ["login"]

SEGMENT_S = 60
FRAMES = SEGMENT_S * video.FPS
"""What the simulator sends for one recording."""


def plan(**changes: Any) -> RecordingPlan:
    """Two finished 60 s recordings of real video (~1.6 MB each) on channel 1."""
    values: dict[str, Any] = {
        "per_channel": 2,
        "segment_s": SEGMENT_S,
        "gap_s": 60,
        "channels": [1],
        "still_recording": False,
    }
    values.update(changes)
    return RecordingPlan(**values)


def recordings(session: DeviceSession, sim: Simulator) -> list[Recording]:
    listed = sim.devices[0].recording_list(1)
    first, last = listed[0].start.replace(tzinfo=UTC), listed[-1].end.replace(tzinfo=UTC)
    return search_recordings(session, 1, first, last)


def test_the_device_file_comes_in_pieces_joined_byte_for_byte(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan()))
    device = sim.devices[0]
    session = login(sim)
    rec = recordings(session, sim)[0]
    target = tmp_path / "one.part"
    # Pieces of ~300 kB instead of 48 MB: the same splitting and joining, five times over.
    got = download(session, target, 1, rec.start, rec.end, recording=rec, max_piece=300_000)
    assert got.route == "file" and got.joined >= 5 and got.files == (target,)
    assert device.recordings.download_stats.served == got.joined
    assert target.read_bytes() == device.recording_bytes(rec.name)
    assert got.size == rec.size  # the device's own size, from the search
    assert decoded_frames(target) >= 0.99 * FRAMES
    # No playback stream was needed.
    assert device.rtsp.stats.streams_started == 0


def test_a_piece_over_the_librarys_64_mib_is_asked_for_in_halves(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    # 72 MB of noise in one recording: above the 64 MiB one reply may have (error 43).
    noisy = plan(per_channel=1, content="noise", bytes_per_second=1_200_000)
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=noisy))
    device = sim.devices[0]
    session = login(sim)
    [rec] = recordings(session, sim)
    target = tmp_path / "big.part"
    # Sized as one piece (a device whose size is wrong, or a bitrate that is not even).
    got = download(session, target, 1, rec.start, rec.end, recording=rec, max_piece=1 << 30)
    assert got.route == "file" and got.joined == 2
    first, last = rec.start.replace(tzinfo=None), rec.end.replace(tzinfo=None)
    middle = first + timedelta(seconds=29)
    spans = [span[1:] for span in device.recordings.download_stats.spans]
    # The whole, refused by the library, then its halves. (After an error 43 the library
    # sends its next request twice: once on the connection it left unread, then anew.)
    assert spans[0] == (first, last)
    assert spans[-2:] == [(first, middle), (middle + timedelta(seconds=1), last)]
    # Noise is no container hikd can join: one file per piece, together the recording.
    assert b"".join(p.read_bytes() for p in got.files) == device.recording_bytes(rec.name)


def test_a_device_without_the_file_route_gets_the_stream_ended_without_its_heartbeat(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan()))
    device = sim.devices[0]
    device.unavailable.add("/ISAPI/ContentMgmt/download")  # older firmware: 404
    # The device never tells the library that the stream ended (no "Connection: close"):
    # only hikd's reading of the file's time stamps can end these downloads.
    device.rtsp.knobs.end_signal = False
    session = login(sim)
    policy = RetryPolicy(stall_timeout_s=60, retries=0)
    fetched = [
        fetch_recording(session, tmp_path, rec, policy, threading.Event())
        for rec in recordings(session, sim)
    ]
    assert [f.route for f in fetched] == ["stream", "stream"]
    assert "no /ISAPI/ContentMgmt/download" in fetched[0].notes[0]
    assert device.count("/ISAPI/ContentMgmt/download") == 1  # asked once, then remembered
    assert device.rtsp.stats.streams_completed == 2
    for one in fetched:
        assert one.path.suffix == ".ps" and one.attempts == 1
        assert one.path.read_bytes()[:4] == b"IMKH"  # the library's own re-mux
        assert decoded_frames(one.path) >= 0.99 * FRAMES


def test_a_stalled_piece_is_fetched_again_at_once_and_the_event_says_so(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan()))
    device = sim.devices[0]
    knobs = device.recordings.download_knobs
    knobs.cut_after_bytes, knobs.cuts_left, knobs.hold_after_cut_s = 100_000, 1, 30
    session = login(sim)
    rec = recordings(session, sim)[0]
    # A backoff far longer than the test: only a retry at once can finish it in time.
    policy = RetryPolicy(stall_timeout_s=3, retries=3, backoff_s=600)
    fetched = fetch_recording(session, tmp_path, rec, policy, threading.Event())
    assert fetched.path.read_bytes() == device.recording_bytes(rec.name)
    assert device.recordings.download_stats.cut == 1
    [note] = fetched.notes
    assert "stalled" in note and "fetched again at once" in note
    event = file_event(session, "recording", fetched, 1, rec.start, rec.end)
    assert event.attributes["route"] == "file" and event.attributes["notes"] == [note]


def test_a_slow_device_is_not_taken_for_a_stalled_one(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan()))
    device = sim.devices[0]
    # ~2.7 s for the recording's 1.6 MB: longer than the stall timeout. The library's
    # receive timeout bounds the whole reply, so the piece needs more than that.
    device.recordings.download_knobs.bytes_per_second = 600_000
    session = login(sim)
    rec = recordings(session, sim)[0]
    policy = RetryPolicy(stall_timeout_s=1, retries=0)
    fetched = fetch_recording(session, tmp_path, rec, policy, threading.Event())
    assert fetched.notes == () and fetched.joined == 1
    assert fetched.path.read_bytes() == device.recording_bytes(rec.name)


def test_a_cut_stream_goes_on_at_once_from_the_last_whole_second(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan()))
    device = sim.devices[0]
    device.unavailable.add("/ISAPI/ContentMgmt/download")
    device.rtsp.knobs.cut_after_bytes = 800_000  # about half of the recording
    device.rtsp.knobs.cuts_left = 1
    session = login(sim)
    rec = recordings(session, sim)[0]
    # A backoff far longer than the test: only going on at once can finish it in time.
    # (5 s: the library may take a while to start the second stream on a busy machine.)
    policy = RetryPolicy(stall_timeout_s=5, retries=3, backoff_s=600)
    fetched = fetch_recording(session, tmp_path, rec, policy, threading.Event())
    assert device.rtsp.stats.streams_cut == 1 and device.rtsp.stats.streams_started == 2
    assert fetched.attempts == 1 and fetched.route == "stream"
    note = fetched.notes[-1]  # after "the device has no /ISAPI/ContentMgmt/download"
    match = re.search(r"no data for 5 s .*: kept the first (\d+) s, fetched the rest from", note)
    assert match, note
    kept = int(match[1])
    assert 10 <= kept < SEGMENT_S
    # The second stream asked for the rest only, from the first second not kept.
    described = [url for method, url in device.rtsp.stats.requests if method == "DESCRIBE"]
    resumed = parse_qs(urlsplit(described[-1]).query)["starttime"][0]
    assert resumed == f"{rec.start + timedelta(seconds=kept):%Y%m%dT%H%M%S}Z"
    # One file, every frame once: the kept part and the rest join without a gap or overlap.
    assert fetched.path.read_bytes()[:4] == b"IMKH" and not fetched.more
    assert 0.99 * FRAMES <= decoded_frames(fetched.path) <= FRAMES


def test_the_time_stamps_of_a_program_stream_tell_what_it_covers() -> None:
    start = datetime(2024, 5, 1, 0, 0, 0)
    ps = video.ps_file(start, start.replace(second=9))
    stamps = video_pts(ps)
    assert len(stamps) == 10 * video.FPS
    assert covered_s(stamps[0], stamps[-25:]) == 10.0
    assert covered_s(stamps[0], stamps[:25]) == 1.0


class _Mp4Device:
    """A session whose device answers every piece with an MP4 file. A stand-in, because
    hikd.sim serves Hikvision's IMKH + PS only (as the recorders it imitates do)."""

    name = "mp4"

    class channels:
        @staticmethod
        def library_channel(channel: int) -> int:
            return channel

    class config:
        host = "127.0.0.1"

    def __init__(self) -> None:
        self.asked: list[bytes] = []

    def isapi(self, method: str, url: str, body: bytes, timeout_ms: int, buffer: int) -> Any:
        self.asked.append(body)
        # 10 kB per second asked for, like the search's 600 kB for 60 s.
        first, last = (
            datetime.strptime(t.decode(), "%Y%m%dT%H%M%S")
            for t in re.findall(rb"time=(\d{8}T\d{6})Z", body)
        )
        seconds = int((last - first).total_seconds()) + 1
        reply = b"\x00\x00\x00\x20ftypisom" + bytes(seconds * 10_000 - 12)
        return type("Reply", (), {"body": reply})()


def test_pieces_of_a_container_that_does_not_join_stay_one_file_each(tmp_path: Path) -> None:
    from hikd.devices.capabilities.file_download import download_files

    start = datetime(2024, 5, 1, 0, 0, 0, tzinfo=UTC)
    rec = Recording(1, start, start + timedelta(seconds=59), 600_000, "ch01_00000000001")
    device = _Mp4Device()
    got = download_files(
        device,  # type: ignore[arg-type]
        tmp_path / "clip.part",
        [(rec, rec.start, rec.end)],
        stall_timeout_s=5,
        max_piece=200_000,
    )
    assert got.pieces == 3 and len(device.asked) == 3
    assert [p.name for p in got.files] == ["clip.part", "clip_1.part", "clip_2.part"]
    assert all(p.read_bytes()[4:8] == b"ftyp" for p in got.files)
    assert b"starttime=20240501T000020Z&amp;endtime=20240501T000039Z" in device.asked[1]
