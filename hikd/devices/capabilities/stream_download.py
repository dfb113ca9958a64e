"""A span of a channel through the library's playback download (`GetFileByTime_V40`, or
`GetFileByName` on private-protocol logins), written by the library itself.

Over ISAPI the library plays the span over RTSP and re-muxes it into its own MPEG-PS (a
40-byte ``IMKH`` header then a program stream; sdk-over-isapi.md part 2 b). Its progress
stays 0 until the device ends the stream, and it learns of that end only from the reply
to its RTSP ``HEARTBEAT``, sent every 5 s: a finished download would sit for up to 5 s. So
hikd reads the time stamps the library writes: once the file holds the whole span (last
PTS - first PTS + one frame >= the span) and has not grown for `QUIET_S`, the download is
complete and hikd stops it. A device whose stream never covers the span (it ends early)
still ends on the library's own signal. A cut stream leaves progress at 0 for ever, so
no growth for ``stall_timeout_s`` ends the attempt (`StalledError`).

On a loaded machine the library sometimes leaves the stream's first second (its first key
frame and the frames that need it) out of the file, and ends as if it were whole (README
"Vendor-library notes"): a stream that ends on the library's signal holding less than its
span is fetched again at once (`fetch_again_if_short`), and the one that holds more kept.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hikd.devices.capabilities.recordings import (
    DownloadCancelled,
    DownloadError,
    Progress,
    StalledError,
    device_zone,
    pieces,
    user_id_of,
    written,
)
from hikd.sdk import playback
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

QUIET_S = 0.2
"""How long a file that covers its span must stay unchanged to count as complete (the
library writes each frame as its last RTP packet arrives)."""
SHORT_S = 0.5
"""A stream whose file holds this much less than its span is short (a second is missing)."""
AGAIN = 2
"""A short stream is fetched again at once this many times at most (measured under load:
3 short in 200 downloads of one span, none twice in a row)."""
_HEAD = 256 * 1024
_TAIL = 512 * 1024
_PTS_WRAP = 1 << 33
_CLOCK = 90_000


@dataclass(frozen=True, slots=True)
class StreamDownload:
    size: int
    ended_early: bool
    """hikd saw the whole span in the file and stopped the library (no heartbeat wait)."""
    covered_s: float | None = None
    """Seconds of video in the file (None: the library wrote more than one file)."""


def download_stream(
    session: DeviceSession,
    target: Path,
    channel: int,
    start: datetime,
    end: datetime,
    *,
    name: str = "",
    stall_timeout_s: float = 20.0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    poll_s: float = 0.02,
) -> StreamDownload:
    """Download `channel` (hikd's number) from `start` to `end` (inclusive) into `target`.

    With `name` (a recording's name from the search) a private-protocol session fetches
    that file by name; otherwise, and always over ISAPI, it goes by time. Raises
    `StalledError`, `DownloadError` (progress 200: network error), `DownloadCancelled`
    when `stop` is set, or `SdkError` when the download cannot start. `target` is left as
    the library wrote it: the caller deletes or renames it."""
    user_id = user_id_of(session)
    if name and session.protocol == "private":
        handle = playback.start_by_name(session.sdk, user_id, name, target)
    else:
        library_channel = session.channels.library_channel(channel)
        handle = playback.start_by_time(
            session.sdk, user_id, library_channel, start, end, device_zone(session), target
        )
    span_s = (end - start).total_seconds() + 1
    watch = _Watch(session, handle, target, span_s, stall_timeout_s, stop, progress, poll_s)
    try:
        return watch.run()
    finally:
        playback.stop_download(session.sdk, handle)


class _Watch:
    def __init__(
        self,
        session: DeviceSession,
        handle: int,
        target: Path,
        span_s: float,
        stall_limit_s: float,
        stop: threading.Event | None,
        progress: Progress | None,
        poll_s: float,
    ) -> None:
        self.session = session
        self.handle = handle
        self.target = target
        self.span_s = span_s
        self.stall_limit_s = stall_limit_s
        self.stop = stop
        self.progress = progress
        self.poll_s = poll_s
        self.first_pts: int | None = None
        self.checked_size = -1

    def run(self) -> StreamDownload:
        size = written(self.target)
        pos = 0
        moved = time.monotonic()
        while True:
            new_pos = playback.download_pos(self.session.sdk, self.handle)
            new_size = written(self.target)
            if new_size != size or new_pos != pos:
                moved = time.monotonic()
                if new_size != size and self.progress is not None:
                    self.progress(new_size)
                size, pos = new_size, new_pos
            if pos == playback.POS_DONE:
                whole = len(pieces(self.target)) == 1
                return StreamDownload(size, False, self.covered() if whole else None)
            if pos == playback.POS_NETWORK_ERROR or pos < 0:
                raise DownloadError(f"the library reported a network error (progress {pos})")
            still = time.monotonic() - moved
            if still >= QUIET_S and size != self.checked_size:
                self.checked_size = size
                if self.covers_span():
                    return StreamDownload(size, True, self.span_s)
            if still > self.stall_limit_s:
                raise StalledError(
                    f"no data for {self.stall_limit_s:g} s (the stream was cut or the device "
                    "stalled)"
                )
            if self.stop is not None and self.stop.wait(self.poll_s):
                raise DownloadCancelled("hikd is stopping")
            if self.stop is None:
                time.sleep(self.poll_s)

    def covers_span(self) -> bool:
        """The file's video runs from its first to its last time stamp for the whole span."""
        return self.covered() >= self.span_s - 0.001

    def covered(self) -> float:
        """Seconds of video from the file's first time stamp to its last."""
        if self.first_pts is None:
            with self.target.open("rb") as f:
                head = video_pts(f.read(_HEAD))
            if not head:
                return 0.0
            self.first_pts = head[0]
        with self.target.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - _TAIL))
            tail = video_pts(f.read())
        return covered_s(self.first_pts, tail)


def fetch_again_if_short(
    got: StreamDownload,
    session: DeviceSession,
    target: Path,
    channel: int,
    start: datetime,
    end: datetime,
    *,
    name: str,
    stall_timeout_s: float,
    stop: threading.Event | None,
) -> list[str]:
    """After `download_stream` into `target`: when the library ended the stream holding
    less than its span, fetch it again at once (up to `AGAIN` times, until one holds the
    span) and keep the file that holds most. The notes say so."""
    span_s = (end - start).total_seconds() + 1
    if got.covered_s is None or got.covered_s >= span_s - SHORT_S:
        return []
    note = f"the playback stream held {got.covered_s:g} of {span_s:g} s"
    best = got.covered_s
    again = target.with_name(f"{target.stem}_again{target.suffix}")
    try:
        for _ in range(AGAIN):
            try:
                other = download_stream(
                    session, again, channel, start, end,
                    name=name, stall_timeout_s=stall_timeout_s, stop=stop,
                )  # fmt: skip
            except DownloadCancelled:
                raise
            except (DownloadError, SdkError) as exc:
                return [f"{note}; fetching it again failed ({exc}): kept what it held"]
            if len(pieces(again)) == 1 and (other.covered_s or 0.0) > best:
                best = other.covered_s or 0.0
                os.replace(again, target)
            if best >= span_s - SHORT_S:
                return [f"{note}: fetched again at once, it held {best:g} s"]
        return [f"{note}, and {AGAIN} times again: kept the one that held {best:g} s"]
    finally:
        for piece in pieces(again):
            with contextlib.suppress(FileNotFoundError):
                piece.unlink()


RESUME_MAX_BYTES = 512 * 1024 * 1024
"""A stalled file larger than this is fetched again whole rather than read to resume it."""


def keep_whole_seconds(target: Path) -> int:
    """Cut a stalled download back to the whole seconds of video it holds (its packs before
    the first frame of the first second it does not hold complete); returns how many. 0
    means nothing worth keeping (the caller starts again from the beginning)."""
    if not target.is_file() or target.stat().st_size > RESUME_MAX_BYTES:
        return 0
    data = target.read_bytes()
    stamps = _pes_stamps(data)
    if not stamps:
        return 0
    first = stamps[0][1]
    seconds = int(covered_s(first, [pts for _, pts in stamps]))
    if seconds < 1:
        return 0
    limit = seconds * _CLOCK
    at = next((pos for pos, pts in stamps if (pts - first) % _PTS_WRAP >= limit), len(data))
    # The frame's pack starts at the pack header before its PES (PSM and system header in
    # between belong to it).
    pack = data.rfind(b"\x00\x00\x01\xba", 0, at + 1)
    cut = pack if pack > 0 else at
    with target.open("r+b") as f:
        f.truncate(cut)
    return seconds


def covered_s(first: int, tail: list[int]) -> float:
    """Seconds of video from PTS `first` to the last of `tail`, plus one frame period."""
    if not tail:
        return 0.0
    stamps = sorted({(t - first) % _PTS_WRAP for t in tail})
    steps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
    frame = min(steps) if steps else 0
    return (stamps[-1] + frame) / _CLOCK


def video_pts(data: bytes) -> list[int]:
    """The PTS of every video PES header (stream ids 0xE0-0xEF) in `data`, in file order."""
    return [pts for _, pts in _pes_stamps(data)]


def _pes_stamps(data: bytes) -> list[tuple[int, int]]:
    """(offset, PTS) of every video PES header with a PTS in `data`."""
    found: list[tuple[int, int]] = []
    at = data.find(b"\x00\x00\x01")
    while 0 <= at <= len(data) - 14:
        stream_id = data[at + 3]
        if 0xE0 <= stream_id <= 0xEF and data[at + 6] & 0xC0 == 0x80 and data[at + 7] & 0x80:
            p = data[at + 9 : at + 14]
            pts = ((p[0] >> 1) & 0x07) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7
            found.append((at, pts | p[4] >> 1))
        at = data.find(b"\x00\x00\x01", at + 3)
    return found
