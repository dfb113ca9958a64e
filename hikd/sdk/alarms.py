"""Alarm channels and listen servers: the SDK calls of seed 5.16 / 5.17 and their callback.

The message callback runs on the library's own thread with buffers that are valid only
during the call. It copies the bytes into a `RawAlarm`, hands it to ``deliver`` (a queue's
``put_nowait``) and returns: no SDK call, no parsing, no I/O, no lock held for long.
This is the Python route; the C callback (`hikd.sdk.alarm_shim`) copies the same bytes
without the interpreter's lock and is used wherever it is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hikd.sdk.alarm_shim import ShimCallback
from hikd.sdk.alarm_types import CHANNEL_TYPES, DISK_TYPES, IO_TYPES
from hikd.sdk.constants import COMM_ALARM_V40, COMM_ISAPI_ALARM
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library
from hikd.sdk.raw import ALARMER_SIZE, RawAlarm, RawPicture

_V40_SIZE = ffi.sizeof("NET_DVR_ALARMINFO_V40")
_V40_LIST_MAX = 4096
_MSG_CALLBACK = "void(int, NET_DVR_ALARMER *, char *, unsigned int, void *)"

Deliver = Callable[[RawAlarm], None]


class MessageCallback:
    """A live cffi callback that turns each message into a `RawAlarm` for ``deliver``.

    Keep the object alive for as long as the library may call it (cffi frees the
    trampoline with the object)."""

    def __init__(
        self, deliver: Deliver, source: Literal["arming", "listen"] = "arming", port: int = 0
    ) -> None:
        self._deliver = deliver
        self._source: Literal["arming", "listen"] = source
        self._port = port
        self.errors = 0
        self.cdata = ffi.callback(_MSG_CALLBACK, self._on_message)
        self.user: Any = ffi.NULL

    def _on_message(self, command: int, alarmer: Any, info: Any, length: int, _user: Any) -> None:
        try:
            received = time.time_ns()
            sender = ffi.buffer(alarmer, ALARMER_SIZE)[:] if alarmer else b""
            if command == COMM_ISAPI_ALARM and info:
                raw = _copy_isapi(command, sender, info, received)
            elif command == COMM_ALARM_V40 and info and length == _V40_SIZE:
                payload = ffi.buffer(info, length)[:] + _v40_list(info)
                raw = RawAlarm(command, sender, payload, received)
            else:
                payload = ffi.buffer(info, length)[:] if info and length else b""
                raw = RawAlarm(command, sender, payload, received)
            raw.source = self._source
            raw.listen_port = self._port
            self._deliver(raw)
        except Exception:
            # Never unwind into C. A copy that fails is counted; the decoder thread
            # publishes the counter as health.
            self.errors += 1


def _v40_list(info_ptr: Any) -> bytes:
    """COMM_ALARM_V40 is a fixed header plus ``pAlarmData``, a pointer to a list of DWORDs
    (alarm outputs and recording channels, channels, or disks, by dwAlarmType; seed 5.16).
    The pointer dies with the call: append the list after the struct so the decoder finds
    it in the copied bytes."""
    info = ffi.cast("NET_DVR_ALARMINFO_V40 *", info_ptr)
    if not info.pAlarmData:
        return b""
    header = info.struAlarmFixedHeader
    union = header.uStruAlarm
    kind = int(header.dwAlarmType)
    if kind in IO_TYPES:
        io = union.struIOAlarm
        count = int(io.dwTrigerAlarmOutNum) + int(io.dwTrigerRecordChanNum)
    elif kind in DISK_TYPES:
        count = int(union.struAlarmHardDisk.dwAlarmHardDiskNum)
    elif kind in CHANNEL_TYPES:
        count = int(union.struAlarmChannel.dwAlarmChanNum)
    else:
        return b""
    count = min(count, _V40_LIST_MAX)
    return ffi.buffer(info.pAlarmData, 4 * count)[:] if count > 0 else b""


def _copy_isapi(command: int, alarmer: bytes, info_ptr: Any, received: int) -> RawAlarm:
    info = ffi.cast("NET_DVR_ALARM_ISAPI_INFO *", info_ptr)
    size = int(info.dwAlarmDataLen)
    body = ffi.buffer(info.pAlarmData, size)[:] if info.pAlarmData and size else b""
    pictures: list[RawPicture] = []
    count = int(info.byPicturesNumber)
    if count and info.pPicPackData:
        pics = ffi.cast("NET_DVR_ALARM_ISAPI_PICDATA *", info.pPicPackData)
        for i in range(count):
            pic = pics[i]
            data = ffi.buffer(pic.pPicData, pic.dwPicLen)[:] if pic.pPicData else b""
            name = ffi.string(pic.szFilename).decode("utf-8", "replace")
            pictures.append(RawPicture(name, int(pic.byPicType), data))
    return RawAlarm(
        command, alarmer, body, received, data_type=int(info.byDataType), pictures=pictures
    )


RESEND_AFTER_OUTAGE = 0b11111
"""byBrokenNetHttp: bit 0 plates, 1 people counting, 2 heat map, 3 face capture, 4 face match."""


@dataclass(frozen=True, slots=True)
class ArmingOptions:
    """NET_DVR_SETUPALARM_PARAM (HCNetSDK.h). Over ISAPI none of these change the
    request or the callbacks (sdk-over-isapi.md part 1 §2); private-protocol devices use
    them."""

    level: int = 0
    """byLevel: 0 high, 1 medium, 2 low priority of this client's uploads."""
    deploy_type: int = 0
    """byDeployType: 0 client arming (uploads also while not connected are lost), 1 real-time."""
    alarm_info_v40: bool = True
    """byRetAlarmTypeV40: COMM_ALARM_V40 instead of V30 (needed above 64 channels)."""
    upload_confirmation: bool = False
    """bySupport bit 1: the device waits for this client's confirmation of each upload."""
    resend_after_outage: int = 0
    """byBrokenNetHttp: bit mask of event classes the device re-sends after a broken link."""


AlarmCallback = MessageCallback | ShimCallback
"""The Python callback or the C one: ``cdata`` for the library, ``user`` its pUser."""

# The library keeps the last message callback it was given for the life of the process:
# keep its Python object alive as long, or a late message would jump into freed memory.
_installed: list[AlarmCallback] = []


def set_message_callback(sdk: Library, callback: AlarmCallback) -> None:
    sdk.check(sdk.lib.NET_DVR_SetDVRMessageCallBack_V30(callback.cdata, callback.user))
    _installed[:] = [callback]


def setup_alarm_channel(sdk: Library, user_id: int, options: ArmingOptions) -> int:
    """NET_DVR_SetupAlarmChan_V41 -> alarm handle. Over ISAPI it waits for the HTTP
    status of the alertStream: 404 -> error 23, 403/500 -> error 29 (part 1 §2)."""
    param = ffi.new("NET_DVR_SETUPALARM_PARAM *")
    param.dwSize = ffi.sizeof("NET_DVR_SETUPALARM_PARAM")
    param.byLevel = options.level
    param.byDeployType = options.deploy_type
    param.byRetAlarmTypeV40 = 1 if options.alarm_info_v40 else 0
    param.bySupport = 0b10 if options.upload_confirmation else 0
    param.byBrokenNetHttp = options.resend_after_outage
    handle = int(sdk.lib.NET_DVR_SetupAlarmChan_V41(user_id, param))
    if handle < 0:
        raise sdk.last_error()
    return handle


def close_alarm_channel(sdk: Library, handle: int) -> None:
    sdk.check(sdk.lib.NET_DVR_CloseAlarmChan_V30(handle))


def start_listen(sdk: Library, address: str, port: int, callback: AlarmCallback) -> int:
    """NET_DVR_StartListen_V30 -> listen handle. Malformed payloads (0x7fff) go to the
    global message callback, not to this one (part 1 §4). The caller keeps `callback`
    alive while the library may call it."""
    handle = int(
        sdk.lib.NET_DVR_StartListen_V30(address.encode(), port, callback.cdata, callback.user)
    )
    if handle < 0:
        raise sdk.last_error()
    return handle


def stop_listen(sdk: Library, handle: int) -> None:
    sdk.check(sdk.lib.NET_DVR_StopListen_V30(handle))
