"""Scheduled recording downloads (kind ``download``).

A run searches each channel over the last ``window_h`` hours, leaves out the recording
still being written (its end is within ``open_margin_s`` of the device's clock) and every
recording the state database says is done, and downloads the rest, ``parallel`` at a time
(`hikd.recorders.fetch`):

    <output>/<device>/<channel>/<start>_<end>.ps        (times on the device's clock)

Each recording ends in `StateStore.mark_done` and a file event (kind ``file``, type
``recording``), so a second run fetches nothing and a restart in the middle of a window
fetches only the rest.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from hikd.devices.capabilities.recordings import (
    DownloadCancelled,
    Recording,
    device_now,
    search_recordings,
)
from hikd.jobs.base import Job, JobContext, JobResult
from hikd.recorders.fetch import FetchFailed, RetryPolicy, fetch_recording, file_event
from hikd.recorders.retention import apply_retention
from hikd.sdk.errors import SdkError

log = structlog.get_logger("hikd.recorders.fetch_recordings")


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
    """Downloads at once per device."""
    route: Literal["auto", "file", "stream"] = "auto"
    """``file``: the device's own file through ISAPI; ``stream``: the library's playback
    download; ``auto``: the file over ISAPI logins, the stream otherwise (README)."""
    keep_days: Annotated[float, Field(gt=0)] | None = None
    keep_bytes: Annotated[int, Field(gt=0)] | None = None

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.stall_timeout_s, self.retries, self.retry_backoff_s, route=self.route
        )


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
        try:
            fetched = fetch_recording(session, root, rec, self.config.policy(), ctx.stop)
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
