"""Fuzzing the decoders: whatever bytes arrive, for whatever command, `decode` returns a
list of JSON-serialisable events and never hits its own bug path (``decode_error``).

Inputs: random bytes; valid payloads (the XML/JSON fixtures, every binary struct built
with cffi from the header layouts) with random mutations; random well-formed alerts
rendered as XML and as JSON."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hikd.events import DeviceRef, Event
from hikd.listeners.decode import DecodeContext, DecodeStats, decode
from hikd.sdk.ffi import ffi
from hikd.sdk.raw import NO_ALARMER, RawAlarm, RawPicture

ALERTS = Path(__file__).parents[2] / "fixtures" / "alerts"
CTX = DecodeContext(DeviceRef("fuzz-nvr"), start_channel=1, start_ip_channel=33)
FUZZ = settings(
    # HIKD_FUZZ_EXAMPLES=5000 for a long run; the default keeps the suite fast.
    max_examples=int(os.environ.get("HIKD_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

COMMANDS = [0x1100, 0x1102, 0x4000, 0x4001, 0x4002, 0x4006, 0x4007, 0x6000, 0x6009, 0x7FFF]
STRUCTS = {
    0x1100: "NET_DVR_ALARMINFO",
    0x1102: "NET_VCA_RULE_ALARM",
    0x4000: "NET_DVR_ALARMINFO_V30",
    0x4001: "NET_DVR_IPALARMINFO",
    0x4002: "NET_DVR_IPALARMINFO_V31",
    0x4006: "NET_DVR_ALARM_HOT_SPARE",
    0x4007: "NET_DVR_ALARMINFO_V40",
}


def _seeds() -> list[tuple[int, int, bytes]]:
    """(command, data_type, payload) of valid messages to mutate."""
    seeds = []
    for path in sorted(ALERTS.iterdir()):
        seeds.append((0x6009, 2 if path.suffix == ".json" else 1, path.read_bytes()))
    for command, name in STRUCTS.items():
        p = ffi.new(f"{name} *")
        seeds.append((command, 0, bytes(ffi.buffer(p))))
    v40 = ffi.new("NET_DVR_ALARMINFO_V40 *")
    v40.struAlarmFixedHeader.dwAlarmType = 3
    v40.struAlarmFixedHeader.uStruAlarm.struAlarmChannel.dwAlarmChanNum = 2
    seeds.append((0x4007, 0, bytes(ffi.buffer(v40)) + struct.pack("<2I", 1, 2)))
    v30 = ffi.new("NET_DVR_ALARMINFO_V30 *")
    v30.dwAlarmType = 3
    v30.byChannel[0] = 1
    seeds.append((0x4000, 0, bytes(ffi.buffer(v30))))
    for name in ("NET_DVR_VQD_ALARM", "NET_DVR_VQD_DIAGNOSE_INFO"):
        p = ffi.new(f"{name} *")
        p.dwSize = ffi.sizeof(name)
        seeds.append((0x6000, 0, bytes(ffi.buffer(p))))
    seeds.append((0x7FFF, 0, struct.pack("<II", 0x6009, 7) + b"The XML message\0"))
    return seeds


SEEDS = _seeds()


def _check(events: Any) -> None:
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event, Event)
        assert event.type != "decode_error", event.attributes
        assert event.state in ("start", "stop", "pulse")
        assert event.time.tzinfo is not None and event.received.tzinfo is not None

        def no_constants(name: str) -> Any:
            raise AssertionError(f"{name} in event JSON")

        json.loads(event.to_json(), parse_constant=no_constants)


def _decode(command: int, payload: bytes, data_type: int, **kw: Any) -> list[Event]:
    raw = RawAlarm(command, NO_ALARMER, payload, time.time_ns(), data_type=data_type, **kw)
    return decode(raw, CTX, DecodeStats())


@FUZZ
@given(
    command=st.sampled_from(COMMANDS) | st.integers(-(2**31), 2**31 - 1),
    payload=st.binary(max_size=16_000),
    data_type=st.integers(0, 3),
)
def test_random_bytes_for_every_command(command: int, payload: bytes, data_type: int) -> None:
    _check(_decode(command, payload, data_type))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, int, bytes]:
    command, data_type, payload = draw(st.sampled_from(SEEDS))
    data = bytearray(payload)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "dword"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "dword" and len(data) >= pos + 4:
            data[pos : pos + 4] = struct.pack("<I", draw(st.integers(0, 2**32 - 1)))
    return command, data_type, bytes(data)


@FUZZ
@given(message=mutated())
def test_mutated_valid_payloads(message: tuple[int, int, bytes]) -> None:
    command, data_type, payload = message
    _check(_decode(command, payload, data_type))


@FUZZ
@given(
    message=mutated(),
    pictures=st.lists(
        st.builds(
            RawPicture,
            filename=st.text(max_size=20),
            pic_type=st.integers(0, 2),
            data=st.sampled_from([b"", b"\xff\xd8\xff\xd9", b"<EventNotificationAlert/>"])
            | st.binary(max_size=64),
        ),
        max_size=3,
    ),
)
def test_mutated_payloads_with_pictures(
    message: tuple[int, int, bytes], pictures: list[RawPicture]
) -> None:
    command, data_type, payload = message
    _check(_decode(command, payload, data_type, pictures=pictures))


FIELD_NAMES = st.sampled_from(
    [
        "eventType", "eventState", "channelID", "dynChannelID", "dateTime", "inputIOPortID",
        "activePostCount", "macAddress", "regionID", "DetectionRegionList",
        "DetectionRegionEntry", "RegionCoordinatesList", "RegionCoordinates", "positionX",
        "positionY", "detectionTarget", "TargetRect", "X", "width", "DurationList",
        "Duration", "relationEvent", "hikdSimSentNs", "Extensions", "x-y", "_",
    ]
)  # fmt: skip
LEAVES = (
    st.sampled_from(["VMD", "active", "inactive", "videoloss", "IO", "linedetection", "human"])
    | st.text(max_size=12)
    | st.integers(-(2**70), 2**70).map(str)
    | st.sampled_from(["2024-03-10T10:02:11+01:00", "2024-03-10T10:02:11", "nan", "1e999"])
)
TREES = st.recursive(
    LEAVES,
    lambda kids: st.dictionaries(FIELD_NAMES, kids | st.lists(kids, max_size=3), max_size=6),
    max_leaves=30,
)


def _xml(name: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(k, v) for k, v in value.items())
    elif isinstance(value, list):
        return "".join(_xml(name, v) for v in value)
    else:
        inner = escape(value)
    tag = name if name[:1].isalpha() or name[:1] == "_" else "n"
    return f"<{tag}>{inner}</{tag}>"


def _clean(text: str) -> str:
    # XML 1.0 cannot carry most control characters or lone surrogates at all.
    return "".join(c for c in text if c in "\t\n\r" or (c >= " " and not "\ud800" <= c <= "\udfff"))


@FUZZ
@given(tree=st.dictionaries(FIELD_NAMES, TREES, max_size=10), wrap=st.booleans())
def test_random_wellformed_alerts_as_xml_and_json(tree: dict[str, Any], wrap: bool) -> None:
    xml = _clean(_xml("EventNotificationAlert", tree)) + "\r\n"
    _check(_decode(0x6009, xml.encode("utf-8"), 1))
    body = {"EventNotificationAlert": tree} if wrap else tree
    _check(_decode(0x6009, json.dumps(body).encode() + b"\r\n", 2))
