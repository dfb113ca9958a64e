"""Recording search and download: the SDK calls of guide 5.14 (3.4 for the flow).

Search: ``NET_DVR_FindFile_V40`` + ``FindNextFile_V40`` + ``FindClose_V30``. Download:
``NET_DVR_GetFileByTime_V40`` (or ``GetFileByName``), then ``PlayBackControl_V40(PLAYSTART)``
(nothing moves before it, guide 3.4), ``GetDownloadPos`` and ``StopGetFile``.

Facts over an ISAPI login (sdk-over-isapi.md part 2 a, b):

* ``dwFileType`` must be 0, anything else (0xff "all" included) fails with error 17 before
  any request is sent;
* the search pages by itself (40 per page, as long as the device says MORE): FindFile_V40
  returns once every page is in, FindNext never says "still searching";
* times are the device's wall clock, written and read as they are (no zone);
* GetFileByName ignores the name (the library asks for channel 0 at 00000000T000000Z), so
  only a download by time is of any use;
* ``GetDownloadPos`` stays 0 for the whole transfer and jumps to 100 only when the device
  signals the end of the stream; a cut stream stays at 0 for ever (no 200, no error).

Times are aware datetimes at this module's edge: `tz` is the zone of the device's clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from hikd.sdk.convert import cstr, datetime_to_time, time_to_datetime
from hikd.sdk.errors import SdkError
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

# FindNextFile_V40 results (guide table 5.18).
FILE_SUCCESS = 1000
FILE_NOFIND = 1001
ISFINDING = 1002
NOMOREFILE = 1003
FILE_EXCEPTION = 1004

# PlayBackControl_V40 commands (guide table 5.24).
PLAYSTART = 1
SET_TRANS_TYPE = 32

ALL_FILE_TYPES = 0xFF
"""dwFileType "all" of the private protocol; an ISAPI login wants 0 (error 17 otherwise)."""

FIND_LIMIT = 4000
"""The guide's cap on one search (5.14.5); ISAPI logins returned 4,500 in one go, private
ones may stop here: the search then goes on from the last file found."""

POS_DONE = 100
POS_NETWORK_ERROR = 200
"""GetDownloadPos: 0-100 progress, 100 finished, 200 network error (guide 5.14.36)."""


@dataclass(frozen=True, slots=True)
class FoundFile:
    """One NET_DVR_FINDDATA_V40 entry."""

    name: str
    start: datetime
    end: datetime
    """Inclusive: the last second in the file, as the device reports it."""
    size: int
    """dwFileSize: the size on the device (not the size a download by time writes)."""
    locked: bool
    file_type: int


def find_files(
    sdk: Library,
    user_id: int,
    channel: int,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    file_type: int = 0,
    timeout_s: float = 60.0,
) -> list[FoundFile]:
    """Every recording of `channel` that overlaps [start, end], oldest first.

    Raises `SdkError` when the search cannot start (error 17 for a file type the login
    does not take, 4 for a channel the device does not have, ...)."""
    found: list[FoundFile] = []
    seen: set[tuple[str, datetime]] = set()
    since = start
    while True:
        batch = _find_once(sdk, user_id, channel, since, end, tz, file_type, timeout_s)
        fresh = [f for f in batch if (f.name, f.start) not in seen]
        for f in fresh:
            seen.add((f.name, f.start))
        found.extend(fresh)
        # A full batch may have been cut at the guide's limit: go on after the last one.
        if len(batch) < FIND_LIMIT or not fresh:
            return found
        since = max(f.start for f in fresh)


def _find_once(
    sdk: Library,
    user_id: int,
    channel: int,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    file_type: int,
    timeout_s: float,
) -> list[FoundFile]:
    lib = sdk.lib
    cond = ffi.new("NET_DVR_FILECOND_V40 *")
    cond.lChannel = channel
    cond.dwFileType = file_type
    cond.dwIsLocked = 0xFF  # locked or not
    cond.dwUseCardNo = 0
    datetime_to_time(start, cond.struStartTime, tz)
    datetime_to_time(end, cond.struStopTime, tz)
    with sdk.search_lock:
        handle = int(lib.NET_DVR_FindFile_V40(user_id, cond))
        if handle < 0:
            raise sdk.last_error()
    out: list[FoundFile] = []
    data = ffi.new("NET_DVR_FINDDATA_V40 *")
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            result = int(lib.NET_DVR_FindNextFile_V40(handle, data))
            if result == FILE_SUCCESS:
                out.append(_found(data, tz))
            elif result == ISFINDING:
                # Private-protocol devices answer while they search; ISAPI never does.
                if time.monotonic() > deadline:
                    raise SdkError(10, f"the recording search did not finish in {timeout_s:g} s")
                time.sleep(0.005)
            elif result in (NOMOREFILE, FILE_NOFIND):
                return out
            elif result == FILE_EXCEPTION:
                raise SdkError(10, "the device reported an exception during the search")
            else:
                raise sdk.last_error()
    finally:
        lib.NET_DVR_FindClose_V30(handle)


def _found(data: Any, tz: tzinfo) -> FoundFile:
    start = time_to_datetime(data.struStartTime, tz)
    end = time_to_datetime(data.struStopTime, tz)
    if start is None or end is None:
        # Without <timeSpan> the library reports 0000-00-00 (part 2 a): no usable span.
        raise SdkError(0, f"the device reported recording {cstr(data.sFileName)!r} without times")
    return FoundFile(
        name=cstr(data.sFileName),
        start=start,
        end=end,
        size=int(data.dwFileSize),
        locked=bool(data.byLocked),
        file_type=int(data.byFileType),
    )


def start_by_time(
    sdk: Library, user_id: int, channel: int, start: datetime, end: datetime, tz: tzinfo, path: Path
) -> int:
    """NET_DVR_GetFileByTime_V40 + PLAYSTART -> download handle. The library writes `path`
    itself (an absolute path, guide 5.14.33); `end` is inclusive like the search's."""
    cond = ffi.new("NET_DVR_PLAYCOND *")
    cond.dwChannel = channel
    datetime_to_time(start, cond.struStartTime, tz)
    datetime_to_time(end, cond.struStopTime, tz)
    target = ffi.new("char[]", str(path.absolute()).encode())
    handle = int(sdk.lib.NET_DVR_GetFileByTime_V40(user_id, target, cond))
    if handle < 0:
        raise sdk.last_error()
    _play_start(sdk, handle)
    return handle


def start_by_name(sdk: Library, user_id: int, name: str, path: Path) -> int:
    """NET_DVR_GetFileByName + PLAYSTART -> download handle. Private-protocol logins only:
    over ISAPI the library ignores the name (part 2 b)."""
    if len(name.encode()) >= 100:
        raise ValueError("a recording name has fewer than 100 bytes (guide 5.14.32)")
    file_name = ffi.new("char[]", name.encode())
    target = ffi.new("char[]", str(path.absolute()).encode())
    handle = int(sdk.lib.NET_DVR_GetFileByName(user_id, file_name, target))
    if handle < 0:
        raise sdk.last_error()
    _play_start(sdk, handle)
    return handle


def _play_start(sdk: Library, handle: int) -> None:
    # lpInBuffer of PLAYSTART is a resume offset in bytes; NULL starts at 0 (guide 5.14.34).
    if not sdk.lib.NET_DVR_PlayBackControl_V40(handle, PLAYSTART, ffi.NULL, 0, ffi.NULL, ffi.NULL):
        error = sdk.last_error()
        sdk.lib.NET_DVR_StopGetFile(handle)
        raise error


def download_pos(sdk: Library, handle: int) -> int:
    """0-100 progress (100 = finished), 200 = network error, -1 = the call failed."""
    return int(sdk.lib.NET_DVR_GetDownloadPos(handle))


def stop_download(sdk: Library, handle: int) -> None:
    """NET_DVR_StopGetFile: releases the handle and closes the file. Always returns TRUE
    over ISAPI, even for a cut stream (part 2 b); a failure is not worth raising."""
    sdk.lib.NET_DVR_StopGetFile(handle)
