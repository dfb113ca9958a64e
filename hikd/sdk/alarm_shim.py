"""The vendor library's message callback in C (hikd/sdk/native/alarm_shim.c), and its queues.

The Python callback (`hikd.sdk.alarms.MessageCallback`) takes the interpreter's lock on one
of the library's ~32 threads for every message, against the decoder, the outbox writer and
the library's other threads. The C callback copies the same bytes into a queue of its own,
stamps the receive time and signals an eventfd, without Python; the decoder takes every
queued record with one call, which waits on the eventfd first when none is queued (cffi
releases the interpreter's lock around it).

The shared library is built by ``make shim`` beside its source (never installed by pip);
where it is missing, stale, or ``HIKD_PY_CALLBACK=1`` is set, hikd runs the Python callback.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hikd.sdk.ffi import ffi
from hikd.sdk.raw import RawAlarm, RawPicture

SHIM_PATH = Path(__file__).with_name("native") / "libhikd_alarms.so"
PY_CALLBACK_ENV = "HIKD_PY_CALLBACK"
SHIM_ABI = 2
"""What the record format and the functions are (alarm_shim.c SHIM_ABI): a library built
from another version of the source is not used."""

_HEAD = struct.Struct("<IiqIIIII4x")  # alarm_shim.c struct record_head
_PICTURE = struct.Struct("<III")  # struct picture_head: name length, type, data length
_LISTEN = 1 << 16
_FIRST_BUFFER = 1 << 20


@functools.cache
def _load() -> tuple[Any | None, str]:
    """The loaded shim (loaded once: the library may call it for the life of the process,
    so it is never unloaded) or None, and why."""
    if not SHIM_PATH.is_file():
        return None, "the C callback is not built (make shim)"
    try:
        lib = ffi.dlopen(str(SHIM_PATH))
        abi = int(lib.hikd_alarms_abi())
    except (OSError, AttributeError) as exc:
        return None, f"the C callback cannot be loaded ({exc}): make shim"
    if abi != SHIM_ABI:
        return None, f"the C callback was built from another version (ABI {abi}): make shim"
    return lib, "built"


def load_shim() -> tuple[Any | None, str]:
    """The shim's library, or None and why the Python callback runs instead."""
    if os.environ.get(PY_CALLBACK_ENV, "") not in ("", "0"):
        return None, f"{PY_CALLBACK_ENV} is set"
    return _load()


@dataclass(frozen=True, slots=True)
class ShimCallback:
    """The C callback with the user pointer that routes its messages to one queue."""

    cdata: Any
    user: Any


class ShimQueue:
    """One queue of the C callback, drained by one decoder thread."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self.index = int(lib.hikd_alarms_open())
        if self.index < 0:
            raise OSError("the C callback has no queue left (or no eventfd)")
        self._queued = lib.hikd_alarms_queued(self.index)
        self._counts = ffi.new("uint64_t[3]")
        self._buffer = bytearray()
        self._cbuffer: Any = None
        self._grow(_FIRST_BUFFER)
        self.errors = 0
        """Messages the callback could not copy (out of memory), since the queue opened."""
        self.late = 0
        """Messages that came after `close`."""
        self.pending = False
        """Records stayed queued at the last `take` (they did not fit its buffer)."""

    def callback(self, source: Literal["arming", "listen"], port: int = 0) -> ShimCallback:
        listen = 1 if source == "listen" else 0
        if not listen:
            # Where a message goes if the library ever drops the user pointer.
            self._lib.hikd_alarms_set_arming(self.index)
        user = self._lib.hikd_alarms_user(self.index, listen, port)
        return ShimCallback(self._lib.hikd_alarm_message, user)

    @property
    def queued(self) -> int:
        """Records waiting now (read without a call: cheap enough to ask per message)."""
        return int(self._queued[0])

    def wake(self) -> None:
        """Ends a `take` waiting for records (hikd queued work of its own)."""
        self._lib.hikd_alarms_wake(self.index)

    def take(self, timeout_s: float = 0.0) -> list[RawAlarm]:
        """Every queued record, oldest first, in one call; when none is queued, that call
        waits for one (or `wake`) up to `timeout_s`. A second call only to make room."""
        lib, counts, size = self._lib, self._counts, len(self._buffer)
        wait_ms = max(0, math.ceil(timeout_s * 1000))
        used = int(lib.hikd_alarms_take(self.index, self._cbuffer, size, counts, wait_ms))
        if used == 0 and counts[0] > size:
            self._grow(max(int(counts[0]), 2 * size))
            size = len(self._buffer)
            used = int(lib.hikd_alarms_take(self.index, self._cbuffer, size, counts, 0))
        self.pending = bool(counts[0])
        self.errors, self.late = int(counts[1]), int(counts[2])
        # One copy of what was taken, then slices of it: cheaper than a memoryview per field.
        return parse_records(bytes(self._buffer[:used])) if used else []

    def close(self) -> None:
        """Free what is queued; later messages for this queue are only counted. Only once
        no `take` runs (the decoder has ended)."""
        self._lib.hikd_alarms_close(self.index)

    def _grow(self, size: int) -> None:
        self._buffer = bytearray(size)
        self._cbuffer = ffi.from_buffer("char[]", self._buffer)


def parse_records(data: bytes) -> list[RawAlarm]:
    """The `RawAlarm`s of the records in `data` (alarm_shim.c struct record_head)."""
    out: list[RawAlarm] = []
    at, end = 0, len(data)
    head, picture = _HEAD.unpack_from, _PICTURE.unpack_from
    while at < end:
        size, command, received, route, alarmer_len, payload_len, data_type, count = head(data, at)
        p = at + _HEAD.size
        alarmer = data[p : p + alarmer_len]
        p += alarmer_len
        payload = data[p : p + payload_len]
        p += payload_len
        pictures: list[RawPicture] = []
        for _ in range(count):
            name_len, pic_type, data_len = picture(data, p)
            p += _PICTURE.size
            name = data[p : p + name_len].decode("utf-8", "replace")
            p += name_len
            pictures.append(RawPicture(name, pic_type, data[p : p + data_len]))
            p += data_len
        # RawAlarm's fields in order: command, alarmer, payload, received_ns, source,
        # data_type, pictures, listen_port.
        out.append(
            RawAlarm(
                command,
                alarmer,
                payload,
                received,
                "listen" if route & _LISTEN else "arming",
                data_type,
                pictures,
                route & 0xFFFF,
            )
        )
        at += size
    return out
