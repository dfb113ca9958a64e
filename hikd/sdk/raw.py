"""What an SDK message callback copies out of the vendor's buffers before it returns.

The buffers passed to a callback are only valid during the call (seed 5.16), so the
callback copies bytes into a `RawAlarm` and enqueues it; all parsing happens later on
the decoder thread. Only the sender (NET_DVR_ALARMER) is read in the callback itself: four
fields, so the decoder thread never goes back to the SDK's layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Alarmer:
    """The fields of NET_DVR_ALARMER hikd uses: who sent a message."""

    user_id: int | None
    """lUserID when byUserIDValid: the login the message came in on (arming)."""
    serial: str
    device_ip: str
    link_port: int


NO_ALARMER = Alarmer(None, "", "", 0)
"""A message without (valid) sender fields."""


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
    alarmer: Alarmer
    """The sender, read from NET_DVR_ALARMER in the callback."""
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
