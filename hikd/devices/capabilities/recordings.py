"""Recording search on a device session, and what every download route shares.

Search is FindFile_V40 on both protocols; an ISAPI login takes only dwFileType 0 (any
other, "all" included, fails with error 17: sdk-over-isapi.md part 2 a).
`hikd.devices.capabilities.downloads.download` picks the route.
"""

from __future__ import annotations

import contextlib
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


def user_id_of(session: DeviceSession) -> int:
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
        user_id_of(session),
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


def pieces(target: Path) -> list[Path]:
    """`target` and the files the library continued it in: above 1024 MB it starts a new
    file named like the first plus ``_1``, ``_2``, ... (guide 5.14.33)."""
    found = [target]
    n = 1
    while True:
        piece = pieces_name(target, n)
        if not piece.exists():
            return found
        found.append(piece)
        n += 1


def pieces_name(target: Path, n: int) -> Path:
    """The name of piece `n` (1, 2, ...) after `target`: ``<stem>_<n><suffix>``."""
    return target.with_name(f"{target.stem}_{n}{target.suffix}")


def written(target: Path) -> int:
    """Bytes the library has written so far for `target`, all its pieces together."""
    total = 0
    for piece in pieces(target):
        with contextlib.suppress(FileNotFoundError):
            total += piece.stat().st_size
    return total
