"""The message callback copies the vendor's buffers before it returns.

These call the callback through its C entry point (the cffi trampoline the library calls)
with buffers built from the header layouts. The real library delivers COMM_ISAPI_ALARM
with pictures over ISAPI (tests/listeners/test_alarms.py covers that end to end); COMM_ALARM_V40
only comes from private-protocol devices, which the real library cannot be driven to
produce here.
"""

from __future__ import annotations

import queue

from hikd.events import DeviceRef
from hikd.listeners.decode import DecodeContext, decode
from hikd.sdk.alarms import MessageCallback
from hikd.sdk.ffi import ffi
from hikd.sdk.raw import RawAlarm


def deliver() -> tuple[MessageCallback, queue.SimpleQueue[RawAlarm]]:
    inbox: queue.SimpleQueue[RawAlarm] = queue.SimpleQueue()
    return MessageCallback(inbox.put), inbox


def test_isapi_body_and_pictures_are_copied_out_of_the_vendor_buffers() -> None:
    callback, inbox = deliver()
    body = ffi.new("char[]", b"<EventNotificationAlert><eventType>VMD</eventType>\r\n")
    jpeg = ffi.new("unsigned char[]", b"\xff\xd8picture\xff\xd9")
    pics = ffi.new("NET_DVR_ALARM_ISAPI_PICDATA[1]")
    pics[0].dwPicLen = len(jpeg) - 1
    pics[0].byPicType = 1
    pics[0].szFilename = b"pic.jpg"
    pics[0].pPicData = jpeg
    info = ffi.new("NET_DVR_ALARM_ISAPI_INFO *")
    info.pAlarmData = body
    info.dwAlarmDataLen = len(body) - 1
    info.byDataType = 1
    info.byPicturesNumber = 1
    info.pPicPackData = pics
    alarmer = ffi.new("NET_DVR_ALARMER *")
    alarmer.byUserIDValid = 1
    alarmer.lUserID = 7

    callback.cdata(0x6009, alarmer, ffi.cast("char *", info), ffi.sizeof(info[0]), ffi.NULL)
    # The library frees or reuses its buffers after the call: scribble over them.
    ffi.memmove(body, b"X" * (len(body) - 1), len(body) - 1)
    ffi.memmove(jpeg, b"X" * (len(jpeg) - 1), len(jpeg) - 1)

    raw = inbox.get_nowait()
    assert raw.command == 0x6009 and raw.data_type == 1
    assert raw.payload.startswith(b"<EventNotificationAlert>")
    assert [(p.filename, p.pic_type, p.data) for p in raw.pictures] == [
        ("pic.jpg", 1, b"\xff\xd8picture\xff\xd9")
    ]
    assert len(raw.alarmer) == ffi.sizeof("NET_DVR_ALARMER")
    assert raw.sender().user_id == 7
    assert callback.errors == 0


def test_alarm_v40_list_behind_the_pointer_is_copied_and_decoded() -> None:
    callback, inbox = deliver()
    channels = ffi.new("unsigned int[3]", [2, 5, 9])
    info = ffi.new("NET_DVR_ALARMINFO_V40 *")
    header = info.struAlarmFixedHeader
    header.dwAlarmType = 3  # motion detection: struAlarmChannel is the valid member
    header.struAlarmTime.wYear = 2026
    header.struAlarmTime.byMonth = 11
    header.struAlarmTime.byDay = 23
    header.uStruAlarm.struAlarmChannel.dwAlarmChanNum = 3
    info.pAlarmData = channels
    alarmer = ffi.new("NET_DVR_ALARMER *")

    callback.cdata(0x4007, alarmer, ffi.cast("char *", info), ffi.sizeof(info[0]), ffi.NULL)
    ffi.memmove(channels, b"\0" * 12, 12)  # the pointer dies with the call

    raw = inbox.get_nowait()
    assert len(raw.payload) == ffi.sizeof("NET_DVR_ALARMINFO_V40") + 12
    events = decode(raw, DecodeContext(device=DeviceRef("nvr")))
    assert sorted(e.channel for e in events if e.channel is not None) == [2, 5, 9]
    assert all(e.type == "motion" for e in events)
    assert not any("list_incomplete" in e.attributes for e in events)


def test_a_callback_that_fails_never_raises_into_the_library() -> None:
    def broken(_raw: RawAlarm) -> None:
        raise RuntimeError("queue gone")

    callback = MessageCallback(broken)
    callback.cdata(0x4000, ffi.NULL, ffi.NULL, 0, ffi.NULL)
    assert callback.errors == 1
