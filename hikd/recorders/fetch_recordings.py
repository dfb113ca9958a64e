"""Scheduled recording downloads (kind ``download``), and the fetch every download uses.

A run searches each channel over the last ``window_h`` hours, leaves out the recording
still being written (its end is within ``open_margin_s`` of the device's clock) and every
recording the state database says is done, and downloads the rest, ``parallel`` at a time:

    <output>/<device>/<channel>/<start>_<end>.ps        (times on the device's clock)

A file is written as ``<start>_<end>.part``, checked (not empty, a container hikd knows)
and only then renamed into place; a stalled, cut or failed attempt deletes its part file
and is retried with backoff. Each recording ends in `StateStore.mark_done` and a file event
(kind ``file``, type ``recording``), so a second run fetches nothing and a restart in the
middle of a window fetches only the rest.

The extension says what the library wrote: over ISAPI that is always its own MPEG-PS with
a 40-byte ``IMKH`` header (``.ps``; VLC and ffmpeg play it), never the device's bytes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field

from hikd.devices.capabilities.recordings import (
    DownloadCancelled,
    DownloadError,
    Progress,
    Recording,
    device_now,
    download,
    pieces,
    search_recordings,
)
from hikd.events import Event
from hikd.jobs.base import Job, JobContext, JobResult
from hikd.recorders.retention import PART_SUFFIX, apply_retention
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

log = structlog.get_logger("hikd.recorders.fetch_recordings")

IMKH = b"IMKH"
IMKH_SIZE = 40
# IMKH system_format (bytes 8-9, little endian) -> file extension (sdk-over-isapi.md 2 b:
# 2 = PS is what the library writes by default, 3 = TS after SET_TRANS_TYPE 2).
_IMKH_FORMATS = {2: "ps", 3: "ts"}


class BadFile(DownloadError):
    """The library wrote nothing usable."""


def container_of(head: bytes, size: int) -> str:
    """The file extension for a downloaded file starting with `head`; raises `BadFile`."""
    if size == 0:
        raise BadFile("the library wrote an empty file")
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


@dataclass(frozen=True, slots=True)
class FetchedFile:
    path: Path
    size: int
    """Bytes in all its pieces."""
    attempts: int
    more: tuple[Path, ...] = ()
    """Further pieces of a download above 1024 MB (``<stem>_1.ps``, ...)."""

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


def fetch(
    session: DeviceSession,
    folder: Path,
    stem: str,
    channel: int,
    start: datetime,
    end: datetime,
    *,
    name: str = "",
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
    delay = policy.backoff_s
    for attempt in range(1, policy.retries + 2):
        _remove(part)
        try:
            download(
                session,
                part,
                channel,
                start,
                end,
                name=name,
                stall_timeout_s=policy.stall_timeout_s,
                stop=stop,
                progress=progress,
            )
            return _finish(part, folder, stem, end, attempt)
        except DownloadCancelled:
            _remove(part)
            raise
        except DownloadError as exc:
            full = disk_full(folder)
            if full is not None:
                _remove(part)
                raise DiskFull(full) from None
            last = str(exc)
        except SdkError as exc:
            if not exc.transient:
                _remove(part)
                raise
            last = str(exc)
        _remove(part)
        if attempt <= policy.retries:
            log.info(
                "download attempt failed, retrying",
                device=session.name,
                channel=channel,
                span=stem,
                attempt=attempt,
                error=last,
                retry_in=delay,
            )
            if stop is not None and stop.wait(delay):
                raise DownloadCancelled("hikd is stopping")
            if stop is None:
                time.sleep(delay)
            delay = min(delay * 2, policy.backoff_max_s)
    raise FetchFailed(f"{last} (gave up after {policy.retries + 1} attempts)")


def _finish(part: Path, folder: Path, stem: str, end: datetime, attempt: int) -> FetchedFile:
    """Check the part file, make it durable and rename it (and its pieces) into place."""
    size = part.stat().st_size
    with part.open("rb") as f:
        head = f.read(IMKH_SIZE + 200)
        ext = container_of(head, size)
    parts = pieces(part)
    finals = [folder / f"{stem}.{ext}"]
    finals += [folder / f"{stem}_{n}.{ext}" for n in range(1, len(parts))]
    # mtime = end of the footage: retention by age counts from there.
    stamp = end.timestamp() + 1
    for piece, final in zip(parts, finals, strict=True):
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
    return Event(
        kind="file",
        type=type_,
        state="pulse",
        device=session.device,
        channel=channel,
        attributes={
            "path": str(fetched.path),
            "size": fetched.size,
            "channel": channel,
            "start": start.isoformat(),
            "end": end.isoformat(),
            **extra,
        },
        files=tuple(str(p) for p in fetched.paths),
    )


# -- the scheduled job --------------------------------------------------------------------


class DownloadConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Annotated[int, Field(ge=1)]] | None = None
    """Default: every channel of the device."""
    window_h: Annotated[float, Field(gt=0)] = 24.0
    """How far back each run looks for recordings."""
    open_margin_s: Annotated[float, Field(ge=0)] = 300.0
    """A recording ending less than this before the device's "now" is taken as still being
    written and left for a later run (device clocks drift; ISAPI search results do not say
    which segment is open)."""
    stall_timeout_s: Annotated[float, Field(gt=0)] = 20.0
    retries: Annotated[int, Field(ge=0, le=20)] = 3
    retry_backoff_s: Annotated[float, Field(ge=0)] = 5.0
    parallel: Annotated[int, Field(ge=1, le=16)] = 2
    """Downloads at once per device (each ISAPI download lasts at least ~5 s: the library
    learns of the end of a stream from its 5 s RTSP heartbeat)."""
    keep_days: Annotated[float, Field(gt=0)] | None = None
    keep_bytes: Annotated[int, Field(gt=0)] | None = None

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.stall_timeout_s, self.retries, self.retry_backoff_s)


@dataclass
class _Tally:
    fetched: int = 0
    bytes: int = 0
    failed: list[str] = field(default_factory=list)
    skipped_open: int = 0
    already_done: int = 0
    too_old: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def item_key(device: str, recording: Recording) -> str:
    """The recording's key in the state database."""
    return f"{device}/{recording.channel}/{recording.stem}"


class DownloadJob(Job):
    """Kind ``download``: fetch every finished recording of a window, once."""

    kind: ClassVar[str] = "download"
    Config: ClassVar[type[BaseModel]] = DownloadConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, DownloadConfig)
        self.config = config

    def run(self, ctx: JobContext) -> JobResult:
        cfg = self.config
        session = ctx.session
        if ctx.output_dir is None:
            return JobResult(False, "no output folder configured")
        root = Path(ctx.output_dir)
        available = session.channels.numbers
        channels = cfg.channels or available
        missing = [c for c in channels if available and c not in available]
        channels = [c for c in channels if c not in missing]
        now = device_now(session)
        since = now - timedelta(hours=cfg.window_h)
        if cfg.keep_days is not None:
            # Do not fetch what retention would delete at once.
            since = max(since, now - timedelta(days=cfg.keep_days))
        open_from = now - timedelta(seconds=cfg.open_margin_s)
        tally = _Tally()
        todo: list[Recording] = []
        for channel in channels:
            if ctx.stop.is_set():
                break
            try:
                found = search_recordings(session, channel, since, now)
            except SdkError as exc:
                tally.failed.append(f"channel {channel}: search failed: {exc}")
                continue
            for rec in found:
                if rec.end >= open_from:
                    tally.skipped_open += 1
                elif ctx.state.is_done(ctx.job, item_key(session.name, rec)):
                    tally.already_done += 1
                else:
                    todo.append(rec)
        if todo:
            with ThreadPoolExecutor(cfg.parallel, thread_name_prefix=f"dl-{ctx.job}") as pool:
                for _ in pool.map(lambda rec: self._one(ctx, root, rec, tally), todo):
                    pass
        removed = ""
        if cfg.keep_days is not None or cfg.keep_bytes is not None:
            result = apply_retention(root / session.name, cfg.keep_days, cfg.keep_bytes)
            if result.removed_files:
                removed = f", {result.removed_files} old removed"
        problems = tally.failed + [f"channel {c} is not on the device" for c in missing]
        summary = f"{tally.fetched} recording{'s' if tally.fetched != 1 else ''}, "
        summary += f"{_megabytes(tally.bytes)}{removed}"
        if ctx.stop.is_set() and len(todo) > tally.fetched + len(tally.failed):
            summary += ", interrupted"
        if problems:
            summary += f"; {len(problems)} failed: {problems[0]}"
        return JobResult(
            ok=not problems,
            summary=summary,
            details={
                "fetched": tally.fetched,
                "bytes": tally.bytes,
                "failed": problems,
                "still_recording": tally.skipped_open,
                "already_done": tally.already_done,
            },
        )

    def _one(self, ctx: JobContext, root: Path, rec: Recording, tally: _Tally) -> None:
        if ctx.stop.is_set():
            return
        session = ctx.session
        folder = root / session.name / str(rec.channel)
        try:
            fetched = fetch(
                session,
                folder,
                rec.stem,
                rec.channel,
                rec.start,
                rec.end,
                name=rec.name,
                policy=self.config.policy(),
                stop=ctx.stop,
            )
        except DownloadCancelled:
            return
        except (FetchFailed, SdkError, OSError) as exc:
            log.warning(
                "recording download failed", device=session.name, span=rec.stem, error=str(exc)
            )
            with tally.lock:
                tally.failed.append(f"{rec.channel}/{rec.stem}: {exc}")
            return
        info = {
            "path": str(fetched.path),
            "size": fetched.size,
            "channel": rec.channel,
            "start": rec.start.isoformat(),
            "end": rec.end.isoformat(),
            "name": rec.name,
        }
        ctx.state.mark_done(ctx.job, item_key(session.name, rec), info)
        ctx.publish(
            file_event(
                session,
                "recording",
                fetched,
                rec.channel,
                rec.start,
                rec.end,
                job=ctx.job,
                name=rec.name,
            )
        )
        with tally.lock:
            tally.fetched += 1
            tally.bytes += fetched.size


def _megabytes(n: int) -> str:
    if n < 1_000_000:
        return f"{n / 1000:.0f} kB"
    return f"{n / 1_000_000:.1f} MB"
