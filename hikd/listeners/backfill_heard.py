"""Backfill's record of the live alarms stored in the outbox since its last save.

Backfill saves until when it heard each device, with the live alarms of the last seconds,
once a second (``state.sqlite``). A device host killed between two saves took the record of
the alarms it heard since the last one with it: they were delivered live, and after the
restart the device's log gave them back once more, as ``backfilled``. So every batch the
host stores is noted here as well, right after its commit (one ``write`` per batch, which
outlives the process: a crash, even SIGKILL, loses nothing written), and the next start of
the host counts these alarms as heard live.

After the commit, never before: an alarm noted here is in the outbox and reaches the sinks;
one that was not stored is not here, and backfill reads it back. A crash between the commit
and the note leaves an alarm that was stored un-noted: it may come back once, marked
``backfilled`` (at least once, never lost).

The file holds what was stored since the save before the last one: each save moves the
file aside (``.old``, replacing the one before) and starts a new one, so the saves keep it
small; the next start reads both.

Lines: JSON ``[device, match class, channel or input, device time (POSIX s), re-sent]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import Counter, deque
from collections.abc import Container, Iterable, Sequence
from pathlib import Path

from hikd.events import Event
from hikd.listeners.log_alarms import Live, match_class
from hikd.logs import get_logger

log = get_logger(__name__)


def heard_path(state_dir: Path, host: int) -> Path:
    return Path(state_dir) / f"device-host-{host}.heard-alarms"


def live_entry(event: Event) -> Live | None:
    """What backfill notes of a live alarm (`Backfill.watch`'s tuple); None for an event
    that stands for no alarm a device's log has (stops, alarms read back from the log)."""
    if event.kind != "alarm" or event.state == "stop" or event.attributes.get("backfilled"):
        return None
    where = event.attributes.get("alarm_input") if event.type == "io" else event.channel
    return (
        match_class(event.type),
        where,
        event.time.timestamp(),
        bool(event.attributes.get("resent")),
    )


class HeardFile:
    """`note(batch)` after each commit; `rotate()` after each save; `take()` at start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.old = path.with_name(path.name + ".old")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._failing = False

    def take(self) -> dict[str, list[Live]]:
        """What the previous run stored since the save before its last, per device (oldest
        first)."""
        found: dict[str, list[Live]] = {}
        for path in (self.old, self.path):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            for line in data.split(b"\n")[:-1]:  # the last piece is empty, or a torn write
                with contextlib.suppress(ValueError, TypeError):
                    name, kind, where, at, resent = json.loads(line)
                    entry = (str(kind), where, float(at), bool(resent))
                    found.setdefault(str(name), []).append(entry)
        return found

    def begin(self) -> None:
        """Start an empty record (what `take` gave is saved in the state database now)."""
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.old.unlink()
            self._reopen()

    def rotate(self) -> None:
        """A save has the live alarms noted so far: the file before it can go, this one
        stays (as ``.old``) until the next save."""
        with self._lock:
            if self._fd is None:
                return
            try:
                os.replace(self.path, self.old)
            except OSError:
                return  # kept as it is: the next save tries again
            self._reopen()

    def note(self, batch: Sequence[Event], devices: Container[str]) -> None:
        """After `batch` is stored in the outbox (on the storing thread): the live alarms
        of `devices` in it."""
        lines = [
            json.dumps([event.device.name, *entry], separators=(",", ":")).encode() + b"\n"
            for event in batch
            if event.device.name in devices and (entry := live_entry(event)) is not None
        ]
        if not lines:
            return
        data = b"".join(lines)
        with self._lock:
            if self._fd is None:
                return
            try:
                if os.write(self._fd, data) < len(data):
                    raise OSError("the disk took part of it")
            except OSError as exc:  # a full disk: those alarms may come back backfilled
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "backfill: cannot note the alarms heard live; after a crash they "
                        "may be read back from the device log once more",
                        path=str(self.path),
                        error=str(exc),
                    )
                return
            self._failing = False

    def close(self, remove: bool = False) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if remove:
                for path in (self.path, self.old):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()

    def _reopen(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            log.warning("backfill: cannot note the alarms heard live", error=str(exc))
            return
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd


def with_heard(record: deque[Live], more: Iterable[Live]) -> deque[Live] | None:
    """`record` with `more` added where it is not there already, in time order; None when
    nothing is added. The saved record and the file overlap (both have what was heard just
    before a save), and one live alarm counted twice could stand in for a missed alarm next
    to it (`heard_live`)."""
    have = Counter(record)
    added: list[Live] = []
    for entry in more:
        if have[entry] > 0:
            have[entry] -= 1
        else:
            added.append(entry)
    if not added:
        return None
    return deque(sorted([*record, *added], key=lambda e: e[2]), maxlen=record.maxlen)
