"""Struct layouts read from bytes a callback copied: the decoders' only door to cffi.

The alarm decoders read the vendor's structs (HCNetSDK.h; the guide's table 5.30/5.32)
from the bytes the message callback copied out (`hikd.sdk.raw.RawAlarm.payload`). They
get a read-only view here and never import cffi themselves.
"""

from __future__ import annotations

from typing import Any

from hikd.sdk.convert import cstr
from hikd.sdk.ffi import ffi


def sizeof(name: str) -> int:
    """The size in bytes of struct `name`."""
    return int(ffi.sizeof(name))


def view(name: str, payload: bytes) -> Any | None:
    """A read-only view of `payload` as struct `name`, or None when it is too short."""
    if len(payload) < ffi.sizeof(name):
        return None
    return ffi.from_buffer(f"{name} *", payload)


def text(array: Any) -> str:
    """A fixed ``char[N]`` field of a view as text (`cstr`: UTF-8, else GBK)."""
    return cstr(array)
