"""One download of a channel's span, on the route that works best for the session.

* ``file``: the device's own file, byte for byte: ``GET /ISAPI/ContentMgmt/download``
  through the pass-through, in pieces under 64 MiB, joined (`file_download`). Taken on
  ISAPI logins (route ``auto``), unless the device answers 404.
* ``stream``: the library's playback download (GetFileByTime_V40 / GetFileByName),
  re-muxed by the library into its own MPEG-PS (`stream_download`). Taken on
  private-protocol logins, and for devices without the file route.

Measured on loopback against hikd.sim (bench/bench_download.py): the file route moves a
recording at hundreds of MB/s in one request per piece; the stream route at ~200 MB/s
plus the time it takes to see the span's end in the file.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hikd.devices.capabilities.file_download import (
    IMKH,
    IMKH_SIZE,
    MAX_PIECE,
    FileDownload,
    PieceFailed,
    TooBig,
    download_files,
)
from hikd.devices.capabilities.recordings import (
    DownloadError,
    Progress,
    Recording,
    StalledError,
    pieces,
    search_recordings,
    written,
)
from hikd.devices.capabilities.stream_download import (
    download_stream,
    fetch_again_if_short,
    keep_whole_seconds,
)
from hikd.logs import get_logger
from hikd.sdk.errors import NotSupportedError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

_log = get_logger(__name__)

Route = Literal["auto", "file", "stream"]
_WITHOUT_FILES: weakref.WeakSet[DeviceSession] = weakref.WeakSet()
"""Sessions whose device answered the file route with 404: the stream from then on."""


@dataclass(frozen=True, slots=True)
class Downloaded:
    size: int
    route: Literal["file", "stream"]
    files: tuple[Path, ...]
    """What was written: the target, then further pieces (a container that does not join,
    or the library's 1024 MB split)."""
    joined: int = 1
    """Pieces joined into the file(s)."""
    notes: tuple[str, ...] = ()
    """What happened on the way (a piece fetched again, the route fallen back)."""


def download(
    session: DeviceSession,
    target: Path,
    channel: int,
    start: datetime,
    end: datetime,
    *,
    recording: Recording | None = None,
    name: str = "",
    route: Route = "auto",
    stall_timeout_s: float = 20.0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    max_piece: int = MAX_PIECE,
) -> Downloaded:
    """Download `channel` (hikd's number) from `start` to `end` (inclusive, whole seconds)
    into `target` (and its pieces). `recording` (from a search) spares the file route a
    search of its own. Raises `DownloadError` (a stall or cut that going on at once did not
    mend, a file shorter than the device said), `DownloadCancelled`, or `SdkError` when
    neither route can start."""
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)
    notes: list[str] = []
    if _takes_files(session, route):
        try:
            return _files(
                session,
                target,
                channel,
                start,
                end,
                recording,
                stall_timeout_s,
                stop,
                progress,
                max_piece,
            )
        except NotSupportedError:
            if route == "file":
                raise
            _WITHOUT_FILES.add(session)
            _log.info("download_route_fallback", device=session.name, route="stream")
            notes.append("the device has no /ISAPI/ContentMgmt/download: playback stream")
            for piece in pieces(target):
                piece.unlink(missing_ok=True)
        except (Nameless, TooBig) as exc:
            if route == "file":
                raise DownloadError(str(exc)) from None
            _log.info("download_route_fallback", device=session.name, route="stream")
            notes.append(f"{exc}: playback stream")
            for piece in pieces(target):
                piece.unlink(missing_ok=True)
    name = name or (recording.name if recording is not None else "")
    notes += _stream(session, target, channel, start, end, name, stall_timeout_s, stop, progress)
    return Downloaded(written(target), "stream", tuple(pieces(target)), notes=tuple(notes))


def _stream(
    session: DeviceSession,
    target: Path,
    channel: int,
    start: datetime,
    end: datetime,
    name: str,
    stall_timeout_s: float,
    stop: threading.Event | None,
    progress: Progress | None,
) -> list[str]:
    """The playback stream into `target`; a stall is given up after `stall_timeout_s`, the
    whole seconds already written are kept and the rest is asked for at once, by time."""
    try:
        got = download_stream(
            session,
            target,
            channel,
            start,
            end,
            name=name,
            stall_timeout_s=stall_timeout_s,
            stop=stop,
            progress=progress,
        )
        return fetch_again_if_short(
            got, session, target, channel, start, end, name=name,
            stall_timeout_s=stall_timeout_s, stop=stop,
        )  # fmt: skip
    except StalledError as exc:
        kept = keep_whole_seconds(target)
        if kept == 0:
            raise
        stalled = str(exc)
    resume_at = start + timedelta(seconds=kept)
    note = f"{stalled}: kept the first {kept} s, fetched the rest from {resume_at:%H:%M:%S} at once"
    _log.info("download_resumed", device=session.name, channel=channel, kept_s=kept)
    if resume_at > end:
        return [note]
    rest = target.with_name(f"{target.stem}_rest{target.suffix}")
    base = written(target)
    try:
        try:
            download_stream(
                session,
                rest,
                channel,
                resume_at,
                end,
                stall_timeout_s=stall_timeout_s,
                stop=stop,
                progress=None if progress is None else lambda n: progress(base + n),
            )
        except StalledError as again:
            raise ShortFile(f"{stalled}, and again after resuming: {again}") from None
        with target.open("ab") as out:
            for piece in pieces(rest):
                data = piece.read_bytes()
                # The library starts every file with its 40-byte IMKH header: keep one.
                out.write(data[IMKH_SIZE:] if data[:4] == IMKH else data)
    finally:
        for piece in pieces(rest):
            piece.unlink(missing_ok=True)
    return [note]


def _takes_files(session: DeviceSession, route: Route) -> bool:
    if route != "auto":
        return route == "file"
    return session.protocol == "isapi" and session not in _WITHOUT_FILES


def _files(
    session: DeviceSession,
    target: Path,
    channel: int,
    start: datetime,
    end: datetime,
    recording: Recording | None,
    stall_timeout_s: float,
    stop: threading.Event | None,
    progress: Progress | None,
    max_piece: int,
) -> Downloaded:
    found = (
        [recording] if recording is not None else search_recordings(session, channel, start, end)
    )
    parts = [
        (rec, max(start, rec.start), min(end, rec.end))
        for rec in found
        if rec.start <= end and rec.end >= start
    ]
    if not parts:
        raise DownloadError(
            f"no recording of channel {channel} covers {start:%H:%M:%S}-{end:%H:%M:%S} yet"
        )
    if any(not rec.name for rec, _first, _last in parts):
        raise Nameless(
            "the device's search gave a recording no name (the vendor library reads name= "
            "of a playbackURI only up to a following parameter, and it had no size=)"
        )
    try:
        got = download_files(
            session,
            target,
            parts,
            stall_timeout_s=stall_timeout_s,
            stop=stop,
            progress=progress,
            max_piece=max_piece,
        )
    except PieceFailed as exc:
        raise ShortFile(str(exc)) from None
    sizes = _sizes(got)
    gaps = _gaps(parts, start, end)
    notes = (*got.retried, *got.notes, *sizes, *gaps)
    return Downloaded(got.size, "file", tuple(got.files), got.pieces, notes)


def _sizes(got: FileDownload) -> tuple[str, ...]:
    """What the search said of a whole recording's size against what came: a note when
    they differ. Raises `ShortFile` for fewer bytes in a container whose time stamps hikd
    cannot read (nothing else tells a short file from a search that rounded up)."""
    said, sent = got.searched, got.size
    if said is None or said == sent:
        return ()
    if said == 0:
        return (f"the device's search gave no size for the recording; it sent {sent} bytes",)
    line = f"the device's search gave the recording as {said} bytes; it sent {sent}"
    if sent > said:
        return (f"{line}, all kept",)
    if not got.covered:
        raise ShortFile(line)
    return (f"{line}, whose video covers the whole span",)


def _gaps(
    parts: list[tuple[Recording, datetime, datetime]], start: datetime, end: datetime
) -> tuple[str, ...]:
    """Where the span has no recording (a clip reaching past the device's footage)."""
    notes = []
    at = start
    for _rec, first, last in parts:
        if first > at:
            notes.append(f"no recording from {at:%H:%M:%S} to {first:%H:%M:%S}")
        at = max(at, last + timedelta(seconds=1))
    if at <= end:
        notes.append(f"no recording from {at:%H:%M:%S} to {end:%H:%M:%S}")
    return tuple(notes)


class Nameless(DownloadError):
    """The file route cannot ask for a recording the search left without a name."""

    retry = False


class ShortFile(DownloadError):
    """A piece failed twice, or the device's file was shorter than it said."""
