"""The device's own log: NET_DVR_FindDVRLog_V30 / FindNextLog_V30 / FindLogClose_V30
(seed 5.31.14-16, log types in chapter 6.5).

Works on both protocols; over ISAPI the library turns it into ``POST
/ISAPI/ContentMgmt/logSearch`` and pages by itself (sdk-over-isapi.md part 2 e). Facts
from there: the time is the device's wall clock as-is, ``sNetUser`` and the remote
address are filled, ``sInfo`` and the channel stay empty over ISAPI.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from hikd.sdk.constants import (
    NET_DVR_FILE_EXCEPTION,
    NET_DVR_FILE_NOFIND,
    NET_DVR_FILE_SUCCESS,
    NET_DVR_ISFINDING,
    NET_DVR_NOMOREFILE,
)
from hikd.sdk.convert import cstr, datetime_to_time, time_to_datetime
from hikd.sdk.errors import NetworkError, SdkError, log_type_names
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

SELECT_BY_TIME = 2
"""lSelectMode: 0 all, 1 by type, 2 by time, 3 by time and type (seed 5.31.14)."""
_FINDING_WAIT_S = 0.05
_FINDING_LIMIT_S = 30.0


@dataclass(frozen=True, slots=True)
class LogRecord:
    time: datetime | None
    """strLogTime in the device's zone; None when the device sent no valid time."""
    major: int
    minor: int
    major_name: str
    minor_name: str
    user: str
    """The network user (sNetUser), else the front-panel user (sPanelUser)."""
    remote_host: str
    channel: int
    disk: int
    alarm_input: int
    alarm_output: int
    parameter_type: int
    info: str


def search_log(
    sdk: Library, user_id: int, start: datetime, stop: datetime, tz: tzinfo
) -> Generator[LogRecord, None, None]:
    """Every log entry between ``start`` and ``stop`` (inclusive), as the device returns
    them. The search handle is closed when the iterator is exhausted or closed."""
    begin = ffi.new("NET_DVR_TIME *")
    end = ffi.new("NET_DVR_TIME *")
    datetime_to_time(start, begin, tz)
    datetime_to_time(stop, end, tz)
    handle = int(sdk.lib.NET_DVR_FindDVRLog_V30(user_id, SELECT_BY_TIME, 0, 0, begin, end, 0))
    if handle < 0:
        raise sdk.last_error()
    try:
        entry = ffi.new("NET_DVR_LOG_V30 *")
        finding_since: float | None = None
        while True:
            result = int(sdk.lib.NET_DVR_FindNextLog_V30(handle, entry))
            if result == NET_DVR_FILE_SUCCESS:
                finding_since = None
                yield _record(entry, tz)
            elif result == NET_DVR_ISFINDING:
                # The device is still searching: ask again shortly, within a deadline.
                now = time.monotonic()
                finding_since = finding_since if finding_since is not None else now
                if now - finding_since > _FINDING_LIMIT_S:
                    raise NetworkError(10, "the device did not finish the log search in time")
                time.sleep(_FINDING_WAIT_S)
            elif result in (NET_DVR_NOMOREFILE, NET_DVR_FILE_NOFIND):
                return
            elif result == NET_DVR_FILE_EXCEPTION:
                raise SdkError(NET_DVR_FILE_EXCEPTION, "the device failed during the log search")
            else:
                raise sdk.last_error()
    finally:
        sdk.lib.NET_DVR_FindLogClose_V30(handle)


def _record(entry: Any, tz: tzinfo) -> LogRecord:
    major, minor = int(entry.dwMajorType), int(entry.dwMinorType)
    major_name, minor_name = log_type_names(major, minor)
    info_len = min(int(entry.dwInfoLen), len(entry.sInfo))
    info = ffi.buffer(entry.sInfo, info_len)[:] if info_len else b""
    return LogRecord(
        time=time_to_datetime(entry.strLogTime, tz),
        major=major,
        minor=minor,
        major_name=major_name,
        minor_name=minor_name,
        user=cstr(entry.sNetUser) or cstr(entry.sPanelUser),
        remote_host=cstr(entry.struRemoteHostAddr.sIpV4),
        channel=int(entry.dwChannel),
        disk=int(entry.dwDiskNumber),
        alarm_input=int(entry.dwAlarmInPort),
        alarm_output=int(entry.dwAlarmOutPort),
        parameter_type=int(entry.dwParaType),
        info=cstr(info),
    )
