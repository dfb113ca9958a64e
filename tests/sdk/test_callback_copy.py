"""The message callback copies the vendor's buffers before it returns, on both routes.

These call the callback through its C entry point (what the library calls: the C shim's
function, or the cffi trampoline of the Python callback) with buffers built from the header
layouts, and take what it copied from the decoder's side (`AlarmIntake`). The real library
delivers COMM_ISAPI_ALARM with pictures over ISAPI (tests/listeners/test_alarms.py covers
that end to end on both routes); COMM_ALARM_V40 only comes from private-protocol devices,
which the real library cannot be driven to produce here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hikd.events import DeviceRef
from hikd.listeners.decode import DecodeContext, decode
from hikd.listeners.intake import AlarmIntake
from hikd.sdk.alarms import MessageCallback
from hikd.sdk.ffi import ffi
from hikd.sdk.raw import RawAlarm
from tests.shim import ROUTES, use_route


@pytest.fixture(params=ROUTES)
def intake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_route(request.param, monkeypatch)
    taken: AlarmIntake[None] = AlarmIntake()
    assert taken.route == request.param
    try:
        yield taken
    finally:
        taken.close()


def isapi_message() -> tuple[Any, ...]:
    body = ffi.new("char[]", b"<EventNotificationAlert><eventType>VMD</eventType>\r\n")
    jpeg = ffi.new("unsigned char[]", b"\xff\xd8picture\xff\xd9")
    pics = ffi.new("NET_DVR_ALARM_ISAPI_PICDATA[2]")
    pics[0].dwPicLen = len(jpeg) - 1
    pics[0].byPicType = 1
    pics[0].szFilename = b"pic.jpg"
    pics[0].pPicData = jpeg
    pics[1].byPicType = 0  # no data pointer: an empty picture, its name kept
    pics[1].szFilename = b"x" * 256  # a name filling its field, without a NUL
    pics[1].dwPicLen = 99
    info = ffi.new("NET_DVR_ALARM_ISAPI_INFO *")
    info.pAlarmData = body
    info.dwAlarmDataLen = len(body) - 1
    info.byDataType = 1
    info.byPicturesNumber = 2
    info.pPicPackData = pics
    return body, jpeg, pics, info


def test_isapi_body_and_pictures_are_copied_out_of_the_vendor_buffers(intake: Any) -> None:
    callback = intake.message_callback("arming")
    body, jpeg, _pics, info = isapi_message()
    alarmer = ffi.new("NET_DVR_ALARMER *")
    alarmer.byUserIDValid = 1
    alarmer.lUserID = 7

    callback.cdata(0x6009, alarmer, ffi.cast("char *", info), ffi.sizeof(info[0]), callback.user)
    # The library frees or reuses its buffers after the call: scribble over them.
    ffi.memmove(body, b"X" * (len(body) - 1), len(body) - 1)
    ffi.memmove(jpeg, b"X" * (len(jpeg) - 1), len(jpeg) - 1)

    raw = intake.get(5.0)
    assert raw.command == 0x6009 and raw.data_type == 1 and raw.source == "arming"
    assert raw.payload == b"<EventNotificationAlert><eventType>VMD</eventType>\r\n"
    assert [(p.filename, p.pic_type, p.data) for p in raw.pictures] == [
        ("pic.jpg", 1, b"\xff\xd8picture\xff\xd9"),
        ("x" * 256, 0, b""),
    ]
    assert len(raw.alarmer) == ffi.sizeof("NET_DVR_ALARMER")
    assert raw.sender().user_id == 7
    assert intake.errors == 0


def test_alarm_v40_list_behind_the_pointer_is_copied_and_decoded(intake: Any) -> None:
    callback = intake.message_callback("arming")
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

    callback.cdata(0x4007, alarmer, ffi.cast("char *", info), ffi.sizeof(info[0]), callback.user)
    ffi.memmove(channels, b"\0" * 12, 12)  # the pointer dies with the call

    raw = intake.get(5.0)
    assert len(raw.payload) == ffi.sizeof("NET_DVR_ALARMINFO_V40") + 12
    events = decode(raw, DecodeContext(device=DeviceRef("nvr")))
    assert sorted(e.channel for e in events if e.channel is not None) == [2, 5, 9]
    assert all(e.type == "motion" for e in events)
    assert not any("list_incomplete" in e.attributes for e in events)


def test_alarm_v40_lists_are_bounded_and_read_by_alarm_type(intake: Any) -> None:
    """The list's length comes from the union member dwAlarmType names (an input's outputs
    plus recording channels; disks), at most 4096 entries; another type has no list."""
    callback = intake.message_callback("arming")
    values = ffi.new("unsigned int[5000]", list(range(5000)))
    expected = {0: 4 * 7, 23: 4 * 7, 5: 4 * 4096, 7: 0}  # io, pulse io, disk error, other
    for alarm_type in expected:
        info = ffi.new("NET_DVR_ALARMINFO_V40 *")
        header = info.struAlarmFixedHeader
        header.dwAlarmType = alarm_type
        if alarm_type in (0, 23):
            header.uStruAlarm.struIOAlarm.dwTrigerAlarmOutNum = 3
            header.uStruAlarm.struIOAlarm.dwTrigerRecordChanNum = 4
        else:
            header.uStruAlarm.struAlarmHardDisk.dwAlarmHardDiskNum = 100_000
        info.pAlarmData = values
        callback.cdata(0x4007, ffi.NULL, ffi.cast("char *", info), 168, callback.user)
    size = ffi.sizeof("NET_DVR_ALARMINFO_V40")
    for alarm_type, listed in expected.items():
        raw = intake.get(5.0)
        assert raw.alarmer == b""
        assert len(raw.payload) == size + listed, alarm_type
        assert raw.payload[size:] == bytes(ffi.buffer(values, listed)), alarm_type


def test_other_commands_are_copied_whole_and_listen_messages_say_their_port(intake: Any) -> None:
    callback = intake.message_callback("listen", 7200)
    data = ffi.new("char[]", b"\x01\x02\x00\x03")
    callback.cdata(0x4000, ffi.NULL, data, 4, callback.user)
    callback.cdata(0x4000, ffi.NULL, ffi.NULL, 4, callback.user)  # no buffer: no payload
    # COMM_ALARM_V40 of another length: copied as it is, no list read behind it.
    callback.cdata(0x4007, ffi.NULL, data, 4, callback.user)
    got = [intake.get(5.0) for _ in range(3)]
    assert [(r.command, r.payload) for r in got] == [
        (0x4000, b"\x01\x02\x00\x03"),
        (0x4000, b""),
        (0x4007, b"\x01\x02\x00\x03"),
    ]
    assert {(r.source, r.listen_port) for r in got} == {("listen", 7200)}


def test_many_library_threads_at_once_lose_nothing_and_keep_each_threads_order(
    intake: Any,
) -> None:
    """The library calls the callback from its ~32 threads at once: here 8 threads (cffi
    releases the interpreter's lock around each call into C) against the decoder taking."""
    callback = intake.message_callback("arming")
    per_thread, threads = 2000, 8

    def library_thread(number: int) -> None:
        payload = ffi.new("char[8]")
        for sequence in range(per_thread):
            payload[0:8] = number.to_bytes(4, "little") + sequence.to_bytes(4, "little")
            callback.cdata(0x4000, ffi.NULL, payload, 8, callback.user)

    workers = [threading.Thread(target=library_thread, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    seen: dict[int, list[int]] = {n: [] for n in range(threads)}
    for _ in range(per_thread * threads):
        raw = intake.get(30.0)
        seen[int.from_bytes(raw.payload[:4], "little")].append(
            int.from_bytes(raw.payload[4:], "little")
        )
    for worker in workers:
        worker.join()
    assert all(order == list(range(per_thread)) for order in seen.values())
    assert intake.errors == 0


def test_an_errand_runs_after_the_messages_queued_before_it(intake: Any) -> None:
    callback = intake.message_callback("arming")
    data = ffi.new("char[]", b"m")
    callback.cdata(0x4000, ffi.NULL, data, 1, callback.user)
    intake.put("errand")
    callback.cdata(0x4001, ffi.NULL, data, 1, callback.user)
    taken = [intake.get(5.0) for _ in range(3)]
    commands = [t.command if isinstance(t, RawAlarm) else t for t in taken]
    assert commands.index(0x4000) < commands.index("errand")
    assert sorted(commands, key=str) == sorted([0x4000, 0x4001, "errand"], key=str)


def test_a_python_callback_that_fails_never_raises_into_the_library() -> None:
    def broken(_raw: RawAlarm) -> None:
        raise RuntimeError("queue gone")

    callback = MessageCallback(broken)
    callback.cdata(0x4000, ffi.NULL, ffi.NULL, 0, ffi.NULL)
    assert callback.errors == 1
