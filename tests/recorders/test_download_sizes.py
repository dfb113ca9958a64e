"""The device's file when its size disagrees with the search's: rounded either way, zero or
missing, stale for a recording still being written, and a device that stops early but ends
its reply as if whole. The real library against hikd.sim's real video (its search_size
variants); every byte the device sends for the span is kept, the file event says what the
search said and what came, and a file that stopped early is still a failed download."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from hikd.devices.capabilities.downloads import download
from hikd.devices.capabilities.recordings import DownloadError, Recording, search_recordings
from hikd.recorders.fetch import FetchedFile, FetchFailed, RetryPolicy, fetch_recording
from hikd.sim import SimDevice, SimDeviceConfig, Simulator, video
from tests.recorders.test_download_routes import FRAMES, plan, recordings
from tests.recorders.test_fetch_recordings import Login, login
from tests.video import decoded_frames

__all__ = ["login"]

ONCE = RetryPolicy(stall_timeout_s=20, retries=0)


def fetch_first(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path, **variant: Any
) -> tuple[SimDevice, Recording, FetchedFile]:
    """The first recording of a device with the plan's `variant`, fetched once."""
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan(**variant)))
    session = login(sim)
    rec = recordings(session, sim)[0]
    return sim.devices[0], rec, fetch_recording(session, tmp_path, rec, ONCE, threading.Event())


def test_a_search_that_rounds_down_gets_the_whole_file_and_says_so(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    device, rec, fetched = fetch_first(start_sim, login, tmp_path, search_size="under")
    whole = device.recording_bytes(rec.name)
    assert rec.size == 1 << 20 < len(whole)  # the search said 1 MiB of ~1.6 MB
    # Every byte the device has, though the search said less (a device that takes size=
    # as the bytes to send would have cut it short at 1 MiB).
    assert fetched.path.read_bytes() == whole
    assert decoded_frames(fetched.path) >= 0.99 * FRAMES
    [note] = fetched.notes
    assert f"the device's search gave the recording as {rec.size} bytes" in note
    assert f"it sent {len(whole)}" in note


def test_a_search_that_rounds_down_gets_every_piece_in_full(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan(search_size="under")))
    device = sim.devices[0]
    session = login(sim)
    rec = recordings(session, sim)[0]
    target = tmp_path / "one.part"
    # Pieces sized from a size a third too small: each reply is bigger than hikd expected.
    got = download(session, target, 1, rec.start, rec.end, recording=rec, max_piece=300_000)
    assert got.joined >= 4
    assert target.read_bytes() == device.recording_bytes(rec.name)
    assert got.size > rec.size and len(got.notes) == 1


def test_a_search_that_rounds_up_gets_what_the_device_has(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    device, rec, fetched = fetch_first(start_sim, login, tmp_path, search_size="over")
    whole = device.recording_bytes(rec.name)
    assert rec.size == 2 << 20 > len(whole)
    # Fewer bytes than the search said, but the video covers the recording: not a cut.
    assert fetched.path.read_bytes() == whole and fetched.attempts == 1
    [note] = fetched.notes
    assert f"the device's search gave the recording as {rec.size} bytes" in note
    assert f"it sent {len(whole)}" in note and "covers the whole span" in note


def test_a_search_with_size_zero_gets_the_whole_file_and_says_so(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    device, rec, fetched = fetch_first(start_sim, login, tmp_path, search_size="zero")
    whole = device.recording_bytes(rec.name)
    assert rec.size == 0
    assert fetched.path.read_bytes() == whole
    [note] = fetched.notes
    assert "the device's search gave no size for the recording" in note
    assert f"it sent {len(whole)} bytes" in note


def test_a_search_without_size_gets_the_playback_stream_and_says_why(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    # Measured: without size= after it, the library leaves the recording's name empty
    # (it reads name= only up to a following "&"), so the device's file cannot be named.
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan(search_size="missing")))
    device = sim.devices[0]
    session = login(sim)
    rec = recordings(session, sim)[0]
    assert rec.size == 0 and rec.name == ""
    # The stream is slower than the file: room for a loaded machine (a stall would add a note).
    policy = RetryPolicy(stall_timeout_s=60, retries=0)
    fetched = fetch_recording(session, tmp_path, rec, policy, threading.Event())
    assert fetched.route == "stream"
    assert decoded_frames(fetched.path) >= 0.99 * FRAMES
    note = fetched.notes[0]
    assert "gave a recording no name" in note and note.endswith(": playback stream")
    # Only this download took the stream: the file route is not given up for the device.
    assert device.count("/ISAPI/ContentMgmt/download") == 0


def test_a_playback_stream_without_its_first_second_is_fetched_again_at_once(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    # The vendor library, under load, wrote the stream without its first second and ended as
    # if whole (README "Vendor-library notes"): the test above then failed on its frames.
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan(search_size="missing")))
    device = sim.devices[0]
    device.rtsp.knobs.short_streams = 1
    session = login(sim)
    rec = recordings(session, sim)[0]
    policy = RetryPolicy(stall_timeout_s=60, retries=0)
    fetched = fetch_recording(session, tmp_path, rec, policy, threading.Event())
    assert decoded_frames(fetched.path) >= 0.99 * FRAMES
    assert device.rtsp.stats.streams_started == 2
    again_at_once = "the playback stream held 59 of 60 s: fetched again at once, it held 60 s"
    assert fetched.notes[1] == again_at_once
    # Short every time (a device with less video than its search said): kept, and said.
    device.rtsp.knobs.short_streams = 3
    again = fetch_recording(session, tmp_path / "again", rec, policy, threading.Event())
    assert decoded_frames(again.path) < FRAMES - video.FPS + 1
    kept = "the playback stream held 59 of 60 s, and 2 times again: kept the one that held 59 s"
    assert again.notes[1] == kept
    assert device.rtsp.stats.streams_started == 5


def test_without_a_size_the_pieces_are_sized_from_what_arrived(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    # 100 kB/s of noise for 60 s, no size in the search: the first piece is a short probe,
    # the rest in pieces of what arrived per second, none over the aim of 300 kB.
    noisy = plan(per_channel=1, content="noise", bytes_per_second=100_000, search_size="zero")
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=noisy))
    device = sim.devices[0]
    session = login(sim)
    [rec] = recordings(session, sim)
    target = tmp_path / "noise.part"
    got = download(session, target, 1, rec.start, rec.end, recording=rec, max_piece=300_000)
    spans = [
        (last - first).total_seconds() + 1
        for _n, first, last in device.recordings.download_stats.spans
    ]
    assert spans[1:] and all(seconds <= 3 for seconds in spans[1:])
    assert sum(spans) == rec.duration_s  # no piece asked twice, none left out
    assert b"".join(p.read_bytes() for p in got.files) == device.recording_bytes(rec.name)


def test_a_recording_still_being_written_gets_every_second_of_its_span(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    # Open for 60 s when the device starts; its search gives the size of 20 s earlier.
    growing = plan(per_channel=1, still_recording=True, open_since_s=60, open_size_lag_s=20)
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=growing))
    device = sim.devices[0]
    session = login(sim)
    [rec] = search_recordings(session, 1, rec_start(device), rec_start(device) + timedelta(hours=1))
    fetched = fetch_recording(session, tmp_path, rec, ONCE, threading.Event())
    [open_rec] = device.recording_list(1)
    span = (rec.start.replace(tzinfo=None), rec.end.replace(tzinfo=None))
    expected = device.recordings.content(open_rec, None, span)
    assert len(expected) > rec.size  # the search's size is 20 s behind its end
    assert fetched.path.read_bytes() == expected
    [note] = fetched.notes
    assert f"the device's search gave the recording as {rec.size} bytes" in note


def rec_start(device: SimDevice) -> Any:
    return device.recordings.open_start.replace(tzinfo=UTC)


@pytest.mark.parametrize("variant", ["exact", "zero", "over"])
def test_a_device_that_stops_early_is_still_a_failed_download(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path, variant: str
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan(search_size=variant)))
    device = sim.devices[0]
    knobs = device.recordings.download_knobs
    # Every reply ends after ~half the recording, as a whole reply of fewer bytes.
    knobs.cut_after_bytes, knobs.cut_cleanly = 800_000, True
    session = login(sim)
    rec = recordings(session, sim)[0]
    with pytest.raises(FetchFailed, match=r"ended \d+ s early"):
        fetch_recording(session, tmp_path, rec, ONCE, threading.Event())
    assert device.recordings.download_stats.cut == 2  # asked again at once, then given up
    assert not list(tmp_path.rglob("*.ps"))


def test_a_device_that_stops_early_once_is_asked_again_at_once(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan(search_size="zero")))
    device = sim.devices[0]
    knobs = device.recordings.download_knobs
    knobs.cut_after_bytes, knobs.cut_cleanly, knobs.cuts_left = 800_000, True, 1
    session = login(sim)
    rec = recordings(session, sim)[0]
    fetched = fetch_recording(session, tmp_path, rec, ONCE, threading.Event())
    assert fetched.path.read_bytes() == device.recording_bytes(rec.name)
    assert any("ended" in note and "fetched again at once" in note for note in fetched.notes)


def test_a_device_that_ignores_the_seconds_asked_for_gets_its_file_once(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    # Every reply is the whole recording: pieces joined would repeat it five times.
    by_name = plan(download_ignores_span=True)
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=by_name))
    device = sim.devices[0]
    session = login(sim)
    rec = recordings(session, sim)[0]
    target = tmp_path / "one.part"
    got = download(session, target, 1, rec.start, rec.end, recording=rec, max_piece=300_000)
    # One piece kept (asked for again only with a bigger buffer: the reply was bigger than
    # the piece's share of the search's size).
    assert got.joined == 1
    assert target.read_bytes() == device.recording_bytes(rec.name)
    [note] = got.notes
    assert "it ignores a playbackURI's times" in note
    # A clip from it: the device's file, whole, once (it holds the clip's seconds).
    clip = tmp_path / "clip.part"
    middle = rec.start + timedelta(seconds=10), rec.start + timedelta(seconds=29)
    got = download(session, clip, 1, *middle, recording=rec)
    assert clip.read_bytes() == device.recording_bytes(rec.name) and len(got.notes) == 1


def test_a_device_whose_whole_file_is_over_64_mib_for_any_piece_is_given_up_soon(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    # 72 MB of noise, sent whole for every piece: no reply fits the library's 64 MiB.
    big = plan(
        per_channel=1, content="noise", bytes_per_second=1_200_000, download_ignores_span=True
    )
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=big))
    device = sim.devices[0]
    session = login(sim)
    [rec] = recordings(session, sim)
    target = tmp_path / "big.part"
    # On route "file" the attempt fails; on "auto" it takes the stream (as for a recording
    # without a name, above), which for 72 MB takes long.
    with pytest.raises(DownloadError, match="with more than the 64 MiB a reply may have"):
        download(
            session, target, 1, rec.start, rec.end, recording=rec, route="file", max_piece=5_000_000
        )
    # A piece of 4 s and its first half refused, each though due at under 5 MB.
    assert device.recordings.download_stats.served >= 2 and not target.exists()
