"""NET_DVR_TIME(_EX) <-> datetime, fixed char arrays <-> str, and the alarm UTC offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hikd.sdk.convert import (
    cstr,
    datetime_to_time,
    set_cstr,
    signed_char,
    time_to_datetime,
    utc_offset,
)
from hikd.sdk.ffi import ffi

PLUS8 = timezone(timedelta(hours=8))


@pytest.mark.parametrize("ctype", ["NET_DVR_TIME", "NET_DVR_TIME_EX"])
def test_all_zero_time_is_none(ctype: str) -> None:
    assert time_to_datetime(ffi.new(f"{ctype} *"), UTC) is None


def test_time_fields_to_aware_datetime() -> None:
    t = ffi.new("NET_DVR_TIME *")
    t.dwYear, t.dwMonth, t.dwDay, t.dwHour, t.dwMinute, t.dwSecond = 2024, 5, 1, 10, 2, 11
    expected = datetime(2024, 5, 1, 10, 2, 11, tzinfo=PLUS8)
    assert time_to_datetime(t, PLUS8) == expected
    assert time_to_datetime(t[0], PLUS8) == expected  # the struct as well as a pointer
    assert time_to_datetime(t, PLUS8).tzinfo is PLUS8  # type: ignore[union-attr]


def test_time_ex_fields() -> None:
    t = ffi.new("NET_DVR_TIME_EX *")
    t.wYear, t.byMonth, t.byDay, t.byHour, t.byMinute, t.bySecond = 2024, 2, 29, 23, 59, 59
    assert time_to_datetime(t, UTC) == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "fields",
    [
        (2024, 13, 1, 0, 0, 0),  # month 13
        (2023, 2, 29, 0, 0, 0),  # not a leap year
        (2024, 4, 31, 0, 0, 0),
        (2024, 1, 1, 24, 0, 0),
        (2024, 1, 1, 0, 60, 0),
        (0, 0, 0, 0, 0, 5),  # only seconds set
    ],
)
def test_invalid_time_is_none(fields: tuple[int, ...]) -> None:
    t = ffi.new("NET_DVR_TIME *")
    t.dwYear, t.dwMonth, t.dwDay, t.dwHour, t.dwMinute, t.dwSecond = fields
    assert time_to_datetime(t, UTC) is None


def test_other_struct_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="NET_DVR_TIME"):
        time_to_datetime(ffi.new("NET_DVR_JPEGPARA *"), UTC)
    with pytest.raises(TypeError, match="NET_DVR_TIME"):
        datetime_to_time(datetime(2024, 1, 1), ffi.new("NET_DVR_JPEGPARA *"))


def test_datetime_to_time_converts_to_the_device_zone() -> None:
    t = ffi.new("NET_DVR_TIME *")
    datetime_to_time(datetime(2024, 5, 1, 23, 30, 5, tzinfo=UTC), t, PLUS8)
    assert (t.dwYear, t.dwMonth, t.dwDay, t.dwHour, t.dwMinute, t.dwSecond) == (
        2024,
        5,
        2,
        7,
        30,
        5,
    )


def test_datetime_to_time_keeps_wall_clock_without_zone() -> None:
    t = ffi.new("NET_DVR_TIME_EX *")
    datetime_to_time(datetime(2024, 5, 1, 23, 30, 5, tzinfo=UTC), t)
    assert (t.wYear, t.byMonth, t.byDay, t.byHour, t.byMinute, t.bySecond) == (
        2024,
        5,
        1,
        23,
        30,
        5,
    )
    datetime_to_time(datetime(2024, 6, 2, 1, 2, 3), t[0], PLUS8)  # naive: written as is
    assert time_to_datetime(t, PLUS8) == datetime(2024, 6, 2, 1, 2, 3, tzinfo=PLUS8)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31)))
def test_round_trip(dt: datetime) -> None:
    dt = dt.replace(microsecond=0)
    for ctype in ("NET_DVR_TIME *", "NET_DVR_TIME_EX *"):
        t = ffi.new(ctype)
        datetime_to_time(dt, t)
        assert time_to_datetime(t, UTC) == dt.replace(tzinfo=UTC)


def test_cstr_reads_up_to_the_nul() -> None:
    alarmer = ffi.new("NET_DVR_ALARMER *")
    ffi.memmove(alarmer.sDeviceIP, b"10.0.0.5\0garbage", 16)
    assert cstr(alarmer.sDeviceIP) == "10.0.0.5"  # char[128]
    ffi.memmove(alarmer.sSerialNumber, b"DS-7608NI0120240101\0", 20)
    assert cstr(alarmer.sSerialNumber) == "DS-7608NI0120240101"  # BYTE[48]
    assert cstr(alarmer.sDeviceName) == ""


def test_cstr_full_array_without_nul() -> None:
    name = ffi.new("char[8]", b"ABCDEFGH")
    assert cstr(name) == "ABCDEFGH"


def test_cstr_replaces_bad_utf8() -> None:
    assert cstr(ffi.new("char[8]", b"a\xffb")) == "a\ufffdb"
    assert cstr(ffi.new("char[8]", "é".encode())) == "é"


def test_cstr_pointer_and_bytes() -> None:
    text = ffi.new("char[]", b"hello")
    assert cstr(ffi.cast("char *", text)) == "hello"
    assert cstr(ffi.NULL) == ""
    assert cstr(b"abc\0def") == "abc"
    with pytest.raises(TypeError):
        cstr(ffi.new("int *"))


def test_set_cstr_writes_and_zero_fills() -> None:
    login = ffi.new("NET_DVR_USER_LOGIN_INFO *")
    ffi.memmove(login.sUserName, b"x" * 64, 64)
    set_cstr(login.sUserName, "admin")
    assert bytes(ffi.buffer(login.sUserName)) == b"admin" + b"\0" * 59
    set_cstr(login.sDeviceAddress, "a" * 128)  # char[129]: 128 bytes and the NUL
    assert cstr(login.sDeviceAddress) == "a" * 128


def test_set_cstr_too_long() -> None:
    login = ffi.new("NET_DVR_USER_LOGIN_INFO *")
    with pytest.raises(ValueError, match="password is too long for the SDK: 64 bytes, at most 63"):
        set_cstr(login.sPassword, "p" * 64, "password")
    # Length counts UTF-8 bytes, not characters.
    with pytest.raises(ValueError, match="42 bytes"):
        set_cstr(ffi.new("char[32]"), "é" * 21)
    assert bytes(ffi.buffer(login.sPassword)) == b"\0" * 64  # nothing written


def test_set_cstr_needs_a_byte_array() -> None:
    with pytest.raises(TypeError):
        set_cstr(ffi.new("int[4]"), "a")
    with pytest.raises(TypeError):
        set_cstr(ffi.new("char *"), "a")


def test_signed_char() -> None:
    header = ffi.new("NET_DVR_ALRAM_FIXED_HEADER *")
    header.cTimeDifferenceH = b"\xf8"
    assert header.cTimeDifferenceH == b"\xf8"  # cffi reads char as bytes
    assert signed_char(header.cTimeDifferenceH) == -8
    assert signed_char(b"\x08") == 8
    assert signed_char(200) == -56


@pytest.mark.parametrize(
    ("flag", "hours", "minutes", "expected"),
    [
        (1, 8, 0, timedelta(hours=8)),
        (1, 5, 30, timedelta(hours=5, minutes=30)),
        (1, -3, -30, timedelta(hours=-3, minutes=-30)),
        (1, -3, 30, timedelta(hours=-3, minutes=-30)),
        (1, 0, 0, timedelta(0)),
        (0, 8, 0, None),  # flag says the fields are not valid
        (1, 99, 0, None),
    ],
)
def test_utc_offset(flag: int, hours: int, minutes: int, expected: timedelta | None) -> None:
    header = ffi.new("NET_DVR_ALRAM_FIXED_HEADER *")
    header.byTimeDiffFlag = flag
    header.cTimeDifferenceH = (hours & 0xFF).to_bytes(1, "little")
    header.cTimeDifferenceM = (minutes & 0xFF).to_bytes(1, "little")
    tz = utc_offset(header.byTimeDiffFlag, header.cTimeDifferenceH, header.cTimeDifferenceM)
    assert (tz.utcoffset(None) if tz else None) == expected
