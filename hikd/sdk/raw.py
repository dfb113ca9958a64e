"""What an SDK message callback copies out of the vendor's buffers before it returns.

The buffers passed to a callback are only valid during the call (seed 5.16), so the
callback copies bytes into a `RawAlarm` and enqueues it; all parsing happens later on
the decoder thread. The sender (NET_DVR_ALARMER) is copied whole too and read here, beside
its layout, by `RawAlarm.sender()`: reading its four fields in the callback doubled the
callback's time (bench/bench_alarms.py part 3, median 32 -> 51 us).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hikd.sdk.convert import cstr
from hikd.sdk.ffi import ffi

ALARMER_SIZE = ffi.sizeof("NET_DVR_ALARMER")


@dataclass(frozen=True, slots=True)
class Alarmer:
    """The fields of NET_DVR_ALARMER hikd uses: who sent a message."""

    user_id: int | None
    """lUserID when byUserIDValid: the login the message came in on (arming)."""
    serial: str
    device_ip: str
    link_port: int


NO_SENDER = Alarmer(None, "", "", 0)

NO_ALARMER = b""
"""The copied NET_DVR_ALARMER of a message without one (the library passed NULL)."""


def parse_alarmer(data: bytes) -> Alarmer:
    """The sender fields of a copied NET_DVR_ALARMER."""
    if len(data) < ALARMER_SIZE:
        return NO_SENDER
    a = ffi.from_buffer("NET_DVR_ALARMER *", data)
    return Alarmer(
        user_id=int(a.lUserID) if a.byUserIDValid else None,
        # Over ISAPI bySerialValid is 1 but the serial is empty (part 1 §2, quirk 6).
        serial=cstr(a.sSerialNumber) if a.bySerialValid else "",
        device_ip=cstr(a.sDeviceIP) if a.byDeviceIPValid else "",
        link_port=int(a.wLinkPort) if a.byLinkPortValid else 0,
    )


@dataclass(slots=True)
class RawPicture:
    """One picture of a COMM_ISAPI_ALARM (NET_DVR_ALARM_ISAPI_PICDATA), copied."""

    filename: str
    pic_type: int
    data: bytes


@dataclass(slots=True)
class RawAlarm:
    command: int
    """lCommand (COMM_ALARM_V30, COMM_ISAPI_ALARM, 0x7fff error message, ...)."""
    alarmer: bytes
    """The whole NET_DVR_ALARMER struct (372 bytes), copied; `sender()` reads it."""
    payload: bytes
    """For COMM_ISAPI_ALARM the alert body (pAlarmData, dwAlarmDataLen bytes, trailing
    CRLF included); for every other command the dwBufLen bytes of pAlarmInfo."""
    received_ns: int
    """time.time_ns() when the callback ran."""
    source: Literal["arming", "listen"] = "arming"
    data_type: int = 0
    """COMM_ISAPI_ALARM only: byDataType, 0 binary, 1 XML, 2 JSON."""
    pictures: list[RawPicture] = field(default_factory=list)
    listen_port: int = 0
    """For source == "listen": the local port of the listen server that got it."""

    def sender(self) -> Alarmer:
        """Who sent the message (login, serial, address), read from the copied struct."""
        return parse_alarmer(self.alarmer)
