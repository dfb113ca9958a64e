"""COMM_ISAPI_ALARM decoding: the XML / JSON alert bodies the real library delivers over
an ISAPI login (with the trailing CRLF it leaves), pictures, and the malformed cases."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hikd.events import DeviceRef, Event
from hikd.listeners.decode import DecodeContext, DecodeStats, decode
from hikd.sdk.raw import NO_ALARMER, RawAlarm, RawPicture

ALERTS = Path(__file__).parents[2] / "fixtures" / "alerts"
COMM_ISAPI_ALARM = 0x6009
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 120 + b"\xff\xd9"
DEVICE = DeviceRef("gate-cam", "DS-2CD2142FWD-I20170101AAWR123456789", "192.168.1.64")


def _raw(body: bytes, data_type: int, pictures: list[RawPicture] | None = None) -> RawAlarm:
    return RawAlarm(
        command=COMM_ISAPI_ALARM,
        alarmer=NO_ALARMER,
        payload=body,
        received_ns=time.time_ns(),
        data_type=data_type,
        pictures=pictures or [],
    )


def _fixture(name: str) -> RawAlarm:
    body = (ALERTS / name).read_bytes()
    return _raw(body, 2 if name.endswith(".json") else 1)


def _strict_json(event: Event) -> dict[str, Any]:
    def no_constants(name: str) -> Any:
        raise AssertionError(f"{name} in event JSON")

    parsed: dict[str, Any] = json.loads(event.to_json(), parse_constant=no_constants)
    return parsed


def _one(raw: RawAlarm, ctx: DecodeContext | None = None) -> Event:
    events = decode(raw, ctx or DecodeContext(DEVICE), DecodeStats())
    assert len(events) == 1, events
    _strict_json(events[0])
    return events[0]


def test_library_body_with_trailing_crlf_decodes_to_motion_start() -> None:
    raw = _fixture("vmd_active.xml")
    assert raw.payload.endswith(b"\r\n")
    ev = _one(raw)
    assert (ev.kind, ev.type, ev.state, ev.channel) == ("alarm", "motion", "start", 1)
    assert ev.device == DEVICE
    assert ev.time == datetime(2024, 3, 10, 9, 2, 11, tzinfo=UTC)
    assert ev.time.utcoffset() == timedelta(hours=1)
    assert ev.received == datetime.fromtimestamp(raw.received_ns / 1e9, UTC)
    assert ev.attributes["event_type"] == "VMD"
    assert ev.attributes["mac"] == "44:19:b6:3a:2b:1c"
    assert ev.attributes["active_post_count"] == 3
    assert ev.attributes["event_description"] == "Motion alarm"
    assert ev.attributes["channel_name"] == "Front door"
    assert ev.attributes["ip_address"] == "192.168.1.64"
    assert ev.raw is None


def test_inactive_is_a_stop() -> None:
    ev = _one(_fixture("vmd_inactive.xml"))
    assert (ev.type, ev.state) == ("motion", "stop")


def test_videoloss_inactive_is_the_heartbeat_counted_not_published() -> None:
    stats = DecodeStats()
    assert decode(_fixture("videoloss_heartbeat.xml"), DecodeContext(DEVICE), stats) == []
    assert stats.snapshot()["heartbeats_by_device"] == {"gate-cam": 1}


def test_heartbeat_event_type_is_not_an_alarm() -> None:
    body = b"<EventNotificationAlert><eventType>heartBeat</eventType>"
    body += b"<eventState>inactive</eventState></EventNotificationAlert>\r\n"
    stats = DecodeStats()
    assert decode(_raw(body, 1), DecodeContext(DEVICE), stats) == []
    assert stats.snapshot()["heartbeats"] == 1


def test_io_alarm_has_input_number_and_no_channel() -> None:
    ev = _one(_fixture("io_active.xml"))
    assert (ev.type, ev.state, ev.channel) == ("io", "start", None)
    assert ev.attributes["alarm_input"] == 2


def test_line_crossing_keeps_region_target_coordinates_and_simulator_fields() -> None:
    ev = _one(_fixture("linedetection.xml"))
    assert (ev.type, ev.channel) == ("line_crossing", 1)
    attrs = ev.attributes
    assert attrs["region_id"] == 2
    assert attrs["detection_target"] == "human"
    assert attrs["coordinates"] == [[120, 340], [860, 330]]
    region = attrs["regions"][0]
    assert region["sensitivity_level"] == 50
    assert region["target_rect"] == {"x": 0.412, "y": 0.286, "width": 0.071, "height": 0.254}
    # The benchmark reads the simulator's send stamp and sequence from here.
    assert attrs["hikd_sim_sent_ns"] == 1710061650123456789
    assert attrs["hikd_sim_seq"] == 42


def test_no_namespace_v1_alert_with_dyn_channel_and_extensions() -> None:
    ctx = DecodeContext(DEVICE, utc_offset=timezone(timedelta(hours=-5)))
    ev = _one(_fixture("fielddetection_v1_nonamespace.xml"), ctx)
    assert (ev.type, ev.channel) == ("intrusion", 5)
    # No offset in the text: the configured device timezone applies.
    assert ev.time == datetime(2024, 3, 10, 10, 9, tzinfo=timezone(timedelta(hours=-5)))
    assert ev.attributes["serial_number"] == "DS-2CD2042WD-I20160101BBWR123456789"
    assert ev.attributes["event_push"] == "1"


def test_time_without_offset_and_without_configured_zone_is_utc() -> None:
    ev = _one(_fixture("fielddetection_v1_nonamespace.xml"))
    assert ev.time == datetime(2024, 3, 10, 10, 9, tzinfo=UTC)


def test_unparseable_time_falls_back_to_receive_time() -> None:
    body = b"<EventNotificationAlert><eventType>VMD</eventType><eventState>active</eventState>"
    body += b"<dateTime>yesterday noon</dateTime></EventNotificationAlert>"
    ev = _one(_raw(body, 1))
    assert ev.time == ev.received
    assert ev.attributes["device_time_invalid"] == "yesterday noon"


def test_duration_event_is_named_by_its_relation_event() -> None:
    ev = _one(_fixture("duration_region_entrance.xml"))
    assert ev.type == "region_entrance"
    assert ev.attributes["event_type"] == "regionEntrance"
    assert ev.attributes["occurrences"] == "3"


def test_unknown_event_type_passes_through_with_its_text() -> None:
    raw = _fixture("unknown_type.xml")
    ev = _one(raw)
    assert (ev.type, ev.state, ev.channel) == ("unknown", "start", 1)
    assert ev.attributes["event_type"] == "fancyNewDetection"
    assert ev.raw is not None
    assert ev.raw["command"] == COMM_ISAPI_ALARM
    assert "fancyNewDetection" in ev.raw["payload"]


def test_foreign_root_element_is_unknown_not_dropped() -> None:
    ev = _one(_fixture("foo_root.xml"))
    assert ev.type == "unknown"
    assert ev.attributes["event_type"] == "Foo"
    assert ev.raw is not None and "<Foo>" in ev.raw["payload"]


def test_bare_ampersand_some_cameras_send_is_tolerated() -> None:
    ev = _one(_fixture("bare_ampersand.xml"))
    assert (ev.type, ev.channel) == ("tamper", 2)
    assert ev.attributes["channel_name"] == "Garden & Pool"


@pytest.mark.parametrize("name", ["doctype_entity.xml", "truncated.xml", "truncated.json"])
def test_unreadable_body_is_a_malformed_health_event(name: str) -> None:
    stats = DecodeStats()
    raw = _fixture(name)
    events = decode(raw, DecodeContext(DEVICE), stats)
    assert len(events) == 1
    ev = events[0]
    assert (ev.kind, ev.type, ev.state) == ("health", "malformed_alarm", "pulse")
    assert ev.attributes["count"] == 1
    assert ev.raw is not None and ev.raw["command"] == COMM_ISAPI_ALARM
    assert stats.snapshot()["malformed"] == 1
    _strict_json(ev)


def test_doctype_is_refused_before_parsing() -> None:
    ev = _one(_fixture("doctype_entity.xml"))
    assert "DOCTYPE" in ev.attributes["reason"]
    assert "root:" not in ev.to_json()


def test_json_flat_alert() -> None:
    ev = _one(_fixture("vmd_flat.json"))
    assert (ev.type, ev.state, ev.channel) == ("motion", "start", 3)
    assert ev.time == datetime(2024, 3, 10, 9, 20, tzinfo=UTC)
    assert ev.attributes["hikd_sim_sent_ns"] == 1710062400000000001
    assert ev.attributes["hikd_sim_seq"] == 9


def test_json_with_event_notification_alert_wrapper() -> None:
    ev = _one(_fixture("tamper_wrapped.json"))
    assert (ev.type, ev.state, ev.channel) == ("tamper", "start", 4)


def test_json_smart_event_with_detection_region_list() -> None:
    ev = _one(_fixture("region_exiting_smart.json"))
    assert (ev.type, ev.channel) == ("region_exit", 1)
    assert ev.attributes["region_id"] == 4  # a number, as in the XML form
    assert ev.attributes["detection_target"] == "vehicle"
    assert ev.attributes["coordinates"] == [[10, 20], [30, 40], [50, 10]]


def test_anpr_is_a_one_shot_vehicle_event_with_its_details() -> None:
    ev = _one(_fixture("anpr.json"))
    assert (ev.type, ev.state) == ("vehicle", "pulse")
    assert ev.attributes["license_plate"] == "AB12CDE"
    assert ev.attributes["confidence_level"] == 97
    assert ev.attributes["color"] == "white"


@pytest.mark.parametrize(
    ("device_name", "ours"),
    [
        ("VMD", "motion"),
        ("motiondetection", "motion"),
        ("videoloss", "video_loss"),
        ("shelteralarm", "tamper"),
        ("tamperdetection", "tamper"),
        ("io", "io"),
        ("linedetection", "line_crossing"),
        ("fielddetection", "intrusion"),
        ("regionEntrance", "region_entrance"),
        ("regionExiting", "region_exit"),
        ("loitering", "loitering"),
        ("group", "people_gathering"),
        ("rapidMove", "fast_moving"),
        ("parking", "parking"),
        ("unattendedBaggage", "unattended_baggage"),
        ("attendedBaggage", "object_removal"),
        ("facedetection", "face_detection"),
        ("scenechangedetection", "scene_change"),
        ("PIR", "pir"),
        ("audioexception", "audio_exception"),
        ("defocus", "defocus"),
        ("diskfull", "disk_full"),
        ("diskerror", "disk_error"),
        ("nicbroken", "network_disconnected"),
        ("ipconflict", "ip_conflict"),
        ("illaccess", "illegal_access"),
        ("videomismatch", "video_mismatch"),
        ("badvideo", "bad_video"),
        ("recordingfailure", "recording_failure"),
        ("vehicledetection", "vehicle"),
        ("thermometry", "thermometry"),
        ("LineDetection", "line_crossing"),
    ],
)
def test_alias_table_case_insensitive(device_name: str, ours: str) -> None:
    body = f"<EventNotificationAlert><channelID>1</channelID><eventType>{device_name}</eventType>"
    body += "<eventState>active</eventState></EventNotificationAlert>\r\n"
    ev = _one(_raw(body.encode(), 1))
    assert ev.type == ours
    assert ev.attributes["event_type"] == device_name


def test_one_shot_type_face_snap_is_a_pulse() -> None:
    body = b'{"eventType": "faceSnap", "eventState": "active", "channelID": 2}'
    assert _one(_raw(body, 2)).state == "pulse"


def test_binary_body_is_unknown_with_base64_raw() -> None:
    ev = _one(_raw(b"\x00\x01binary\xff", 0))
    assert ev.type == "unknown"
    assert ev.raw is not None and ev.raw["encoding"] == "base64"
    assert ev.raw["command"] == COMM_ISAPI_ALARM


def test_pictures_are_written_per_device_and_day_and_listed(tmp_path: Path) -> None:
    pictures = [RawPicture("a.jpg", 1, JPEG), RawPicture("b.jpg", 1, JPEG + b"x")]
    raw = _raw((ALERTS / "linedetection.xml").read_bytes(), 1, pictures)
    ev = _one(raw, DecodeContext(DEVICE, picture_dir=tmp_path))
    folder = tmp_path / "gate-cam" / "2024-03-10"
    expected = [str(folder / f"{ev.id}-1.jpg"), str(folder / f"{ev.id}-2.jpg")]
    assert list(ev.files) == expected
    assert Path(expected[0]).read_bytes() == JPEG
    assert Path(expected[1]).read_bytes() == JPEG + b"x"
    assert [p["size"] for p in ev.attributes["pictures"]] == [len(JPEG), len(JPEG) + 1]
    assert not list(folder.glob("*.part"))


def test_pictures_without_picture_dir_keep_only_sizes() -> None:
    raw = _raw((ALERTS / "vmd_active.xml").read_bytes(), 1, [RawPicture("a.jpg", 1, JPEG)])
    ev = _one(raw)
    assert ev.files == ()
    assert ev.attributes["pictures"] == [{"filename": "a.jpg", "pic_type": 1, "size": len(JPEG)}]


def test_picture_write_error_is_recorded_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    raw = _raw((ALERTS / "vmd_active.xml").read_bytes(), 1, [RawPicture("a.jpg", 1, JPEG)])
    ev = _one(raw, DecodeContext(DEVICE, picture_dir=blocker))
    assert ev.type == "motion"
    assert ev.files == ()
    assert "error" in ev.attributes["pictures"][0]


def test_alert_handed_over_as_picture_zero_is_decoded_as_an_alarm() -> None:
    # Library quirk: without a boundary after a JSON part, the next XML alert arrives as
    # PIC[0] with byPicType 0.
    xml = (ALERTS / "io_active.xml").read_bytes()
    raw = _raw((ALERTS / "vmd_flat.json").read_bytes(), 2, [RawPicture("", 0, xml)])
    events = decode(raw, DecodeContext(DEVICE), DecodeStats())
    assert [e.type for e in events] == ["motion", "io"]
    assert all(e.files == () for e in events)


def test_device_name_with_path_characters_stays_inside_picture_dir(tmp_path: Path) -> None:
    ctx = DecodeContext(DeviceRef("../../etc/evil"), picture_dir=tmp_path)
    raw = _raw((ALERTS / "vmd_active.xml").read_bytes(), 1, [RawPicture("a.jpg", 1, JPEG)])
    ev = _one(raw, ctx)
    assert len(ev.files) == 1
    assert Path(ev.files[0]).resolve().is_relative_to(tmp_path.resolve())


def test_counters_by_command_and_type() -> None:
    stats = DecodeStats()
    ctx = DecodeContext(DEVICE)
    for name in ("vmd_active.xml", "vmd_inactive.xml", "io_active.xml"):
        decode(_fixture(name), ctx, stats)
    snap = stats.snapshot()
    assert snap["by_command"] == {"0x6009": 3}
    assert snap["by_type"] == {"motion": 2, "io": 1}


def test_disk_alarm_names_its_disk() -> None:
    body = b"<EventNotificationAlert><eventType>diskfull</eventType>"
    body += b"<eventState>active</eventState><hddID>2</hddID></EventNotificationAlert>"
    ev = _one(_raw(body, 1))
    assert (ev.type, ev.channel, ev.attributes["disk"]) == ("disk_full", None, 2)
