"""Conversions between the SDK's C values and Python: times and fixed-size strings.

The SDK reports times as broken-down wall-clock fields without a zone (NET_DVR_TIME,
NET_DVR_TIME_EX); the caller says which zone the device's clock is in. Strings live in
fixed `char[N]` or `BYTE[N]` arrays, NUL-terminated when shorter than the array.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from hikd.sdk.ffi import ffi

_TIME = ffi.typeof("NET_DVR_TIME")
_TIME_EX = ffi.typeof("NET_DVR_TIME_EX")


def _struct(t: Any) -> Any:
    """The struct itself for a struct or a pointer to one."""
    if ffi.typeof(t).kind == "pointer":
        return t[0]
    return t


def _fields(t: Any) -> tuple[int, int, int, int, int, int]:
    t = _struct(t)
    ctype = ffi.typeof(t)
    if ctype is _TIME:
        return (t.dwYear, t.dwMonth, t.dwDay, t.dwHour, t.dwMinute, t.dwSecond)
    if ctype is _TIME_EX:
        return (t.wYear, t.byMonth, t.byDay, t.byHour, t.byMinute, t.bySecond)
    raise TypeError(f"expected NET_DVR_TIME or NET_DVR_TIME_EX, got {ctype.cname}")


def time_to_datetime(t: Any, tz: tzinfo) -> datetime | None:
    """A NET_DVR_TIME or NET_DVR_TIME_EX (or a pointer to one) as an aware datetime.

    `tz` is the zone of the device's clock. An all-zero time (the SDK's "not set") and
    an impossible one (month 13, 31 February, ...) give None."""
    fields = _fields(t)
    if not any(fields):
        return None
    try:
        return datetime(*fields, tzinfo=tz)
    except ValueError:
        return None


def datetime_to_time(dt: datetime, out: Any, tz: tzinfo | None = None) -> None:
    """Write `dt` into a NET_DVR_TIME or NET_DVR_TIME_EX (or a pointer to one).

    With `tz` (the device clock's zone) an aware `dt` is converted to it first; otherwise
    the wall-clock fields of `dt` are written as they are."""
    if tz is not None and dt.tzinfo is not None:
        dt = dt.astimezone(tz)
    out = _struct(out)
    ctype = ffi.typeof(out)
    if ctype is _TIME:
        out.dwYear, out.dwMonth, out.dwDay = dt.year, dt.month, dt.day
        out.dwHour, out.dwMinute, out.dwSecond = dt.hour, dt.minute, dt.second
    elif ctype is _TIME_EX:
        out.wYear, out.byMonth, out.byDay = dt.year, dt.month, dt.day
        out.byHour, out.byMinute, out.bySecond = dt.hour, dt.minute, dt.second
    else:
        raise TypeError(f"expected NET_DVR_TIME or NET_DVR_TIME_EX, got {ctype.cname}")


def signed_char(value: bytes | int) -> int:
    """A C `char` field as a signed number. cffi reads `char` as a 1-byte `bytes`; the
    header uses it for small signed numbers (e.g. cTimeDifferenceH)."""
    if isinstance(value, bytes):
        value = value[0] if value else 0
    return value - 256 if value > 127 else value


def utc_offset(flag: int, hours: bytes | int, minutes: bytes | int) -> timezone | None:
    """The device's UTC offset sent with some alarms (byTimeDiffFlag, cTimeDifferenceH,
    cTimeDifferenceM, e.g. NET_DVR_ALRAM_FIXED_HEADER). Only valid when the flag is 1;
    the minutes carry their own sign (-30, 30, 45). None when absent or out of range."""
    if flag != 1:
        return None
    h, m = signed_char(hours), signed_char(minutes)
    if not -12 <= h <= 14 or not -59 <= m <= 59:
        return None
    if h < 0 and m > 0:
        m = -m  # a western zone with a half hour: both parts point west
    try:
        return timezone(timedelta(hours=h, minutes=m))
    except ValueError:
        return None


def cstr(field: Any) -> str:
    """The text in a fixed `char[N]`/`BYTE[N]` array, a `char *`, or bytes: up to the first
    NUL (or the whole array when full); UTF-8, else GBK (the vendor's Chinese firmware
    names devices and cameras in it), else UTF-8 with bad bytes replaced."""
    if isinstance(field, bytes | bytearray):
        data = bytes(field)
    else:
        ctype = ffi.typeof(field)
        if ctype.kind == "pointer":
            data = ffi.string(field) if field != ffi.NULL else b""
        elif ctype.kind == "array":
            data = bytes(ffi.buffer(field))
        else:
            raise TypeError(f"expected a char array or pointer, got {ctype.cname}")
    data = data.split(b"\0", 1)[0]
    for encoding in ("utf-8", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def set_cstr(field: Any, value: str, what: str = "value") -> None:
    """Write `value` (UTF-8) into a fixed `char[N]`/`BYTE[N]` array, NUL-terminated and
    zero-filled. Raises ValueError when it needs more than N-1 bytes."""
    ctype = ffi.typeof(field)
    if ctype.kind != "array" or ctype.item.kind != "primitive" or ffi.sizeof(ctype.item) != 1:
        raise TypeError(f"expected a char or BYTE array, got {ctype.cname}")
    size = len(field)
    data = value.encode("utf-8")
    if len(data) >= size:
        raise ValueError(f"{what} is too long for the SDK: {len(data)} bytes, at most {size - 1}")
    ffi.memmove(field, data.ljust(size, b"\0"), size)
