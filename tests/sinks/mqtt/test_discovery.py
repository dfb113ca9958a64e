"""Home Assistant discovery: the pure payload functions, then what the MQTT sink publishes
on a real broker (on connect, for new entities, and again on Home Assistant's birth)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hikd.events import DeviceRef, Event, health
from hikd.sinks.base import SinkContext
from hikd.sinks.mqtt.discovery import (
    AlarmEntity,
    DeviceFacts,
    Discovery,
    alarm_config,
    configured_entities,
    connectivity_config,
    device_block,
    device_class,
    device_configs,
    health_config,
    unique_id,
)
from hikd.sinks.mqtt.sink import MqttConfig, MqttSink
from hikd.sinks.mqtt.topics import Topics
from tests.mosquitto import Mosquitto, Received, Subscriber, retained

SERIAL = "DS-7608NI-K20820190101CCWRC12345678WCVU"
NVR = DeviceRef("nvr", SERIAL, "192.0.2.10")
CAM = DeviceRef("porch cam", "DS-2CD2143G0-I20200101AAWRE1", "192.0.2.11")
D = Discovery(Topics("hikd"), "homeassistant", off_delay_s=7, qos=1, origin_version="0.1.0")


def nvr_facts(**changes: Any) -> DeviceFacts:
    facts = DeviceFacts(
        "nvr",
        SERIAL,
        "DS-7608NI-K2",
        "V4.30.085",
        analog_channels=0,
        ip_channels=4,
        start_ip_channel=33,
    )
    for key, value in changes.items():
        setattr(facts, key, value)
    return facts


# -- pure functions --------------------------------------------------------------------


def test_motion_binary_sensor() -> None:
    config = alarm_config(D, nvr_facts(), AlarmEntity(33, "motion"))
    uid = f"hikd_{SERIAL}_33_motion"
    assert config.topic == f"homeassistant/binary_sensor/{uid}/config"
    p = config.payload
    assert p["unique_id"] == uid
    assert p["object_id"] == "nvr_33_motion"
    assert p["default_entity_id"] == "binary_sensor.nvr_33_motion"
    assert p["name"] == "Channel 33 motion"
    assert p["device_class"] == "motion"
    assert p["state_topic"] == "hikd/nvr/33/motion"
    assert (p["payload_on"], p["payload_off"]) == ("ON", "OFF")
    assert [a["topic"] for a in p["availability"]] == ["hikd/status", "hikd/nvr/availability"]
    assert all(
        (a["payload_available"], a["payload_not_available"]) == ("online", "offline")
        for a in p["availability"]
    )
    assert p["availability_mode"] == "all"
    assert "off_delay" not in p
    assert p["qos"] == 1
    assert p["origin"] == {"name": "hikd", "sw_version": "0.1.0"}
    assert p["device"] == {
        "identifiers": [SERIAL],
        "name": "nvr",
        "manufacturer": "Hikvision",
        "model": "DS-7608NI-K2",
        "sw_version": "V4.30.085",
        "serial_number": SERIAL,
    }
    assert json.loads(config.message().payload) == p
    assert config.message().retain


def test_pulse_types_get_off_delay_and_device_level_types_no_channel() -> None:
    snap = alarm_config(D, nvr_facts(), AlarmEntity(2, "face_snap")).payload
    assert snap["off_delay"] == 7 and snap["device_class"] == "occupancy"
    seen_as_pulse = alarm_config(D, nvr_facts(), AlarmEntity(2, "line_crossing", pulse=True))
    assert seen_as_pulse.payload["off_delay"] == 7
    disk = alarm_config(D, nvr_facts(), AlarmEntity(None, "disk_full")).payload
    assert disk["unique_id"] == f"hikd_{SERIAL}_device_disk_full"
    assert disk["state_topic"] == "hikd/nvr/device/disk_full"
    assert disk["name"] == "Disk full"


@pytest.mark.parametrize(
    ("type_", "expected"),
    [
        ("motion", "motion"),
        ("pir", "motion"),
        ("line_crossing", "motion"),
        ("intrusion", "motion"),
        ("region_entrance", "motion"),
        ("face_detection", "occupancy"),
        ("tamper", "tamper"),
        ("io", "safety"),
        ("video_loss", "problem"),
        ("disk_full", "problem"),
        ("disk_error", "problem"),
        ("illegal_access", "safety"),
        ("something_new", None),
    ],
)
def test_device_classes(type_: str, expected: str | None) -> None:
    assert device_class(type_) == expected
    payload = alarm_config(D, nvr_facts(), AlarmEntity(1, type_)).payload
    assert payload.get("device_class") == expected


def test_camera_behind_an_nvr_names_it_as_via_device() -> None:
    cam = DeviceFacts("porch cam", CAM.serial, via="nvr")
    assert device_block(cam, parent=nvr_facts())["via_device"] == SERIAL
    # Parent not known (yet): its name or serial as given.
    assert device_block(cam)["via_device"] == "nvr"
    assert "via_device" not in device_block(nvr_facts())


def test_without_serial_the_name_stands_in() -> None:
    facts = DeviceFacts("garage dvr")
    assert unique_id(facts, 1, "motion") == "hikd_garage_dvr_1_motion"
    block = device_block(facts)
    assert block == {
        "identifiers": ["garage dvr"],
        "name": "garage dvr",
        "manufacturer": "Hikvision",
    }


def test_connectivity_and_health_stay_available_while_the_device_is_offline() -> None:
    conn = connectivity_config(D, nvr_facts()).payload
    assert conn["device_class"] == "connectivity"
    assert conn["state_topic"] == "hikd/nvr/availability"
    assert (conn["payload_on"], conn["payload_off"]) == ("online", "offline")
    assert [a["topic"] for a in conn["availability"]] == ["hikd/status"]
    assert conn["entity_category"] == "diagnostic"
    h = health_config(D, nvr_facts())
    assert h.topic == f"homeassistant/sensor/hikd_{SERIAL}_health/config"
    assert h.payload["state_topic"] == h.payload["json_attributes_topic"] == "hikd/nvr/health"
    assert h.payload["value_template"] == "{{ value_json.state }}"
    assert [a["topic"] for a in h.payload["availability"]] == ["hikd/status"]


def test_configured_types_on_every_channel_ip_channels_from_33() -> None:
    facts = nvr_facts(analog_channels=2, start_channel=1)
    entities = configured_entities(facts, ["motion", "disk_error", "unknown"])
    assert [(e.channel, e.type) for e in entities] == [
        (1, "motion"),
        (2, "motion"),
        (33, "motion"),
        (34, "motion"),
        (35, "motion"),
        (36, "motion"),
        (None, "disk_error"),
    ]
    configs = device_configs(D, facts, entities)
    assert len(configs) == 2 + 7
    assert len({c.payload["unique_id"] for c in configs}) == len(configs)


def test_channel_names_from_the_device() -> None:
    facts = nvr_facts(channel_names={33: "Front door"})
    assert alarm_config(D, facts, AlarmEntity(33, "video_loss")).payload["name"] == (
        "Front door video loss"
    )


def test_facts_learnt_from_an_online_event() -> None:
    event = health(
        NVR,
        "online",
        serial=SERIAL,
        device_type="NVR",
        model="DS-7608NI-K2",
        firmware="V4.30.085",
        analog_channels=0,
        start_channel=1,
        ip_channels=8,
        start_ip_channel=33,
        via="",
        protocol="isapi",
    )
    facts = DeviceFacts("nvr").updated_from(event)
    assert facts == DeviceFacts("nvr", SERIAL, "DS-7608NI-K2", "V4.30.085", "", 0, 1, 8, 33)
    assert facts.channels() == list(range(33, 41))
    assert DeviceFacts.from_dict(facts.to_dict()) == facts
    # Other events only teach the serial they carry.
    other = Event(kind="alarm", type="motion", state="start", device=NVR, channel=33)
    assert DeviceFacts("nvr").updated_from(other) == DeviceFacts("nvr", SERIAL)


# -- on a real broker ------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def sink(broker: Mosquitto, tmp_path: Path) -> Iterator[MqttSink]:
    config = MqttConfig(
        host=broker.host,
        port=broker.port,
        client_id=f"hikd-test-{uuid.uuid4().hex[:8]}",
        publish_timeout_s=5,
        discovery_types=["motion", "disk_error"],
    )
    s = MqttSink(config, SinkContext("mqtt", tmp_path, {"version": "0.1.0"}))
    try:
        yield s
    finally:
        s.close()


def configs(messages: dict[str, Received] | list[Received]) -> dict[str, dict[str, Any]]:
    items = messages.values() if isinstance(messages, dict) else messages
    return {
        m.topic: json.loads(m.payload) for m in items if m.topic.endswith("/config") and m.payload
    }


def nvr_online() -> Event:
    return health(
        NVR,
        "online",
        serial=SERIAL,
        model="DS-7608NI-K2",
        firmware="V4.30.085",
        analog_channels=0,
        start_channel=1,
        ip_channels=2,
        start_ip_channel=33,
    )


def test_discovery_is_complete_and_states_are_set(broker: Mosquitto, sink: MqttSink) -> None:
    sink.open()
    batch = [
        nvr_online(),
        Event(kind="alarm", type="tamper", state="start", device=NVR, channel=34),
        Event(kind="alarm", type="face_snap", state="pulse", device=NVR, channel=33),
        health(
            CAM,
            "online",
            serial=CAM.serial,
            model="DS-2CD2143G0-I",
            analog_channels=1,
            start_channel=1,
            via="nvr",
        ),
    ]
    assert sink.send(batch) == len(batch)
    kept = retained(broker, "#")
    found = configs(kept)
    uid = f"homeassistant/binary_sensor/hikd_{SERIAL}"
    assert set(found) == {
        f"{uid}_connectivity/config",
        f"homeassistant/sensor/hikd_{SERIAL}_health/config",
        f"{uid}_33_motion/config",
        f"{uid}_34_motion/config",
        f"{uid}_device_disk_error/config",
        f"{uid}_34_tamper/config",
        f"{uid}_33_face_snap/config",
        f"homeassistant/binary_sensor/hikd_{CAM.serial}_connectivity/config",
        f"homeassistant/sensor/hikd_{CAM.serial}_health/config",
        f"homeassistant/binary_sensor/hikd_{CAM.serial}_1_motion/config",
        f"homeassistant/binary_sensor/hikd_{CAM.serial}_device_disk_error/config",
    }
    assert {m.retain for t, m in kept.items() if t.startswith("homeassistant/")} == {True}
    assert found[f"{uid}_33_face_snap/config"]["off_delay"] == 5
    cam_motion = found[f"homeassistant/binary_sensor/hikd_{CAM.serial}_1_motion/config"]
    assert cam_motion["device"]["via_device"] == SERIAL
    assert cam_motion["device"]["name"] == "porch cam"
    # Every entity's state topic has a retained value: none shows "unknown".
    for payload in found.values():
        assert payload["state_topic"] in kept, payload["state_topic"]
    assert kept["hikd/nvr/34/tamper"].payload == b"ON"
    assert kept["hikd/nvr/33/motion"].payload == b"OFF"
    assert kept["hikd/nvr/33/face_snap"].payload == b"OFF"


def test_republished_on_home_assistant_birth(broker: Mosquitto, sink: MqttSink) -> None:
    sink.open()
    assert (
        sink.send(
            [
                nvr_online(),
                Event(kind="alarm", type="motion", state="start", device=NVR, channel=33),
            ]
        )
        == 2
    )
    before = configs(retained(broker, "homeassistant/#"))
    assert len(before) == 5
    with Subscriber(broker, ["homeassistant/#", "hikd/#"]) as ha:
        # Topics, not messages: one the sink publishes while this subscribes can arrive
        # twice (as retained and live), which a count of messages would never get past.
        ha.wait_for(
            lambda ms: len(configs(ms)) == 5 and len({m.topic for m in ms}) == 12,
            "what is retained",
        )
        ha.clear()
        ha.publish("homeassistant/status", "online")  # Home Assistant (re)started
        ha.wait_for(
            lambda ms: len(configs(ms)) == 5 and any(m.topic == "hikd/nvr/33/motion" for m in ms),
            "discovery and states again",
        )
        again = [m for m in ha.messages if not m.retain and m.topic != "homeassistant/status"]
        assert configs(again) == before
        assert ha.last("hikd/nvr/33/motion").payload == b"ON"
        assert ha.last("hikd/nvr/availability").payload == b"online"
        # Discovery first, so entities exist when their states arrive.
        topics = [m.topic for m in again]
        first_state = topics.index("hikd/nvr/33/motion")
        assert all(t.startswith("homeassistant/") for t in topics[:5])
        assert first_state > 4
        # An `offline` birth (Home Assistant stopping) changes nothing.
        ha.clear()
        ha.publish("homeassistant/status", "offline")
        ha.publish("hikd/test-marker", "x")
        ha.wait_topic("hikd/test-marker")
        assert not configs(ha.messages)


def test_republished_on_reconnect(broker: Mosquitto, sink: MqttSink) -> None:
    sink.open()
    assert sink.send([nvr_online()]) == 1
    broker.restart()  # no persistence: discovery is gone from the broker
    with Subscriber(broker, ["homeassistant/#"]) as ha:
        ha.wait_for(lambda ms: len(configs(ms)) == 5, "discovery after the reconnect", 30)


def test_serial_learnt_later_replaces_name_based_entities(
    broker: Mosquitto, sink: MqttSink
) -> None:
    nameless = DeviceRef("dvr")
    sink.open()
    assert (
        sink.send([Event(kind="alarm", type="motion", state="start", device=nameless, channel=1)])
        == 1
    )
    old = "homeassistant/binary_sensor/hikd_dvr_1_motion/config"
    assert old in configs(retained(broker, "homeassistant/#"))
    assert sink.send([health(nameless, "online", serial="SER123")]) == 1
    found = configs(retained(broker, "homeassistant/#"))
    assert old not in found  # the empty retained payload removed it
    assert "homeassistant/binary_sensor/hikd_SER123_1_motion/config" in found


def test_discovery_off(broker: Mosquitto, tmp_path: Path) -> None:
    config = MqttConfig(
        host=broker.host, port=broker.port, client_id="hikd-nodisc", discovery=False
    )
    s = MqttSink(config, SinkContext("mqtt", tmp_path, {}))
    try:
        s.open()
        assert s.send([nvr_online()]) == 1
        assert configs(retained(broker, "#")) == {}
    finally:
        s.close()


def test_hikd_itself_is_a_device_whose_connectivity_is_the_bridge_status() -> None:
    facts = DeviceFacts("hikd")
    assert facts.is_hikd
    assert connectivity_config(D, facts).payload["state_topic"] == "hikd/status"
    assert health_config(D, facts).payload["state_topic"] == "hikd/hikd/health"
    assert device_block(facts) == {"identifiers": ["hikd"], "name": "hikd", "model": "hikd"}
    assert not DeviceFacts("hikd", serial="X").is_hikd


def test_alarm_inputs_and_disks_are_sensors_of_their_own() -> None:
    from hikd.events import DeviceRef, Event
    from hikd.sinks.mqtt.discovery import entity_name
    from hikd.sinks.mqtt.topics import Topics, event_messages, where_of

    device = DeviceRef("nvr", "SERIAL1")
    io2 = Event(
        kind="alarm", type="io", state="start", device=device, attributes={"alarm_input": 2}
    )
    io3 = Event(
        kind="alarm", type="io", state="start", device=device, attributes={"alarm_input": 3}
    )
    assert where_of(io2) == "input2" and where_of(io3) == "input3"
    topics = {m.topic for e in (io2, io3) for m in event_messages(Topics("hikd"), e)}
    assert {"hikd/nvr/input2/io", "hikd/nvr/input3/io"} <= topics
    facts = DeviceFacts(name="nvr", serial="SERIAL1")
    assert entity_name(facts, "input2", "io") == "Alarm input 2 io"
