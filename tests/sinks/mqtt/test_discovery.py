"""Home Assistant discovery: the pure payload functions (the messages on a real broker are
in test_ha_broker.py; Home Assistant's own schemas check them in test_ha_schemas.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hikd.events import DeviceRef, Event, health
from hikd.sinks.mqtt.announce import Known, device_configs
from hikd.sinks.mqtt.discovery import Discovery, device_block, unique_id
from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.ha_alarms import (
    AlarmEntity,
    alarm_config,
    configured_entities,
    entity_name,
    image_config,
)
from hikd.sinks.mqtt.ha_diagnostics import (
    concern_config,
    connectivity_config,
    disk_configs,
    health_config,
    hikd_configs,
)
from hikd.sinks.mqtt.topics import Topics, event_messages, where_of

SERIAL = "DS-7608NI-K20820190101CCWRC12345678WCVU"
NVR = DeviceRef("nvr", SERIAL, "192.0.2.10:8000")
D = Discovery(
    Topics("hikd"),
    "homeassistant",
    off_delay_s=7,
    qos=1,
    origin_version="0.1.0",
    instance_id="srv1",
)


def nvr_facts(**changes: Any) -> DeviceFacts:
    facts = DeviceFacts(
        "nvr",
        SERIAL,
        "DS-7608NI-K2",
        "V4.30.085",
        analog_channels=0,
        ip_channels=4,
        start_ip_channel=1,
        channel_names={1: "Front door", 2: "Garage"},
        alarm_inputs=4,
        alarm_outputs=1,
        disks=2,
        mac="C0:56:E3:00:00:01",
        hardware="0x0",
        address="192.0.2.10:8000",
    )
    for key, value in changes.items():
        setattr(facts, key, value)
    return facts


def cam_facts() -> DeviceFacts:
    return DeviceFacts("porch", "DS-2CD2143G0-I20200101AAWRE1", "DS-2CD2143G0-I", analog_channels=1)


def test_a_recorder_channel_is_a_camera_of_its_own() -> None:
    config = alarm_config(D, nvr_facts(), AlarmEntity(1, "line_crossing"))
    uid = f"hikd_{SERIAL}_1_line_crossing"
    assert config.topic == f"homeassistant/binary_sensor/{uid}/config"
    p = config.payload
    assert p["unique_id"] == uid
    assert p["default_entity_id"] == "binary_sensor.nvr_1_line_crossing"
    # Home Assistant shows "Front door Line crossing": the device's name, then the entity's.
    assert p["name"] == "Line crossing"
    assert p["device"] == {
        "identifiers": [f"{SERIAL}_channel1"],
        "name": "Front door",
        "manufacturer": "Hikvision",
        "model": "Channel 1 of DS-7608NI-K2",
        "via_device": SERIAL,
        "configuration_url": "http://192.0.2.10/",
    }
    assert p["device_class"] == "motion"
    assert p["state_topic"] == "hikd/nvr/1/line_crossing"
    assert (p["payload_on"], p["payload_off"]) == ("ON", "OFF")
    assert [a["topic"] for a in p["availability"]] == ["hikd/status", "hikd/nvr/availability"]
    assert p["availability_mode"] == "all"
    assert "off_delay" not in p
    assert p["origin"] == {"name": "hikd", "sw_version": "0.1.0"}
    assert json.loads(config.message().payload) == p
    assert config.message().retain
    # A channel without a name on the device: the recorder's name and the number.
    unnamed = alarm_config(D, nvr_facts(), AlarmEntity(3, "motion")).payload["device"]
    assert unnamed["name"] == "nvr channel 3"
    # An IP channel whose camera's address the recorder lists: the camera's own page.
    cam = nvr_facts(channel_sources={3: "10.0.0.13:8000"})
    block = alarm_config(D, cam, AlarmEntity(3, "motion")).payload["device"]
    assert block["configuration_url"] == "http://10.0.0.13/"


def test_the_recorder_itself_serial_mac_versions_and_web_page() -> None:
    assert device_block(nvr_facts()) == {
        "identifiers": [SERIAL],
        "name": "nvr",
        "manufacturer": "Hikvision",
        "model": "DS-7608NI-K2",
        "sw_version": "V4.30.085",
        "hw_version": "0x0",
        "serial_number": SERIAL,
        "connections": [["mac", "c0:56:e3:00:00:01"]],
        "configuration_url": "http://192.0.2.10/",
    }


def test_a_single_channel_camera_is_one_device_without_channel_1() -> None:
    p = alarm_config(D, cam_facts(), AlarmEntity(1, "motion")).payload
    assert p["name"] == "Motion"
    assert p["device"]["identifiers"] == [cam_facts().serial]
    assert image_config(D, cam_facts(), 1).payload["name"] == "Picture"


@pytest.mark.parametrize(
    ("where", "type_", "name", "topic"),
    [
        ("input2", "io", "Alarm input 2", "hikd/nvr/input2/io"),
        ("disk1", "disk_full", "Disk 1 full", "hikd/nvr/disk1/disk_full"),
        ("disk2", "disk_error", "Disk 2 error", "hikd/nvr/disk2/disk_error"),
        (None, "illegal_access", "Illegal access", "hikd/nvr/device/illegal_access/event"),
        (
            None,
            "network_disconnected",
            "Network disconnected",
            "hikd/nvr/device/network_disconnected",
        ),
    ],
)
def test_inputs_disks_and_the_recorder_in_words(
    where: str | None, type_: str, name: str, topic: str
) -> None:
    p = alarm_config(D, nvr_facts(), AlarmEntity(where, type_)).payload
    assert (p["name"], p["state_topic"]) == (name, topic)
    assert p["device"]["identifiers"] == [SERIAL]


def test_announced_topics_are_the_topics_states_go_to() -> None:
    """The entities announced before the first alarm, for every kind of place, against the
    topics the events of those types are published on."""
    facts = nvr_facts()
    types = ["motion", "io", "disk_full", "illegal_access", "face_snap"]
    entities = configured_entities(facts, types)
    announced = {alarm_config(D, facts, e).payload["state_topic"] for e in entities}
    events = [
        Event(kind="alarm", type="motion", state="start", device=NVR, channel=4),
        Event(kind="alarm", type="io", state="start", device=NVR, attributes={"alarm_input": 4}),
        Event(kind="alarm", type="disk_full", state="start", device=NVR, attributes={"disk": 2}),
        Event(kind="alarm", type="illegal_access", state="pulse", device=NVR),
        Event(kind="alarm", type="face_snap", state="pulse", device=NVR, channel=2),
    ]
    published = {m.topic for e in events for m in event_messages(Topics("hikd"), e)}
    assert {
        "hikd/nvr/4/motion",
        "hikd/nvr/input4/io",
        "hikd/nvr/disk2/disk_full",
        "hikd/nvr/device/illegal_access/event",
        "hikd/nvr/2/face_snap/event",
    } <= announced & published
    assert [where_of(e) for e in events] == [4, "input4", "disk2", None, 2]
    assert len(announced) == 4 + 4 + 2 + 1 + 4


def test_types_the_device_supports_where_it_says() -> None:
    from hikd.sinks.mqtt.ha_alarms import supported_entities

    facts = nvr_facts(
        supported={"line_crossing": [2], "io": ["input1"], "disk_full": [None], "unknown": [1]}
    )
    assert [(e.channel, e.type) for e in supported_entities(facts)] == [
        (2, "line_crossing"),
        ("input1", "io"),
        # One trigger for the device: its alarms name the disk, so every disk.
        ("disk1", "disk_full"),
        ("disk2", "disk_full"),
    ]


def test_one_shot_types_are_event_entities_with_what_the_device_said() -> None:
    p = alarm_config(D, nvr_facts(), AlarmEntity(2, "vehicle")).payload
    assert p["event_types"] == ["vehicle"]
    assert p["state_topic"] == "hikd/nvr/2/vehicle/event"
    assert "payload_on" not in p and "off_delay" not in p
    event = Event(
        kind="alarm",
        type="vehicle",
        state="pulse",
        device=NVR,
        channel=2,
        attributes={"license_plate": "AB123CD", "region_id": 1, "pictures": [{"size": 1}]},
        files=("/pictures/1.jpg",),
    )
    sent = {m.topic: m for m in event_messages(Topics("hikd"), event)}
    message = sent["hikd/nvr/2/vehicle/event"]
    assert not message.retain
    data = json.loads(message.payload)
    assert data["event_type"] == "vehicle" and data["license_plate"] == "AB123CD"
    assert data["region_id"] == 1 and data["channel"] == 2 and "pictures" not in data
    assert data["files"] == ["/pictures/1.jpg"] and data["id"] == event.id
    # A start/stop type seen as a pulse keeps its binary sensor, which turns itself off.
    seen_as_pulse = alarm_config(D, nvr_facts(), AlarmEntity(2, "line_crossing", pulse=True))
    assert seen_as_pulse.payload["off_delay"] == 7


def test_a_picture_per_channel() -> None:
    p = image_config(D, nvr_facts(), 2).payload
    assert p["image_topic"] == "hikd/nvr/2/image" and p["content_type"] == "image/jpeg"
    assert p["device"]["name"] == "Garage" and p["name"] == "Picture"
    with_images = Discovery(Topics("hikd"), images=True)
    known = Known(nvr_facts())
    images = [c for c in device_configs(with_images, known) if "/image/" in c.topic]
    assert len(images) == 4
    assert not [c for c in device_configs(D, known) if "/image/" in c.topic]


def test_health_per_concern_and_disks() -> None:
    conn = connectivity_config(D, nvr_facts()).payload
    assert conn["state_topic"] == "hikd/nvr/availability"
    assert [a["topic"] for a in conn["availability"]] == ["hikd/status"]
    h = health_config(D, nvr_facts()).payload
    assert h["state_topic"] == h["json_attributes_topic"] == "hikd/nvr/health"
    disk = concern_config(D, nvr_facts(), "disk/2").payload
    assert disk["state_topic"] == "hikd/nvr/health/disk/2" and disk["name"] == "Disk 2 health"
    assert disk["device_class"] == "problem"
    assert "problem" in disk["value_template"]
    sensors = [c.payload for c in disk_configs(D, nvr_facts(), 1)]
    assert [s["name"] for s in sensors] == ["Disk 1", "Disk 1 capacity", "Disk 1 free space"]
    assert {s["state_topic"] for s in sensors} == {"hikd/nvr/disk1/state"}
    configs = device_configs(
        D, Known(nvr_facts(), concerns=["connectivity", "arming", "disk/1"], disks=[1])
    )
    names = [c.payload["name"] for c in configs]
    assert names[:5] == ["Connectivity", "Health", "Login", "Arming", "Disk 1 health"]
    assert len({c.payload["unique_id"] for c in configs}) == len(configs)


def test_hikd_itself_identified_by_its_instance() -> None:
    configs = {c.payload["name"]: c.payload for c in hikd_configs(D)}
    assert set(configs) == {"Connectivity", "Version", "Devices online", "Outbox backlog"}
    conn = configs["Connectivity"]
    assert conn["unique_id"] == "hikd_srv1_connectivity"
    assert conn["device"]["identifiers"] == ["hikd_srv1"]
    # No availability: when hikd's last will says offline, it shows disconnected.
    assert conn["state_topic"] == "hikd/status" and "availability" not in conn
    assert configs["Version"]["state_topic"] == "hikd/info"
    assert [a["topic"] for a in configs["Outbox backlog"]["availability"]] == ["hikd/status"]
    # hikd's own health (sinks, outbox) belongs to the same device.
    sink = concern_config(D, DeviceFacts("hikd"), "sink/mqtt").payload
    assert sink["device"]["identifiers"] == ["hikd_srv1"] and sink["name"] == "Sink mqtt"


def test_without_serial_the_name_stands_in() -> None:
    facts = DeviceFacts("garage dvr")
    assert unique_id(facts, 1, "motion") == "hikd_garage_dvr_1_motion"
    assert device_block(facts) == {
        "identifiers": ["garage dvr"],
        "name": "garage dvr",
        "manufacturer": "Hikvision",
    }
    # Nothing known of its channels: the entity says which.
    assert entity_name(facts, 3, "motion") == "Channel 3 motion"


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
        start_ip_channel=1,
        alarm_inputs=4,
        disks=2,
        mac="c0:56:e3:00:00:01",
        hardware="0x0",
        supported_types={"motion": [1, 2], "line_crossing": [2], "io": ["input1"]},
        channel_names={"1": "Front door"},
        channels=[{"number": 1, "kind": "ip", "source": "10.0.0.11:8000"}, {"number": 2}],
        protocol="isapi",
    )
    facts = DeviceFacts("nvr").updated_from(event)
    assert (facts.serial, facts.model, facts.ip_channels, facts.alarm_inputs) == (
        SERIAL,
        "DS-7608NI-K2",
        8,
        4,
    )
    assert facts.supported == {"motion": [1, 2], "line_crossing": [2], "io": ["input1"]}
    assert facts.channel_names == {1: "Front door"} and facts.is_recorder
    assert facts.channel_sources == {1: "10.0.0.11:8000"}
    assert facts.configuration_url() == "http://192.0.2.10/"
    assert DeviceFacts.from_dict(facts.to_dict()) == facts
    # Other events teach the serial and address they carry, and an alert's MAC.
    other = Event(
        kind="alarm",
        type="motion",
        state="start",
        device=NVR,
        channel=3,
        attributes={"mac": "aa:bb:cc:dd:ee:ff"},
    )
    learnt = DeviceFacts("nvr").updated_from(other)
    assert (learnt.serial, learnt.address, learnt.mac) == (
        SERIAL,
        "192.0.2.10:8000",
        "aa:bb:cc:dd:ee:ff",
    )
    assert learnt.updated_from(other) is learnt
    # A recorder's alerts may carry a camera's MAC: only deviceInfo's counts there.
    assert facts.updated_from(other).mac == "c0:56:e3:00:00:01"
    assert DeviceFacts("nvr", ip_channels=4).updated_from(other).mac == ""


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("motoin", "'motoin' is not an alarm type hikd knows; did you mean 'motion'?"),
        ("anpr", "'anpr' is called 'vehicle' in hikd"),
        ("region_exiting", "'region_exiting' is called 'region_exit' in hikd"),
        ("vehicle_detection", "'vehicle_detection' is called 'vehicle' in hikd"),
        ("unknown", "'unknown' is not an alarm type hikd knows"),
    ],
)
def test_discovery_types_are_names_hikd_emits(given: str, says: str) -> None:
    """A type that never occurs would be an entity that never gets a state."""
    from pydantic import ValidationError

    from hikd.sinks.mqtt.config import MqttConfig

    with pytest.raises(ValidationError, match=says.replace("?", r"\?")):
        MqttConfig(discovery_types=["motion", given])
    assert MqttConfig(discovery_types=["motion", "io", "disk_full"]).discovery_types
