"""The disk sink: every event as one JSON line in ``<path>/events.jsonl``.

A batch is acknowledged only once it is written and fsynced (one fsync per batch). A batch
that comes less than ``fsync_interval_s`` after the last fsync is written at once but fsynced
(and so acknowledged) only when that interval is over: the events stored meanwhile make the
next batch, so under a steady load the sink fsyncs at most that often instead of once per
event or two (an fsync costs more CPU than the write it makes durable). When
the file would grow past ``max_bytes`` it is renamed to ``events-<UTC time>.jsonl`` and a
new one is started; rotated files older than ``max_age_days`` or beyond the newest
``max_files`` are deleted. Pictures named in ``event.files`` are already on disk (the
decoders write them); the lines just keep their paths.

A full disk or a permission problem is ``SinkUnavailable`` with one line saying which path
and why; the batch is retried later and nothing is lost. A line cut short (a write that
failed half-way, or a crash) is removed before writing resumes, so every line parses.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from hikd.events import Event
from hikd.logs import get_logger
from hikd.sinks.base import SinkContext, SinkUnavailable

log = get_logger(__name__)

CURRENT = "events.jsonl"
ROTATED_GLOB = "events-*.jsonl"

_CLEANUP_EVERY = 3600.0  # seconds between age checks when no rotation happens


class DiskSinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = None
    """Directory of the files; a relative path is relative to the working directory (like
    every path of the configuration); default: the sink's state directory."""
    max_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    """Size at which ``events.jsonl`` is rotated."""
    max_age_days: float = Field(default=30.0, ge=0)
    """Rotated files older than this are deleted; 0 keeps them whatever their age."""
    max_files: int = Field(default=10, ge=0)
    """How many rotated files are kept (the current file not counted); 0 for no limit."""
    fsync: bool = True
    """fsync each batch before acknowledging it; false trades power-cut safety for speed."""
    fsync_interval_s: float = Field(default=0.025, ge=0, le=1)
    """fsync at most this often: a batch that comes sooner after the last fsync waits for
    the rest of the interval before its fsync and its acknowledgement, and the events stored
    meanwhile go into the next batch. 0 fsyncs every batch at once."""


class DiskSink:
    Config: ClassVar[type[BaseModel]] = DiskSinkConfig

    def __init__(self, config: DiskSinkConfig, context: SinkContext) -> None:
        self.config = config
        # Relative paths are relative to the working directory, like every path of the
        # configuration; without a path the events go under the sink's state directory.
        self.directory = (config.path or context.state_dir).absolute()
        self.current = self.directory / CURRENT
        self._fd: int | None = None
        self._size = 0
        self._next_cleanup = 0.0
        self._synced_at = -float("inf")  # monotonic time of the last fsync
        # The clock and the wait between fsyncs (a test drives them by hand).
        self._clock = time.monotonic
        self._sleep = time.sleep

    # -- the Sink protocol -----------------------------------------------------------------

    def open(self) -> None:
        self._ensure_open()
        self._cleanup()

    def send(self, batch: Sequence[Event]) -> int:
        lines = [event.to_json_bytes() + b"\n" for event in batch]
        done = 0  # lines written and fsynced, in files already rotated away
        try:
            self._ensure_open()
            chunk: list[bytes] = []
            chunk_size = 0
            for line in lines:
                if (
                    self._size + chunk_size
                    and self._size + chunk_size + len(line) > self.config.max_bytes
                ):
                    self._write(b"".join(chunk))
                    done += len(chunk)
                    self._rotate()
                    chunk, chunk_size = [], 0
                chunk.append(line)
                chunk_size += len(line)
            self._write(b"".join(chunk))
        except (OSError, SinkUnavailable) as e:
            self._close_fd()  # the next attempt opens the path afresh (it may be fixed)
            if done:
                return done  # those are safe; the rest is tried again at once
            if isinstance(e, SinkUnavailable):
                raise
            raise SinkUnavailable(self._message(e)) from None
        if time.monotonic() >= self._next_cleanup:
            self._cleanup()
        return len(lines)

    def close(self) -> None:
        self._close_fd()

    # -- files -----------------------------------------------------------------------------

    def _ensure_open(self) -> int:
        if self._fd is not None:
            return self._fd
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise SinkUnavailable(
                f"disk sink: cannot write {self.directory}: it is not a directory"
            ) from None
        except OSError as e:
            raise SinkUnavailable(self._message(e)) from None
        try:
            fd = os.open(self.current, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise SinkUnavailable(self._message(e)) from None
        try:
            self._size = self._repair(fd)
            if self.config.fsync:
                self._fsync_directory()
        except OSError as e:
            os.close(fd)
            raise SinkUnavailable(self._message(e)) from None
        self._fd = fd
        return fd

    def _repair(self, fd: int) -> int:
        """Cut an incomplete last line (left by a crash); returns the size after."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        end = size
        while end > 0:
            start = max(0, end - 65536)
            found = os.pread(fd, end - start, start).rfind(b"\n")
            if found >= 0:
                end = start + found + 1
                break
            end = start
        os.ftruncate(fd, end)
        log.warning(
            "disk sink: removed an incomplete last line; its event is written again",
            file=str(self.current),
            removed_bytes=size - end,
        )
        return end

    def _write(self, data: bytes) -> None:
        fd = self._ensure_open()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
            if self.config.fsync:
                wait = self._synced_at + self.config.fsync_interval_s - self._clock()
                if wait > 0:
                    self._sleep(wait)
                os.fsync(fd)
                self._synced_at = self._clock()
        except OSError:
            # Remove whatever part of the batch got in, so the retry starts on a new line.
            # /dev/full and friends cannot be truncated; nothing was written there.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._size)
            raise
        self._size += len(data)

    def _rotate(self) -> None:
        self._close_fd()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.directory / f"events-{stamp}.jsonl"
        n = 0
        while target.exists():
            n += 1
            target = self.directory / f"events-{stamp}-{n}.jsonl"
        os.rename(self.current, target)
        self._ensure_open()  # fsyncs the directory, so the rename is durable too
        self._cleanup()

    def _fsync_directory(self) -> None:
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _cleanup(self) -> None:
        """Delete rotated files beyond `max_files` or older than `max_age_days`."""
        self._next_cleanup = time.monotonic() + _CLEANUP_EVERY
        try:
            # The UTC timestamp in the name sorts oldest first.
            rotated = sorted(self.directory.glob(ROTATED_GLOB))
            doomed = set(rotated[: -self.config.max_files]) if self.config.max_files else set()
            if self.config.max_age_days:
                cutoff = time.time() - self.config.max_age_days * 86400
                doomed.update(p for p in rotated if p.stat().st_mtime < cutoff)
            for path in sorted(doomed):
                path.unlink(missing_ok=True)
        except OSError as e:
            log.warning("disk sink: cannot delete old rotated files", error=self._message(e))

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):  # nothing left to do; a later open starts afresh
                os.close(fd)

    def _message(self, error: OSError) -> str:
        where = error.filename if error.filename is not None else self.current
        return f"disk sink: cannot write {where}: {error.strerror or error}"
