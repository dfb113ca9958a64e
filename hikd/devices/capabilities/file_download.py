"""The device's own file of a recording: ``GET /ISAPI/ContentMgmt/download`` through the
library's pass-through (`NET_DVR_STDXMLConfig`), byte for byte.

Facts (sdk-over-isapi.md part 2 b and g, and measured for issue 15): the reply comes back
unchanged at hundreds of MB/s, but whole and in memory, and a reply above 64 MiB fails
with error 43. So a recording is fetched in pieces cut on whole seconds of its span
(``starttime``/``endtime`` of its playbackURI), each sized from the recording's bytes per
second to stay under `MAX_PIECE`; a piece still too big is halved (`TooBig` when halves due
well under the limit are refused too: the caller streams instead). A cut reply fails at
once (error 73) and is asked for again at once. The library's receive timeout (error 10)
bounds the whole reply, not a pause in it, so a piece gets ``stall_timeout_s`` plus its
size at `SLOWEST_RATE`; one that does not make it is asked for again at once, in halves
(a slow link gets smaller replies, a stalled device fails again). A device without the
endpoint answers 404 (error 23): `NotSupportedError`, and the caller takes the playback
stream instead.

The search's size of a recording is only a hint (README, "when sizes disagree"): devices
round it either way, give 0, or give the size of a recording still being written as it was
some time ago, and the library wraps sizes of 4 GiB and more. So a request names the
recording and its seconds, never its size (a device may take ``size=`` as the bytes to
send), pieces after the first are sized from the bytes that arrived per second, and a
piece is short when its video (the PS time stamps) ends before the seconds asked for, not
when its bytes differ from a share of the search's size.

Pieces join where the container allows: Hikvision's file is a 40-byte ``IMKH`` header then
MPEG-PS (or TS), which concatenate once the later pieces' headers are dropped; any other
container (MP4) stays one file per piece.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal
from xml.sax.saxutils import escape

from hikd.devices.capabilities.recordings import DownloadCancelled, pieces_name
from hikd.devices.capabilities.stream_download import covered_s, video_pts
from hikd.logs import get_logger
from hikd.sdk.errors import BufferTooSmallError, NetworkError
from hikd.sdk.passthrough import MAX_REPLY

if TYPE_CHECKING:
    from hikd.devices.capabilities.recordings import Recording
    from hikd.devices.session import DeviceSession

_log = get_logger(__name__)

DOWNLOAD_URL = "/ISAPI/ContentMgmt/download"
MAX_PIECE = 16 * 1024 * 1024
"""Aim of a piece's size: well under the library's 64 MiB per reply (room for a bitrate
that is not even along the recording), and small enough that a stalled piece is found
soon: the library's timeout covers the whole reply."""
SLOWEST_RATE = 512 * 1024
"""Bytes per second a device may be as slow as without its pieces counting as stalled."""
_RECV_TIMEOUT = 10
"""NET_DVR_NETWORK_RECV_TIMEOUT: the reply did not come in time (a cut one is 73)."""
PROBE_S = 10
"""The first piece of a recording the search gave no size for: seconds enough to learn its
bytes per second, few enough for any stream to fit a reply (16 Mbit/s: 20 MB)."""
SHORT_BY_S = 2.0
"""A piece whose video ends more than this (or a tenth of the piece) before the seconds
asked for stopped early; one with this much more than asked and the whole span's video is
a device that ignores the seconds asked for (`_fits`)."""
IMKH = b"IMKH"
IMKH_SIZE = 40
_SCAN = 1 << 20


class PieceFailed(Exception):
    """A piece failed twice (cut or stalled, then again at once); the message says how."""


class TooBig(Exception):
    """The device's replies do not fit the library's 64 MiB, however small the piece asked
    for: the playback stream instead (the message says what happened)."""


@dataclass
class FileDownload:
    """What `download_files` wrote and what happened on the way."""

    size: int = 0
    pieces: int = 0
    files: list[Path] = field(default_factory=list)
    """The target, then one more file per piece where the container does not join."""
    searched: int | None = None
    """The search's size of the recording (0: none), where the download is one whole
    recording."""
    covered: bool = True
    """Every piece's video was seen to reach the end of its seconds (False: a container
    whose time stamps hikd does not read)."""
    retried: list[str] = field(default_factory=list)
    """One line per piece that was cut or stalled and fetched again at once."""
    notes: list[str] = field(default_factory=list)
    """What else the device did that the file event should say."""


def playback_uri(session: DeviceSession, rec: Recording, start: datetime, end: datetime) -> str:
    """The recording's playbackURI as the device's search gives it, cut to [start, end]
    (device wall clock with the literal "Z" Hikvision writes; trackID = the library's
    channel x 100 + 1, part 2 a). Never ``size=``: a device that takes it as the bytes to
    send would cut the file at a search's size that was rounded down or stale."""
    track = session.channels.library_channel(rec.channel) * 100 + 1
    query = f"starttime={start:%Y%m%dT%H%M%S}Z&endtime={end:%Y%m%dT%H%M%S}Z&name={rec.name}"
    return f"rtsp://{session.config.host}/Streaming/tracks/{track}/?{query}"


def request_body(uri: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<downloadRequest version="1.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\n'
        f"<playbackURI>{escape(uri)}</playbackURI>\n</downloadRequest>\n"
    ).encode()


class _Rate:
    """Bytes per second of one recording: the search's until pieces have arrived, then
    what arrived (the search's size may be rounded, stale or missing)."""

    def __init__(self, rec: Recording) -> None:
        self.per_second = rec.size / rec.duration_s if rec.size > 0 else 0.0
        self.bytes = 0
        self.seconds = 0.0

    def add(self, size: int, seconds: float) -> None:
        self.bytes += size
        self.seconds += seconds
        self.per_second = self.bytes / self.seconds

    def piece_s(self, max_piece: int) -> int:
        """Seconds of the next piece, to be about `max_piece` bytes."""
        if self.per_second <= 0:
            return PROBE_S
        return max(1, int(max_piece // self.per_second))

    def expected(self, seconds: float) -> float:
        """Bytes expected for `seconds`; the most a reply may have when nothing is known."""
        return self.per_second * seconds if self.per_second > 0 else float(MAX_REPLY)


def download_files(
    session: DeviceSession,
    target: Path,
    parts: list[tuple[Recording, datetime, datetime]],
    *,
    stall_timeout_s: float,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
    max_piece: int = MAX_PIECE,
) -> FileDownload:
    """Fetch each (recording, start, end) of `parts`, in order, into `target` (and, for a
    container that does not join, ``<target stem>_<n><suffix>``). Raises
    `NotSupportedError` when the device has no such endpoint, `PieceFailed` when a piece
    failed twice, `DownloadCancelled` when `stop` is set, `SdkError` otherwise."""
    result = FileDownload()
    with _Writer(target, result, progress) as writer:
        for rec, start, end in parts:
            _fetch_part(session, writer, rec, start, end, stall_timeout_s, stop, max_piece)
    if len(parts) == 1:
        rec, start, end = parts[0]
        if (start, end) == (rec.start, rec.end):
            result.searched = rec.size
    return result


def _fetch_part(
    session: DeviceSession,
    writer: _Writer,
    rec: Recording,
    start: datetime,
    end: datetime,
    stall_timeout_s: float,
    stop: threading.Event | None,
    max_piece: int,
) -> None:
    """[start, end] of `rec` in pieces cut from the rate so far, one after the other."""
    rate = _Rate(rec)
    span_s = (end - start).total_seconds() + 1
    at = start  # the first second not yet asked for
    refused = 0  # pieces refused in a row though due well under 64 MiB
    # (first second, last second, failures so far) of pieces to ask for again
    queue: list[tuple[datetime, datetime, int]] = []
    while queue or at <= end:
        if stop is not None and stop.is_set():
            raise DownloadCancelled("hikd is stopping")
        if not queue:
            last = min(end, at + timedelta(seconds=rate.piece_s(max_piece) - 1))
            queue.append((at, last, 0))
            at = last + timedelta(seconds=1)
        first, last, failed = queue.pop(0)
        seconds = (last - first).total_seconds() + 1
        try:
            data = _piece(session, rec, first, last, rate.expected(seconds), stall_timeout_s)
            covered = _covered_s(data)
            fits = _fits(covered, seconds, span_s)
            if covered is not None and fits == "short":
                raise _StoppedEarly(f"ended {seconds - covered:.0f} s early")
        except BufferTooSmallError:
            # Above the 64 MiB a reply may have: ask for each half instead; unless halves
            # of a piece due well under it are refused too: a device that sends more than
            # the seconds asked for (its whole file, whatever they are) can only stream.
            small = rate.expected(seconds) * 4 < MAX_REPLY
            refused = refused + 1 if small else 0
            if first == last or refused >= 2:
                raise TooBig(
                    f"the device answered {first:%H:%M:%S}-{last:%H:%M:%S} with more than the "
                    "64 MiB a reply may have"
                ) from None
            queue[:0] = [(a, b, failed) for a, b in _halves(first, last)]
            continue
        except (NetworkError, _StoppedEarly) as exc:
            stalled = isinstance(exc, NetworkError) and exc.code == _RECV_TIMEOUT
            what = "stalled" if stalled else "was cut"
            if isinstance(exc, _StoppedEarly):
                what = str(exc)
            line = f"{first:%H:%M:%S}-{last:%H:%M:%S} {what}"
            if isinstance(exc, NetworkError):
                line += f" ({exc})"
            if failed:
                raise PieceFailed(f"the piece {line}, and again when asked at once") from None
            _log.info("download_piece_retried", device=session.name, piece=line)
            writer.result.retried.append(f"{line}; fetched again at once")
            # A piece that took too long may come from a slow link: in halves, each has
            # more time for its bytes. A cut one is asked for as it was.
            again = _halves(first, last) if stalled else []
            queue[:0] = [(a, b, 1) for a, b in again or [(first, last)]]
            continue
        if covered is None:
            writer.result.covered = False
        if covered is not None and fits == "whole":
            # The whole span's video for a piece of it: a device that sends the recording
            # it names whatever the seconds (some download by name only). Joining its
            # replies would repeat the recording: its first reply is the file of the span.
            sent = f"{covered:.0f} s of video for the {seconds:.0f} s asked"
            if (first, rate.bytes) != (start, 0):
                raise PieceFailed(f"the device sent {sent} from {first:%H:%M:%S}")
            writer.add(data)
            writer.result.notes.append(
                f"the device sent {sent} (it ignores a playbackURI's times): its file kept "
                f"whole for {start:%H:%M:%S}-{end:%H:%M:%S}"
            )
            return
        writer.add(data)
        rate.add(len(data), seconds)
        refused = 0


def _covered_s(data: bytes) -> float | None:
    """Seconds of video in a reply, from its time stamps; None when they cannot be read (a
    container other than MPEG-PS, or none in it). Only its first and last MiB are read
    (the whole of 16 MB took 0.1 s): a PES header's start code cannot occur inside H.264
    or H.265 data, so reading from the middle of a pack finds no false one."""
    body = data[IMKH_SIZE:] if data[:4] == IMKH else data
    if body[:4] != b"\x00\x00\x01\xba":
        return None
    first = video_pts(body[:_SCAN])[:1]
    tail = video_pts(body[-_SCAN:]) if len(body) > _SCAN else video_pts(body)
    if len(tail) < 2:
        tail = video_pts(body)  # frames over a MiB each: read the whole reply
    return covered_s(first[0], tail) if first and tail else None


def _fits(covered: float | None, seconds: float, span_s: float) -> Literal["short", "whole", "ok"]:
    """How a reply of `covered` seconds of video fits the `seconds` asked for, of a span of
    `span_s`: ``short`` (it stopped early), ``whole`` (the whole span for a piece of it),
    else ``ok`` (a little more than asked is a device that starts on the key frame
    before: kept, as it joins; time stamps are per frame, so a little less is too)."""
    margin = max(SHORT_BY_S, seconds / 10)
    if covered is None:
        return "ok"
    if covered < seconds - margin:
        return "short"
    if covered > seconds + margin and covered >= span_s - margin:
        return "whole"
    return "ok"


class _StoppedEarly(Exception):
    """A whole reply whose video ends before the seconds asked for."""


def _halves(first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    """[first, last] in two pieces of whole seconds; none when it is one second."""
    if first >= last:
        return []
    middle = (first + (last - first) / 2).replace(microsecond=0)
    return [(first, middle), (middle + timedelta(seconds=1), last)]


class _Writer:
    """Appends pieces to the target, one header for all where the container joins, else
    one file per piece."""

    def __init__(
        self, target: Path, result: FileDownload, progress: Callable[[int], None] | None
    ) -> None:
        self.target = target
        self.result = result
        self.progress = progress
        self.out: BinaryIO | None = None
        self.joins = True

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.out is not None:
            self.out.close()

    def add(self, data: bytes) -> None:
        result = self.result
        if self.out is None or not self.joins:
            if self.out is None:
                self.joins = _joins(data)
                path = self.target
            else:
                self.out.close()
                path = pieces_name(self.target, len(result.files))
            self.out = path.open("wb")
            result.files.append(path)
        elif data[:4] == IMKH:
            data = data[IMKH_SIZE:]  # every piece is a file of its own: one header
        self.out.write(data)
        result.size += len(data)
        result.pieces += 1
        if self.progress is not None:
            self.progress(result.size)


def _piece(
    session: DeviceSession,
    rec: Recording,
    start: datetime,
    end: datetime,
    expected: float,
    stall_timeout_s: float,
) -> bytes:
    """One reply of about `expected` bytes (a bigger one grows the buffer: `isapi`). The
    library's receive timeout bounds the whole reply, not a pause in it (measured): a
    piece gets ``stall_timeout_s`` plus its size at `SLOWEST_RATE`."""
    uri = playback_uri(session, rec, start, end)
    buffer = min(MAX_REPLY, int(expected * 1.25) + (1 << 20))
    timeout_s = stall_timeout_s + expected / SLOWEST_RATE
    reply = session.isapi("GET", DOWNLOAD_URL, request_body(uri), int(timeout_s * 1000), buffer)
    if not reply.body:
        raise PieceFailed(f"the device sent an empty file for {start:%H:%M:%S}-{end:%H:%M:%S}")
    return reply.body


def _joins(first: bytes) -> bool:
    """Whether pieces of this container concatenate: MPEG-PS or TS, with or without the
    IMKH header (its system_format 2 = PS, 3 = TS)."""
    body = first[IMKH_SIZE:] if first[:4] == IMKH else first
    return body[:4] == b"\x00\x00\x01\xba" or body[:1] == b"\x47"
