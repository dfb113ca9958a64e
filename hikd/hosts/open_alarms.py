"""The alarms a device host has open, in a file the supervisor reads once the host died.

When a host crashes, the supervisor closes every alarm that was on in it with a stop whose
``ended_by`` is ``"restart"`` (README "Processes"). The host's writer thread appends each
batch's starts (their stored JSON) and stops (the start's id) to the file before it stores
the batch in the outbox: one ``write`` per batch, which outlives the process (a crash, even
SIGKILL, loses nothing written). It replaced a control message per batch, which cost the
host pickling and a pipe write and the supervisor a thread waking to read it, for every
batch, for something read only after a crash.

Lines: ``+`` and the start's JSON (which holds no newline), or ``-`` and the id of the start
that ended. When the file grows past `COMPACT_BYTES` it is replaced by the starts still
open. Each new host of an index starts the file empty: the alarms of an earlier host were
closed by the supervisor, or stay as they were after a stop in order (as before).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from hikd.events import Event
from hikd.logs import get_logger

log = get_logger(__name__)

COMPACT_BYTES = 4 * 1024 * 1024


def open_alarms_path(state_dir: Path, host: int) -> Path:
    return Path(state_dir) / f"device-host-{host}.open-alarms"


class OpenAlarmsFile:
    """The writer's side: `note(batch)` before the batch is stored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._open: dict[str, bytes] = {}
        self._size = 0
        self._failing = False
        self._fd = self._create(path)

    @staticmethod
    def _create(path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)

    def note(self, batch: Sequence[Event]) -> None:
        lines: list[bytes] = []
        opened = self._open
        for event in batch:
            if event.kind != "alarm":
                continue
            if event.state == "start":
                body = event.to_json_bytes()
                opened[event.id] = body
                lines += (b"+", body, b"\n")
            elif event.state == "stop" and "start_id" in event.attributes:
                start_id = str(event.attributes["start_id"])
                if opened.pop(start_id, None) is not None:
                    lines += (b"-", start_id.encode(), b"\n")
        if not lines:
            return
        data = b"".join(lines)
        try:
            if self._size + len(data) > COMPACT_BYTES:
                self._compact()
            elif os.write(self._fd, data) < len(data):
                raise OSError("the disk took part of it")
            else:
                self._size += len(data)
        except OSError as exc:  # a full disk: the outbox cannot take the batch either
            self._size = COMPACT_BYTES  # written whole again once writing works
            if not self._failing:
                self._failing = True
                log.error(
                    "device host: cannot note its open alarms; a crash now leaves them on",
                    path=str(self.path),
                    error=str(exc),
                )
            return
        self._failing = False

    def _compact(self) -> None:
        """Replace the file by one of the starts still open, written in full before it
        takes the old one's place (a crash meanwhile leaves the old one: it says the same)."""
        data = b"".join(b"+" + body + b"\n" for body in self._open.values())
        tmp = self.path.with_name(self.path.name + ".new")
        fd = self._create(tmp)
        try:
            if os.write(fd, data) < len(data):
                raise OSError("the disk took part of it")
            os.replace(tmp, self.path)
        except OSError:
            os.close(fd)
            raise
        os.close(self._fd)
        self._fd, self._size = fd, len(data)

    def close(self, remove: bool = False) -> None:
        """`remove`: after a stop in order (nobody is to close these)."""
        os.close(self._fd)
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def take_open_alarms(path: Path) -> list[Event]:
    """The starts a dead host left open, oldest first; the file is removed (each is
    closed once)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    opened: dict[str, bytes] = {}
    for line in data.split(b"\n")[:-1]:  # the last piece is empty, or a torn write
        if line.startswith(b"+"):
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                start = Event.from_stored_json(line[1:])
                opened[start.id] = line[1:]
        elif line.startswith(b"-"):
            opened.pop(line[1:].decode("utf-8", "replace"), None)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return [Event.from_stored_json(body) for body in opened.values()]
