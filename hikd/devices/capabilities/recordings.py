"""Recording search and one download from a device session, on the route its protocol takes.

| what | ISAPI login | private login |
| --- | --- | --- |
| search | FindFile_V40 with dwFileType 0 (else error 17) | FindFile_V40, all file types |
| one recording | by its time span (GetFileByName ignores the name) | by name (GetFileByName) |
| a time span (clips) | GetFileByTime_V40 | GetFileByTime_V40 |

Over ISAPI the library remuxes the RTSP stream into its own container: a 40-byte ``IMKH``
header (system_format 2 = MPEG-PS) then an MPEG program stream, never byte-equal to what
the device sent (sdk-over-isapi.md part 2 b). Its progress stays 0 until the device ends
the stream and a cut stream stays at 0 for ever, so `download` watches the file itself:
no growth for ``stall_timeout_s`` ends the attempt. The library learns about the end of a
stream only from the reply to its RTSP ``HEARTBEAT``, sent every 5 s, so a finished
stream looks stalled for up to 5 s; on ISAPI logins the stall limit is never below
`END_SIGNAL_WAIT_S`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from hikd.logs import get_logger
from hikd.sdk import playback
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

_log = get_logger(__name__)

END_SIGNAL_WAIT_S = 6.0
"""The library's RTSP heartbeat period (5 s) plus a margin: how long a complete ISAPI
download may sit without growing before the library reports it finished."""

Progress = Callable[[int], None]
"""Called with the number of bytes written so far, whenever it changes."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One recording on the device, times on the device's clock (aware datetimes)."""

    channel: int
    start: datetime
    end: datetime
    """The last second in the recording (inclusive, as devices report it)."""
    size: int
    """The device's size of it; a download by time writes a different number of bytes."""
    name: str

    @property
    def stem(self) -> str:
        """``20240501T000000_20240501T005959``: the recording's span on the device clock,
        which names its file and its key in the state database."""
        return f"{compact(self.start)}_{compact(self.end)}"

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds() + 1


def compact(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%S")


class DownloadError(Exception):
    """One download attempt failed; another attempt may work (`retry`)."""

    retry = True


class StalledError(DownloadError):
    """Nothing was written for the stall timeout (a cut or frozen stream)."""


class DownloadCancelled(DownloadError):
    """hikd is shutting down."""

    retry = False


def device_zone(session: DeviceSession) -> tzinfo:
    """The zone of the device's clock: the configured ``timezone``, else UTC (the same
    default the alarm decoders use)."""
    return session.config.tzinfo() or UTC


def device_now(session: DeviceSession) -> datetime:
    return datetime.now(device_zone(session)).replace(microsecond=0)


def _user_id(session: DeviceSession) -> int:
    user_id = session.user_id
    if user_id is None:
        raise SdkError(47, f"device {session.name} is not logged in")
    return user_id


def search_recordings(
    session: DeviceSession, channel: int, start: datetime, end: datetime
) -> list[Recording]:
    """The recordings of `channel` (hikd's number) overlapping [start, end], oldest first.

    What the device answers is filtered by the span again: some devices ignore it and
    list every recording they hold (95 from two years back for a 24 h window)."""
    tz = device_zone(session)
    # An ISAPI login refuses any file type but 0, "all" included (error 17, part 2 a).
    file_type = 0 if session.protocol == "isapi" else playback.ALL_FILE_TYPES
    found = playback.find_files(
        session.sdk,
        _user_id(session),
        session.channels.library_channel(channel),
        start,
        end,
        tz,
        file_type=file_type,
    )
    inside = [f for f in found if f.start <= end and f.end >= start]
    if len(inside) < len(found):
        _log.warning(
            "search_outside_span",
            device=session.name,
            channel=channel,
            outside=len(found) - len(inside),
            hint="the device ignored the search's time span; those recordings are left out",
        )
    return [Recording(channel, f.start, f.end, f.size, f.name) for f in inside]


def download(
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
    poll_s: float = 0.1,
) -> int:
    """Download `channel` (hikd's number) from `start` to `end` (inclusive) into `target`;
    returns its size.

    With `name` (a recording's name from the search) a private-protocol session fetches
    that file by name; otherwise, and always over ISAPI, it goes by time. Raises
    `StalledError`, `DownloadError` (progress 200: network error), `DownloadCancelled`
    when `stop` is set, or `SdkError` when the download cannot start. `target` is left as
    the library wrote it: the caller deletes or renames it."""
    user_id = _user_id(session)
    isapi = session.protocol != "private"
    if name and not isapi:
        handle = playback.start_by_name(session.sdk, user_id, name, target)
    else:
        library_channel = session.channels.library_channel(channel)
        handle = playback.start_by_time(
            session.sdk, user_id, library_channel, start, end, device_zone(session), target
        )
    limit = max(stall_timeout_s, END_SIGNAL_WAIT_S) if isapi else stall_timeout_s
    try:
        return _watch(session, handle, target, limit, stop, progress, poll_s)
    finally:
        playback.stop_download(session.sdk, handle)


def _watch(
    session: DeviceSession,
    handle: int,
    target: Path,
    stall_limit_s: float,
    stop: threading.Event | None,
    progress: Progress | None,
    poll_s: float,
) -> int:
    size = written(target)
    pos = 0
    moved = time.monotonic()
    while True:
        new_pos = playback.download_pos(session.sdk, handle)
        new_size = written(target)
        if new_size != size or new_pos != pos:
            moved = time.monotonic()
            if new_size != size and progress is not None:
                progress(new_size)
            size, pos = new_size, new_pos
        if pos == playback.POS_DONE:
            return size
        if pos == playback.POS_NETWORK_ERROR or pos < 0:
            raise DownloadError(f"the library reported a network error (progress {pos})")
        if time.monotonic() - moved > stall_limit_s:
            raise StalledError(
                f"no data for {stall_limit_s:g} s (the stream was cut or the device stalled)"
            )
        if stop is not None and stop.wait(poll_s):
            raise DownloadCancelled("hikd is stopping")
        if stop is None:
            time.sleep(poll_s)


def pieces(target: Path) -> list[Path]:
    """`target` and the files the library continued it in: above 1024 MB it starts a new
    file named like the first plus ``_1``, ``_2``, ... (guide 5.14.33)."""
    found = [target]
    n = 1
    while True:
        piece = target.with_name(f"{target.stem}_{n}{target.suffix}")
        if not piece.exists():
            return found
        found.append(piece)
        n += 1


def written(target: Path) -> int:
    """Bytes the library has written so far for `target`, all its pieces together."""
    total = 0
    for piece in pieces(target):
        with contextlib.suppress(FileNotFoundError):
            total += piece.stat().st_size
    return total
