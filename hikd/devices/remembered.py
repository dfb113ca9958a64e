"""What a device host read about its devices after each login, for the host that takes its
place after a crash (README "Processes": what a crash costs in time).

After a login a session reads the device's channel map and identity: four ISAPI requests
(`read_channel_map`, `read_identity`), about a third of a login's time and more of its CPU in
the host than the login itself. A host that crashed had read them, and its crash changed
nothing on the devices: the host started in its place (`Start.after_crash`) uses what the
dead one read, for each device whose login gives the same facts, once; a later login of that
device (it rebooted, its session was lost) reads them again, as the dead host would have.
Any other start reads everything.

One JSON line per login, appended to ``<state_dir>/device-host-<N>.devices`` with one
``write`` (a crash, even SIGKILL, loses nothing written); past `COMPACT_BYTES` the file keeps
only each device's last line; a host that stops in order removes the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hikd.devices.capabilities.channels import Channel, ChannelMap
from hikd.logs import get_logger
from hikd.sdk.login import DeviceFacts

log = get_logger(__name__)

COMPACT_BYTES = 4 * 1024 * 1024


def remembered_path(state_dir: Path, host: int) -> Path:
    return Path(state_dir) / f"device-host-{host}.devices"


class RememberedDevices:
    """`take` what the host before read (after a crash only); `keep` what this one read."""

    def __init__(self, path: Path, after_crash: bool) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, Any]] = self._read(path) if after_crash else {}
        self._size = 0
        self._fd: int | None = None
        try:
            self._fd = self._open(path)
        except OSError as exc:
            log.warning("cannot keep what was read of the devices", path=str(path), error=str(exc))

    @staticmethod
    def _open(path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        known: dict[str, dict[str, Any]] = {}
        try:
            lines = path.read_bytes().splitlines()
        except OSError:
            return known
        for line in lines:
            try:
                record = json.loads(line)
                known[record["name"]] = record
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by the crash
        return known

    def take(self, name: str, facts: DeviceFacts) -> tuple[ChannelMap, dict[str, Any]] | None:
        """What the host before read after `name`'s login with the same `facts`; once."""
        with self._lock:
            record = self._known.pop(name, None)
        if record is None or record.get("facts") != asdict(facts):
            return None
        try:
            channels = ChannelMap([Channel(**c) for c in record["channels"]])
        except (TypeError, KeyError):
            return None
        return channels, record["identity"]

    def keep(
        self, name: str, facts: DeviceFacts, channels: ChannelMap, identity: dict[str, Any]
    ) -> None:
        record = {"name": name, "facts": asdict(facts), "channels": channels.to_list()}
        record["identity"] = identity
        line = json.dumps(record, separators=(",", ":"))
        if json.loads(line) != record:  # only what reads back the same is used again
            return
        with self._lock, contextlib.suppress(OSError):  # a full disk: the next host reads
            if self._fd is None:
                return
            self._size += os.write(self._fd, line.encode() + b"\n")
            if self._size > COMPACT_BYTES:
                self._compact()

    def _compact(self) -> None:
        """Each device's last line only (a device that logs in again and again)."""
        latest = self._read(self.path)
        temporary = self.path.with_name(self.path.name + ".new")
        data = b"".join(
            json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in latest.values()
        )
        temporary.write_bytes(data)
        os.replace(temporary, self.path)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = len(data)

    def close(self, remove: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink()


CURRENT: RememberedDevices | None = None
"""This process's (a device host's, set by `hikd.hosts.child`); None: nothing remembered."""


def take(name: str, facts: DeviceFacts) -> tuple[ChannelMap, dict[str, Any]] | None:
    return CURRENT.take(name, facts) if CURRENT is not None else None


def keep(name: str, facts: DeviceFacts, channels: ChannelMap, identity: dict[str, Any]) -> None:
    if CURRENT is not None:
        CURRENT.keep(name, facts, channels, identity)
