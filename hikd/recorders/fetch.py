"""The fetch every download uses (scheduled recordings, clips, ``hikd download``).

A span is written as ``<stem>.part``, checked (not empty, a container hikd knows, the
device's size where it gives one) and only then renamed into place; a failed attempt
deletes its part file. A stream that stops growing is given up after ``stall_timeout_s``
and tried again at once; other failures, and a second stall, wait with backoff. The file
event says which route fetched it, in how many pieces, and what went wrong on the way.

The extension says what was written: the device's own file is usually Hikvision's
``IMKH`` + MPEG-PS (``.ps``), the library's re-mux always is; an MP4 from a device stays
``.mp4``, one file per piece.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hikd.devices.capabilities.downloads import Route, download
from hikd.devices.capabilities.recordings import (
    DownloadCancelled,
    DownloadError,
    Progress,
    Recording,
    StalledError,
    pieces,
)
from hikd.events import Event
from hikd.recorders.retention import PART_SUFFIX
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

log = structlog.get_logger("hikd.recorders.fetch")

IMKH = b"IMKH"
IMKH_SIZE = 40
# IMKH system_format (bytes 8-9, little endian) -> file extension (sdk-over-isapi.md 2 b:
# 2 = PS is what the library writes by default, 3 = TS after SET_TRANS_TYPE 2).
_IMKH_FORMATS = {2: "ps", 3: "ts"}


class BadFile(DownloadError):
    """The download holds nothing usable."""


def container_of(head: bytes, size: int) -> str:
    """The file extension for a downloaded file starting with `head`; raises `BadFile`."""
    if size == 0:
        raise BadFile("the download is an empty file")
    if head.startswith(IMKH):
        if size <= IMKH_SIZE:
            raise BadFile("the file holds only the 40-byte IMKH header: the device sent no video")
        system_format = int.from_bytes(head[8:10], "little")
        # Other vendor formats (1 = the old HIK container) play in the vendor's player,
        # which expects .mp4 like the guide's own examples (5.14.33).
        return _IMKH_FORMATS.get(system_format, "mp4")
    if head.startswith(b"\x00\x00\x01\xba"):
        return "ps"
    if head[:1] == b"\x47" and (len(head) <= 188 or head[188:189] == b"\x47"):
        return "ts"
    if head[4:8] == b"ftyp":
        return "mp4"
    raise BadFile(f"the file is not a video container hikd knows (starts {head[:8].hex()})")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    stall_timeout_s: float = 20.0
    retries: int = 3
    """Attempts after the first one."""
    backoff_s: float = 5.0
    backoff_max_s: float = 120.0
    route: Route = "auto"


@dataclass(frozen=True, slots=True)
class FetchedFile:
    path: Path
    size: int
    """Bytes in all its pieces."""
    attempts: int
    more: tuple[Path, ...] = ()
    """Further files: one per piece when the device's container does not join (MP4), or
    the library's pieces above 1024 MB (``<stem>_1.ps``, ...)."""
    route: str = ""
    joined: int = 1
    notes: tuple[str, ...] = ()
    """What happened on the way: stalls and cuts retried, gaps, a route fallen back."""

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.path, *self.more)


class FetchFailed(Exception):
    """Every attempt failed; the message says why the last one did."""


class DiskFull(FetchFailed):
    """The file system the download goes to is full: no retry would help."""


FULL_BELOW = 1 << 20
"""Free bytes under which a failed download is put down to a full disk."""


def disk_full(folder: Path) -> str | None:
    """One line saying that `folder`'s file system is full, or None when it is not.

    The vendor library gives no reason when it cannot write: a full disk ends the download
    with progress 200 or -1, which it documents as a network error (guide 5.14.36)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    if free >= FULL_BELOW:
        return None
    return (
        f"the disk holding {folder} is full ({free // 1024} kB free): free space there, "
        "or download elsewhere (a job's output_dir, hikd download --output)"
    )


def fetch_recording(
    session: DeviceSession,
    root: Path,
    rec: Recording,
    policy: RetryPolicy,
    stop: threading.Event | None,
    progress: Progress | None = None,
) -> FetchedFile:
    """One recording from a search into ``root/<device>/<channel>/<stem>.<ext>``."""
    return fetch(
        session,
        root / session.name / str(rec.channel),
        rec.stem,
        rec.channel,
        rec.start,
        rec.end,
        recording=rec,
        policy=policy,
        stop=stop,
        progress=progress,
    )


def fetch(
    session: DeviceSession,
    folder: Path,
    stem: str,
    channel: int,
    start: datetime,
    end: datetime,
    *,
    recording: Recording | None = None,
    policy: RetryPolicy | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> FetchedFile:
    """Download one span into ``folder/<stem>.<ext>`` through ``folder/<stem>.part``.

    Never leaves a partial file under a final name. Raises `FetchFailed` after the last
    retry, `DownloadCancelled` when `stop` is set, `SdkError` for errors no retry fixes
    (a channel the device lacks, a path hikd may not write, a refused login)."""
    policy = policy or RetryPolicy()
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{stem}{PART_SUFFIX}"
    last = ""
    notes: list[str] = []
    delay = policy.backoff_s
    stalled = False
    for attempt in range(1, policy.retries + 2):
        _remove(part)
        again_at_once = False
        try:
            got = download(
                session,
                part,
                channel,
                start,
                end,
                recording=recording,
                route=policy.route,
                stall_timeout_s=policy.stall_timeout_s,
                stop=stop,
                progress=progress,
            )
            fetched = _finish(got.files, folder, stem, end, attempt)
            return FetchedFile(
                fetched.path,
                fetched.size,
                attempt,
                fetched.more,
                got.route,
                got.joined,
                (*notes, *got.notes),
            )
        except DownloadCancelled:
            _remove(part)
            raise
        except DownloadError as exc:
            full = disk_full(folder)
            if full is not None:
                _remove(part)
                raise DiskFull(full) from None
            last = str(exc)
            # A stall is found in stall_timeout_s: the first one is tried again at once.
            again_at_once = isinstance(exc, StalledError) and not stalled
            stalled = stalled or isinstance(exc, StalledError)
        except SdkError as exc:
            if not exc.transient:
                _remove(part)
                raise
            last = str(exc)
        except OSError:
            # hikd writes the device's file itself: a full disk shows as ENOSPC here.
            _remove(part)
            full = disk_full(folder)
            if full is not None:
                raise DiskFull(full) from None
            raise
        _remove(part)
        if attempt <= policy.retries:
            wait = 0.0 if again_at_once else delay
            notes.append(f"attempt {attempt}: {last}; again {_when(wait)}")
            log.info(
                "download attempt failed, retrying",
                device=session.name,
                channel=channel,
                span=stem,
                attempt=attempt,
                error=last,
                retry_in=wait,
            )
            if wait and stop is not None and stop.wait(wait):
                raise DownloadCancelled("hikd is stopping")
            if wait and stop is None:
                time.sleep(wait)
            if not again_at_once:
                delay = min(delay * 2, policy.backoff_max_s)
    raise FetchFailed(f"{last} (gave up after {policy.retries + 1} attempts)")


def _when(wait: float) -> str:
    return "at once" if wait == 0 else f"after {wait:g} s"


def _finish(
    files: tuple[Path, ...], folder: Path, stem: str, end: datetime, attempt: int
) -> FetchedFile:
    """Check the part file(s), make them durable and rename them into place."""
    size = files[0].stat().st_size
    with files[0].open("rb") as f:
        head = f.read(IMKH_SIZE + 200)
        ext = container_of(head, size)
    finals = [folder / f"{stem}.{ext}"]
    finals += [folder / f"{stem}_{n}.{ext}" for n in range(1, len(files))]
    # mtime = end of the footage: retention by age counts from there.
    stamp = end.timestamp() + 1
    for piece, final in zip(files, finals, strict=True):
        with piece.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(piece, final)
        with contextlib.suppress(OSError):
            os.utime(final, (stamp, stamp))
    _fsync_dir(folder)
    total = sum(final.stat().st_size for final in finals)
    return FetchedFile(finals[0], total, attempt, tuple(finals[1:]))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(part: Path) -> None:
    for piece in pieces(part):
        with contextlib.suppress(FileNotFoundError):
            piece.unlink()


def existing_file(folder: Path, stem: str) -> Path | None:
    """A complete file for `stem` already in `folder` (any extension but .part)."""
    if not folder.is_dir():
        return None
    for candidate in folder.glob(f"{stem}.*"):
        if candidate.suffix != PART_SUFFIX and candidate.is_file():
            return candidate
    return None


def file_event(
    session: DeviceSession,
    type_: str,
    fetched: FetchedFile,
    channel: int,
    start: datetime,
    end: datetime,
    **extra: Any,
) -> Event:
    """The file event of a fetched span: where, how big, by which route, and what
    happened on the way (``notes``); ``files`` lists every file of it."""
    attributes: dict[str, Any] = {
        "path": str(fetched.path),
        "size": fetched.size,
        "channel": channel,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "route": fetched.route,
        "attempts": fetched.attempts,
    }
    if fetched.joined > 1:
        attributes["pieces"] = fetched.joined
    if fetched.more:
        attributes["files"] = len(fetched.paths)
    if fetched.notes:
        attributes["notes"] = list(fetched.notes)
    return Event(
        kind="file",
        type=type_,
        state="pulse",
        device=session.device,
        channel=channel,
        attributes={**attributes, **extra},
        files=tuple(str(p) for p in fetched.paths),
    )
