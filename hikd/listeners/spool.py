"""The pushed alarms a listen front answered, on disk until a device host has stored them
(README "The listen front"): a device that got ``200`` finds its alarm delivered even when
the whole daemon dies (SIGKILL, power) before a host stored it.

One file per listen port, ``<state_dir>/listen-<port>.spool``, appended to: a record per
push the front keeps (`add`) and per push stored or given up (`done`). The pushes answered at
about the same time share one ``fdatasync`` before they are answered (`durable`); a ``done``
is not synced on its own (lost in a crash, it costs one copy more, marked ``resent``). At the
next start the file is read back (`open`): what is not done is kept again, relayed as hosts
come up, and marked ``resent`` (a host may have stored it just before the crash). The file is
rewritten with only what is kept when it has grown past `COMPACT_BYTES` and twice that. The
records: `hikd.listeners.spool_file`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Iterable
from pathlib import Path

from hikd.listeners.relayed import Relayed
from hikd.listeners.spool_file import (
    ADD,
    DONE,
    add_body,
    pending,
    read_records,
    record,
    relayed_of,
)

COMPACT_BYTES = 8 * 1024 * 1024
"""The file is rewritten with only what is kept once it is this big and twice what is kept."""


class Spool:
    """Used from the front's event loop only (`open` before it runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._next = 1
        self._live: dict[int, tuple[int, int]] = {}
        """Push id -> (offset, length) of its record, in the order they came."""
        self.live_bytes = 0
        self._size = 0
        self._appended = 0
        """Bytes appended since the start (`durable` syncs up to a count of them)."""
        self._synced = 0
        self._sync: asyncio.Lock | None = None
        self._syncer = _Syncer(path.name)

    def __len__(self) -> int:
        return len(self._live)

    def open(self) -> list[tuple[int, Relayed]]:
        """Read back what a run before did not see stored: (id, request), in the order they
        came; the file then holds only them. Raises OSError when it cannot be read or
        written."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        kept = pending(data)
        for _kind, ident, _body, _offset in read_records(data):
            self._next = max(self._next, ident + 1)
        records = [record(ADD, ident, body) for ident, body in kept.items()]
        self._rewrite(records, list(kept))
        return [(ident, relayed_of(body)) for ident, body in kept.items()]

    def add(self, relayed: Relayed) -> int:
        """Append a push; its id (durable once `durable` returns). Raises OSError."""
        ident = self._next
        self._next += 1
        added = record(ADD, ident, add_body(relayed))
        self._write(added)
        self._live[ident] = (self._size - len(added), len(added))
        self.live_bytes += len(added)
        return ident

    def done(self, idents: Iterable[int]) -> None:
        """These pushes are stored (or given up): not read back at the next start."""
        records = []
        for ident in idents:
            entry = self._live.pop(ident, None)
            if entry is not None:
                self.live_bytes -= entry[1]
                records.append(record(DONE, ident))
        if records:
            with contextlib.suppress(OSError):  # read back once more at worst, marked resent
                self._write(b"".join(records))

    def sync(self) -> None:
        """Everything added so far is on disk, now (before the loop runs). Raises OSError."""
        os.fdatasync(self._fd)
        self._synced = self._appended

    async def durable(self) -> None:
        """Return once every push added so far is on disk (one sync for the pushes added
        while another sync ran). Raises OSError."""
        upto = self._appended
        if self._synced >= upto:
            return
        if self._sync is None:
            self._sync = asyncio.Lock()
        async with self._sync:
            if self._synced >= upto:
                return
            target = self._appended
            if self._size > COMPACT_BYTES and self._size > 2 * self.live_bytes:
                self._compact()  # synced whole
            else:
                await self._syncer.sync(self._fd)
            self._synced = max(self._synced, target)

    def close(self) -> None:
        self._syncer.stop()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = -1

    # -- the file --------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)
        self._appended += len(data)

    def _compact(self) -> None:
        """Rewrite the file with only the pushes kept (on the loop's thread: they are few,
        as it happens only when the file is twice what is kept)."""
        records = [os.pread(self._fd, length, offset) for offset, length in self._live.values()]
        self._rewrite(records, list(self._live))

    def _rewrite(self, records: list[bytes], idents: list[int]) -> None:
        new = self.path.with_name(self.path.name + ".new")
        fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        before = self._fd, self._size, self._live, self.live_bytes
        try:
            old, self._fd, self._size = self._fd, fd, 0
            self._live, self.live_bytes = {}, 0
            for ident, data in zip(idents, records, strict=True):
                self._write(data)
                self._live[ident] = (self._size - len(data), len(data))
                self.live_bytes += len(data)
            os.fsync(fd)
            os.replace(new, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError:
            os.close(fd)
            self._fd, self._size, self._live, self.live_bytes = before
            raise
        if old >= 0:
            os.close(old)
        self._synced = self._appended


class _Syncer:
    """A thread of its own for ``fdatasync`` (the loop goes on serving while the disk works):
    a quarter less CPU per sync than a hop to the default executor (`asyncio.to_thread`),
    measured in bench/README.md."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._asked: queue.SimpleQueue[
            tuple[int, asyncio.Future[None], asyncio.AbstractEventLoop] | None
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def sync(self, fd: int) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"hikd-spool-{self._name}", daemon=True
            )
            self._thread.start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._asked.put((fd, done, loop))
        await done

    def _run(self) -> None:
        while (asked := self._asked.get()) is not None:
            fd, done, loop = asked
            failed: OSError | None = None
            try:
                os.fdatasync(fd)
            except OSError as exc:
                failed = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, done, failed)

    def stop(self) -> None:
        if self._thread is not None:
            self._asked.put(None)
            self._thread.join(5.0)
            self._thread = None


def _settle(done: asyncio.Future[None], failed: OSError | None) -> None:
    if done.done():  # cancelled (the front stops)
        return
    if failed is None:
        done.set_result(None)
    else:
        done.set_exception(failed)
