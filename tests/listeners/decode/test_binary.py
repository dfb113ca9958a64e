"""Private-protocol alarm structs decoded into events.

The real library never delivers these over an ISAPI login (every alarm then arrives as
COMM_ISAPI_ALARM), and the simulator speaks only ISAPI, so these tests build the struct
bytes with cffi from the header layouts (`hikd.sdk.ffi`), as a private-protocol device's
callback would hand them over.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hikd.devices.capabilities.channels import channel_map
from hikd.events import DeviceRef, Event
from hikd.listeners.decode import DecodeContext, DecodeStats, decode
from hikd.listeners.decode.types import ALARM_TYPES
from hikd.sdk.ffi import ffi
from hikd.sdk.login import DeviceFacts
from hikd.sdk.raw import NO_ALARMER, RawAlarm, RawPicture

COMM_ALARM = 0x1100
COMM_ALARM_RULE = 0x1102
COMM_ALARM_V30 = 0x4000
COMM_IPCCFG = 0x4001
COMM_IPCCFG_V31 = 0x4002
COMM_ALARM_HOT_SPARE = 0x4006
COMM_ALARM_V40 = 0x4007
COMM_ALARM_VQD = 0x6000
ERROR_MESSAGE = 0x7FFF

DEVICE = DeviceRef("hybrid-dvr", "DS-7316HQHI-K420200101CCWR000000001", "10.0.0.9")
# A hybrid DVR: 16 analog channels from 1, IP channels from 33.
CTX = DecodeContext(DEVICE, start_channel=1, start_ip_channel=33)


def _bytes(p: Any) -> bytes:
    return bytes(ffi.buffer(p))


def _decode(
    command: int, payload: bytes, ctx: DecodeContext = CTX, **kw: Any
) -> tuple[list[Event], DecodeStats]:
    stats = DecodeStats()
    raw = RawAlarm(command, NO_ALARMER, payload, time.time_ns(), source="listen", **kw)
    events = decode(raw, ctx, stats)
    for ev in events:
        json.loads(ev.to_json())
    return events, stats


def _v30(alarm_type: int, **arrays: list[int]) -> bytes:
    p = ffi.new("NET_DVR_ALARMINFO_V30 *")
    p.dwAlarmType = alarm_type
    for field, indexes in arrays.items():
        if field == "input":
            p.dwAlarmInputNumber = indexes[0]
            continue
        for i in indexes:
            getattr(p, field)[i] = 1
    return _bytes(p)


# --- COMM_ALARM_V30 --------------------------------------------------------------------


def test_v30_channels_in_hikds_numbering_once_the_channel_map_is_known() -> None:
    # The hybrid DVR over the private protocol: 16 analog, 4 IP from byStartDChan 33. hikd
    # numbers the IP cameras 17..20 (README "Channel numbers").
    facts = DeviceFacts(
        serial="S", device_type="DVR", device_type_code=1, analog_channels=16, start_channel=1,
        ip_channels=4, start_ip_channel=33, zero_channels=0, audio_channels=0, alarm_inputs=0,
        alarm_outputs=0, disks=0, protocol="private",
    )  # fmt: skip
    ctx = dataclasses.replace(CTX, channels=channel_map(facts, None, None))
    events, _ = _decode(COMM_ALARM_V30, _v30(3, byChannel=[2, 32, 35]), ctx)
    assert [(e.channel, e.attributes.get("device_channel")) for e in events] == [
        (3, None),
        (17, 33),
        (20, 36),
    ]


def test_v30_motion_one_event_per_channel_analog_then_ip() -> None:
    events, _ = _decode(COMM_ALARM_V30, _v30(3, byChannel=[0, 2, 32, 35]))
    assert [(e.type, e.state, e.channel) for e in events] == [
        ("motion", "start", 1),
        ("motion", "start", 3),
        ("motion", "start", 33),  # array index 32 is the first IP channel
        ("motion", "start", 36),
    ]
    assert events[0].attributes["channels"] == [1, 3, 33, 36]
    assert events[0].attributes["command_name"] == "COMM_ALARM_V30"
    # V30 has no time field: the receive time stands in.
    assert events[0].time == events[0].received


def test_v30_signal_alarm_input_outputs_and_recording_channels() -> None:
    payload = _v30(0, input=[1], byAlarmOutputNumber=[0, 3], byAlarmRelateChannel=[1, 33])
    (ev,), _ = _decode(COMM_ALARM_V30, payload)
    assert (ev.type, ev.channel) == ("io", None)
    assert ev.attributes["alarm_input"] == 2  # dwAlarmInputNumber counts from 0
    assert ev.attributes["alarm_outputs"] == [1, 4]
    assert ev.attributes["record_channels"] == [2, 34]


def test_v30_disk_alarm_one_event_per_disk() -> None:
    events, _ = _decode(COMM_ALARM_V30, _v30(1, byDiskNumber=[0, 2]))
    assert [(e.type, e.channel, e.attributes["disk"]) for e in events] == [
        ("disk_full", None, 1),
        ("disk_full", None, 3),
    ]


@pytest.mark.parametrize("alarm_type", sorted(ALARM_TYPES))
def test_v30_every_alarm_type_is_named(alarm_type: int) -> None:
    events, _ = _decode(COMM_ALARM_V30, _v30(alarm_type, byChannel=[4], byDiskNumber=[1]))
    assert events
    for ev in events:
        assert ev.type == ALARM_TYPES[alarm_type]
        assert ev.attributes["alarm_type"] == alarm_type
        assert ev.raw is None


def test_v30_recording_start_and_stop_and_one_shot_illegal_access() -> None:
    (start,), _ = _decode(COMM_ALARM_V30, _v30(20, byChannel=[0]))
    (stop,), _ = _decode(COMM_ALARM_V30, _v30(21, byChannel=[0]))
    (access,), _ = _decode(COMM_ALARM_V30, _v30(8))
    assert (start.type, start.state) == ("recording", "start")
    assert (stop.type, stop.state) == ("recording", "stop")
    assert (access.type, access.state, access.channel) == ("illegal_access", "pulse", None)


def test_v30_unknown_alarm_type_keeps_bytes() -> None:
    payload = _v30(99, byChannel=[1])
    (ev,), _ = _decode(COMM_ALARM_V30, payload)
    assert ev.type == "unknown"
    assert ev.attributes["event_type"] == "alarm_type_99"
    assert ev.raw is not None
    assert base64.b64decode(ev.raw["payload"]) == payload


def test_v30_short_payload_is_malformed() -> None:
    (ev,), stats = _decode(COMM_ALARM_V30, b"\x03\0\0\0")
    assert (ev.kind, ev.type) == ("health", "malformed_alarm")
    assert ev.attributes["struct"] == "NET_DVR_ALARMINFO_V30"
    assert stats.snapshot()["malformed"] == 1


# --- COMM_ALARM_V40 --------------------------------------------------------------------


def _v40(alarm_type: int, when: tuple[int, ...] = (2024, 5, 6, 7, 8, 9)) -> Any:
    p = ffi.new("NET_DVR_ALARMINFO_V40 *")
    h = p.struAlarmFixedHeader
    h.dwAlarmType = alarm_type
    t = h.struAlarmTime
    t.wYear, t.byMonth, t.byDay, t.byHour, t.byMinute, t.bySecond = when
    return p


def test_v40_channel_list_follows_the_struct_and_time_has_device_offset() -> None:
    p = _v40(3)
    h = p.struAlarmFixedHeader
    h.uStruAlarm.struAlarmChannel.dwAlarmChanNum = 2
    h.byTimeDiffFlag = 1
    h.cTimeDifferenceH = struct.pack("b", -3)
    h.cTimeDifferenceM = struct.pack("b", -30)
    events, _ = _decode(COMM_ALARM_V40, _bytes(p) + struct.pack("<2I", 2, 40))
    assert [(e.type, e.channel) for e in events] == [("motion", 2), ("motion", 40)]
    tz = timezone(-timedelta(hours=3, minutes=30))
    assert events[0].time == datetime(2024, 5, 6, 7, 8, 9, tzinfo=tz)
    assert events[0].time.utcoffset() == -timedelta(hours=3, minutes=30)
    assert "list_incomplete" not in events[0].attributes


def test_v40_without_offset_flag_uses_configured_zone() -> None:
    p = _v40(6)
    p.struAlarmFixedHeader.uStruAlarm.struAlarmChannel.dwAlarmChanNum = 1
    ctx = DecodeContext(DEVICE, utc_offset=timezone(timedelta(hours=2)))
    (ev,), _ = _decode(COMM_ALARM_V40, _bytes(p) + struct.pack("<I", 5), ctx)
    assert (ev.type, ev.channel) == ("tamper", 5)
    assert ev.time == datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)


def test_v40_missing_list_is_said_not_dropped() -> None:
    p = _v40(3)
    p.struAlarmFixedHeader.uStruAlarm.struAlarmChannel.dwAlarmChanNum = 3
    (ev,), _ = _decode(COMM_ALARM_V40, _bytes(p) + struct.pack("<I", 7))
    # Only one of three channel numbers arrived.
    assert (ev.type, ev.channel) == ("motion", 7)
    assert ev.attributes["list_incomplete"] == {"expected": 3, "found": 1}


def test_v40_garbage_count_is_bounded() -> None:
    p = _v40(2)
    p.struAlarmFixedHeader.uStruAlarm.struAlarmChannel.dwAlarmChanNum = 0xFFFFFFFF
    (ev,), _ = _decode(COMM_ALARM_V40, _bytes(p))
    assert (ev.type, ev.channel) == ("video_loss", None)
    assert ev.attributes["list_incomplete"]["found"] == 0


def test_v40_signal_alarm_outputs_then_recording_channels() -> None:
    p = _v40(0)
    io = p.struAlarmFixedHeader.uStruAlarm.struIOAlarm
    io.dwAlarmInputNo, io.dwTrigerAlarmOutNum, io.dwTrigerRecordChanNum = 0, 1, 2
    (ev,), _ = _decode(COMM_ALARM_V40, _bytes(p) + struct.pack("<3I", 1, 33, 34))
    assert (ev.type, ev.channel) == ("io", None)
    assert ev.attributes["alarm_input"] == 1
    assert ev.attributes["alarm_outputs"] == [1]
    assert ev.attributes["record_channels"] == [33, 34]


def test_v40_disk_error_per_disk() -> None:
    p = _v40(5)
    p.struAlarmFixedHeader.uStruAlarm.struAlarmHardDisk.dwAlarmHardDiskNum = 2
    events, _ = _decode(COMM_ALARM_V40, _bytes(p) + struct.pack("<2I", 1, 2))
    assert [(e.type, e.attributes["disk"]) for e in events] == [
        ("disk_error", 1),
        ("disk_error", 2),
    ]


def test_v40_zeroed_time_falls_back_to_receive_time() -> None:
    p = _v40(3, when=(0, 0, 0, 0, 0, 0))
    (ev,), _ = _decode(COMM_ALARM_V40, _bytes(p))
    assert ev.time == ev.received
    assert ev.attributes["device_time_invalid"] is True


# --- COMM_ALARM (before V3.0) -----------------------------------------------------------


def test_old_alarm_info_motion() -> None:
    p = ffi.new("NET_DVR_ALARMINFO *")
    p.dwAlarmType = 3
    p.dwChannel[0] = 1
    p.dwChannel[15] = 1
    events, _ = _decode(COMM_ALARM, _bytes(p))
    assert [(e.type, e.channel) for e in events] == [("motion", 1), ("motion", 16)]


# --- COMM_IPCCFG / _V31, HOT_SPARE, VQD -------------------------------------------------


@pytest.mark.parametrize("command", [COMM_IPCCFG, COMM_IPCCFG_V31])
def test_ip_channel_config_change_is_a_health_event_without_credentials(command: int) -> None:
    v31 = command == COMM_IPCCFG_V31
    p = ffi.new("NET_DVR_IPALARMINFO_V31 *" if v31 else "NET_DVR_IPALARMINFO *")
    dev = p.struIPDevInfo[0]
    if v31:
        dev.byEnable = 1
    else:
        dev.dwEnable = 1
    dev.struIP.sIpV4 = b"10.0.0.21"
    dev.wDVRPort = 8000
    dev.sUserName = b"admin"
    dev.sPassword = b"s3cret-pw"
    p.struIPChanInfo[0].byEnable = 1
    p.struIPChanInfo[0].byIPID = 1
    p.struIPChanInfo[0].byChannel = 1
    p.byAnalogChanEnable[0] = 1
    (ev,), _ = _decode(command, _bytes(p))
    assert (ev.kind, ev.type, ev.state) == ("health", "ip_channels_changed", "pulse")
    assert ev.attributes["ip_devices"][0]["address"] == "10.0.0.21"
    assert ev.attributes["ip_devices"][0]["port"] == 8000
    assert ev.attributes["ip_channels"] == [
        {"channel": 33, "ip_device": 1, "device_channel": 1, "enabled": True}
    ]
    assert ev.attributes["analog_channels_enabled"] == [1]
    assert "s3cret-pw" not in ev.to_json()


def test_hot_spare_exception() -> None:
    p = ffi.new("NET_DVR_ALARM_HOT_SPARE *")
    p.dwSize = ffi.sizeof("NET_DVR_ALARM_HOT_SPARE")
    p.dwExceptionCase = 0
    p.struDeviceIP.sIpV4 = b"10.0.0.30"
    (ev,), _ = _decode(COMM_ALARM_HOT_SPARE, _bytes(p))
    assert (ev.kind, ev.type) == ("health", "hot_spare_exception")
    assert ev.attributes["reason"] == "network"
    assert ev.attributes["device_ip"] == "10.0.0.30"


def test_vqd_diagnose_info_as_the_guide_names_it() -> None:
    p = ffi.new("NET_DVR_VQD_DIAGNOSE_INFO *")
    p.dwSize = ffi.sizeof("NET_DVR_VQD_DIAGNOSE_INFO")
    info = p.struVQDDiagnoseExceptionInfo
    info.dwChannelNO = 4
    info.dwVQDType = 1
    info.byScoreValue = 35
    t = info.struDiagnoseTime
    t.dwYear, t.dwMonth, t.dwDay, t.dwHour, t.dwMinute, t.dwSecond = 2024, 1, 2, 3, 4, 5
    (ev,), _ = _decode(COMM_ALARM_VQD, _bytes(p))
    assert (ev.type, ev.channel, ev.attributes["score"]) == ("image_blur", 4, 35)
    assert ev.time == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_vqd_alarm_struct() -> None:
    p = ffi.new("NET_DVR_VQD_ALARM *")
    p.dwSize = ffi.sizeof("NET_DVR_VQD_ALARM")
    p.dwEventType = 7
    p.fThreshold = 0.5
    p.struDevInfo.byChannel = 2
    p.dwAbsTime = (24 << 26) | (5 << 22) | (6 << 17) | (7 << 12) | (8 << 6) | 9
    (ev,), _ = _decode(COMM_ALARM_VQD, _bytes(p))
    assert (ev.type, ev.channel) == ("video_loss", 2)
    assert ev.attributes["threshold"] == 0.5
    assert ev.time == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


# --- COMM_ALARM_RULE -------------------------------------------------------------------


def _rule(event_type_ex: int = 0, bits: int = 0, rule_id: int = 3) -> Any:
    p = ffi.new("NET_VCA_RULE_ALARM *")
    p.dwSize = ffi.sizeof("NET_VCA_RULE_ALARM")
    p.struRuleInfo.byRuleID = rule_id
    p.struRuleInfo.wEventTypeEx = event_type_ex
    p.struRuleInfo.dwEventType = bits - (1 << 32) if bits >= 1 << 31 else bits
    p.struRuleInfo.byRuleName = b"Front gate"
    p.struTargetInfo.dwID = 77
    r = p.struTargetInfo.struRect
    r.fX, r.fY, r.fWidth, r.fHeight = 0.25, 0.5, 0.125, 0.25
    p.struDevInfo.byChannel = 2
    p.dwAbsTime = (24 << 26) | (5 << 22) | (6 << 17) | (7 << 12) | (8 << 6) | 9
    return p


@pytest.mark.parametrize(
    ("event_type_ex", "ours"),
    [(1, "line_crossing"), (2, "region_entrance"), (3, "region_exit"), (4, "intrusion"),
     (5, "loitering"), (7, "parking"), (8, "fast_moving"), (9, "people_gathering"),
     (13, "unattended_baggage"), (14, "object_removal")],
)  # fmt: skip
def test_rule_alarm_types_from_event_type_ex(event_type_ex: int, ours: str) -> None:
    (ev,), _ = _decode(COMM_ALARM_RULE, _bytes(_rule(event_type_ex)))
    assert (ev.type, ev.state, ev.channel) == (ours, "start", 2)
    assert ev.attributes["rule_id"] == 3
    assert ev.attributes["rule_name"] == "Front gate"
    assert ev.attributes["target_id"] == 77
    assert ev.attributes["target_rect"] == {"x": 0.25, "y": 0.5, "width": 0.125, "height": 0.25}
    assert ev.time == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_rule_alarm_old_bit_mask_when_ex_is_zero() -> None:
    (ev,), _ = _decode(COMM_ALARM_RULE, _bytes(_rule(bits=0x8)))
    assert ev.type == "intrusion"
    (ev,), _ = _decode(COMM_ALARM_RULE, _bytes(_rule(bits=0x80000000)))
    assert ev.type == "skimmer_installed"


def test_rule_alarm_unknown_kind_keeps_bytes_and_garbage_floats_become_null() -> None:
    p = _rule(event_type_ex=250)
    p.struTargetInfo.struRect.fX = float("nan")
    (ev,), _ = _decode(COMM_ALARM_RULE, _bytes(p))
    assert ev.type == "unknown"
    assert ev.attributes["event_type"] == "vca_rule_250"
    assert ev.attributes["target_rect"]["x"] is None
    assert ev.raw is not None


def test_rule_alarm_picture_copied_by_the_callback_is_written(tmp_path: Path) -> None:
    jpeg = b"\xff\xd8" + b"\x01" * 50 + b"\xff\xd9"
    ctx = DecodeContext(DEVICE, picture_dir=tmp_path)
    (ev,), _ = _decode(COMM_ALARM_RULE, _bytes(_rule(1)), ctx, pictures=[RawPicture("", 1, jpeg)])
    assert len(ev.files) == 1
    assert Path(ev.files[0]).read_bytes() == jpeg
    assert Path(ev.files[0]).parent == tmp_path / "hybrid-dvr" / "2024-05-06"


# --- 0x7fff, unknown commands, decoder bugs --------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (6, b"The JSON message contains errors in format."),
        (7, b"The XML message contains errors in format."),
        (8, b"Error occurred when processing the binary image data."),
    ],
)
def test_library_error_message_is_a_malformed_health_pulse(code: int, message: bytes) -> None:
    # The layout the real library was seen to deliver: DWORD alarmType; DWORD errCode;
    # char message[], in a 512-byte buffer.
    payload = struct.pack("<II", 0x6009, code) + message
    payload += b"\0" * (512 - len(payload))
    stats = DecodeStats()
    ctx = DecodeContext(DEVICE)
    raw = RawAlarm(ERROR_MESSAGE, NO_ALARMER, payload, time.time_ns())
    first = decode(raw, ctx, stats)
    (ev,) = decode(raw, ctx, stats)
    assert len(first) == 1
    assert (ev.kind, ev.type, ev.state) == ("health", "malformed_alarm", "pulse")
    assert ev.attributes["error_code"] == code
    assert ev.attributes["message"] == message.decode()
    assert ev.attributes["alarm_command"] == 0x6009
    assert ev.attributes["count"] == 2


def test_short_library_error_message() -> None:
    (ev,), _ = _decode(ERROR_MESSAGE, b"\x09\x60")
    assert ev.type == "malformed_alarm"


def test_unknown_command_keeps_its_bytes() -> None:
    payload = bytes(range(40))
    (ev,), stats = _decode(0x3050, payload)
    assert (ev.kind, ev.type, ev.state) == ("alarm", "unknown", "pulse")
    assert ev.attributes["command_name"] == "COMM_ITS_PLATE_RESULT"
    assert ev.raw == {
        "command": 0x3050,
        "encoding": "base64",
        "payload": base64.b64encode(payload).decode(),
    }
    assert stats.snapshot()["by_command"] == {"0x3050": 1}


def test_decoder_bug_becomes_a_decode_error_health_event() -> None:
    # No well-typed input makes a decoder fail, so the payload is deliberately not bytes
    # (a str) to reach the bug path for real.
    raw = RawAlarm(COMM_ALARM_V30, NO_ALARMER, "x" * 300, time.time_ns())  # type: ignore[arg-type]
    stats = DecodeStats()
    (ev,) = decode(raw, CTX, stats)
    assert (ev.kind, ev.type) == ("health", "decode_error")
    assert "TypeError" in ev.attributes["error"]
    assert stats.snapshot()["decode_errors"] == 1
