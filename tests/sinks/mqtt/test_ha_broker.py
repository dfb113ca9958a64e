"""Home Assistant discovery on a real broker (mosquitto): what the MQTT sink publishes on
connect, for new entities and concerns, and again on Home Assistant's birth."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hikd.delivery.outbox import HIKD
from hikd.events import DeviceRef, Event, health
from hikd.sinks.base import SinkContext
from hikd.sinks.mqtt.sink import MqttConfig, MqttSink
from tests.mosquitto import Mosquitto, Received, Subscriber, retained
from tests.support import wait_for

SERIAL = "DS-7608NI-K20820190101CCWRC12345678WCVU"
NVR = DeviceRef("nvr", SERIAL, "192.0.2.10:8000")
CAM = DeviceRef("porch cam", "DS-2CD2143G0-I20200101AAWRE1", "192.0.2.11:8000")
HIKD_CONFIGS = 4
"""hikd's own device: connectivity, version, devices online, outbox backlog."""
NVR_CONFIGS = 3 + 2 + 1
"""`nvr_online()`: connectivity, health and its concern; motion on 33 and 34, disk 1's error."""


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
        instance_id="test",
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
        disks=1,
        channel_names={"33": "Front door"},
        mac="c0:56:e3:00:00:01",
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
    nvr = f"homeassistant/binary_sensor/hikd_{SERIAL}"
    cam = f"homeassistant/binary_sensor/hikd_{CAM.serial}"
    assert set(found) == {
        "homeassistant/binary_sensor/hikd_test_connectivity/config",
        "homeassistant/sensor/hikd_test_version/config",
        "homeassistant/sensor/hikd_test_devices_online/config",
        "homeassistant/sensor/hikd_test_outbox_backlog/config",
        f"{nvr}_connectivity/config",
        f"homeassistant/sensor/hikd_{SERIAL}_health/config",
        f"{nvr}_health_connectivity/config",
        f"{nvr}_33_motion/config",
        f"{nvr}_34_motion/config",
        f"{nvr}_disk1_disk_error/config",
        f"{nvr}_34_tamper/config",
        f"homeassistant/event/hikd_{SERIAL}_33_face_snap/config",
        f"{cam}_connectivity/config",
        f"homeassistant/sensor/hikd_{CAM.serial}_health/config",
        f"{cam}_health_connectivity/config",
        f"{cam}_1_motion/config",
    }
    assert {m.retain for t, m in kept.items() if t.startswith("homeassistant/")} == {True}
    front_door = found[f"{nvr}_33_motion/config"]["device"]
    assert (front_door["name"], front_door["via_device"]) == ("Front door", SERIAL)
    assert found[f"{nvr}_connectivity/config"]["device"]["connections"] == [
        ["mac", "c0:56:e3:00:00:01"]
    ]
    cam_motion = found[f"{cam}_1_motion/config"]
    assert cam_motion["device"]["via_device"] == SERIAL
    assert (cam_motion["device"]["name"], cam_motion["name"]) == ("porch cam", "Motion")
    # Every state topic has a retained value: no entity shows "unknown". (Event entities
    # show when the last event came: theirs are never retained.)
    for payload in found.values():
        if payload["default_entity_id"].startswith("event."):
            continue
        assert payload["state_topic"] in kept, payload["state_topic"]
    assert kept["hikd/nvr/34/tamper"].payload == b"ON"
    assert kept["hikd/nvr/33/motion"].payload == b"OFF"
    info = json.loads(kept["hikd/info"].payload)
    assert info["devices_online"] == 2 and info["instance_id"] == "test"


def test_pictures_concerns_and_disks_get_entities_as_they_come(
    broker: Mosquitto, tmp_path: Path
) -> None:
    picture = tmp_path / "p.jpg"
    picture.write_bytes(b"\xff\xd8jpeg\xff\xd9")
    snapshot = tmp_path / "s.jpg"
    snapshot.write_bytes(b"\xff\xd8snapshot\xff\xd9")
    config = MqttConfig(
        host=broker.host, port=broker.port, client_id="hikd-pics", images=True, instance_id="t"
    )
    s = MqttSink(config, SinkContext("mqtt", tmp_path / "state", {"version": "0.1.0"}))
    try:
        s.open()
        with Subscriber(broker, ["homeassistant/#", "hikd/#"]) as ha:
            batch = [
                nvr_online(),
                Event(
                    kind="alarm",
                    type="motion",
                    state="start",
                    device=NVR,
                    channel=34,
                    files=(str(picture),),
                ),
                health(
                    NVR,
                    "status",
                    disks=[{"id": 1, "status": "ok", "capacity_mb": 1000, "free_mb": 10}],
                ),
                health(NVR, "disk_full", "start", disk=1, free_mb=10),
                Event(
                    kind="file",
                    type="snapshot",
                    state="pulse",
                    device=NVR,
                    channel=33,
                    files=(str(snapshot),),
                ),
            ]
            assert s.send(batch) == len(batch)
            ha.wait_topic("hikd/nvr/health/disk/1")
            kept = retained(broker, "#")
    finally:
        s.close()
    found = configs(kept)
    image = found[f"homeassistant/image/hikd_{SERIAL}_34_image/config"]
    assert kept[image["image_topic"]].payload == picture.read_bytes()
    # The latest picture of a channel, an alarm's or a snapshot's.
    snapped = found[f"homeassistant/image/hikd_{SERIAL}_33_image/config"]
    assert kept[snapped["image_topic"]].payload == snapshot.read_bytes()
    disk = found[f"homeassistant/sensor/hikd_{SERIAL}_disk1_free/config"]
    assert json.loads(kept[disk["state_topic"]].payload)["free_mb"] == 10
    concern = found[f"homeassistant/binary_sensor/hikd_{SERIAL}_health_disk_1/config"]
    assert json.loads(kept[concern["state_topic"]].payload)["state"] == "problem"


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
    n = len(before)
    assert n == HIKD_CONFIGS + NVR_CONFIGS
    everything = set(retained(broker, "#"))
    with Subscriber(broker, ["homeassistant/#", "hikd/#"]) as ha:
        # Topics, not messages: one the sink publishes while this subscribes can arrive
        # twice (as retained and live), which a count of messages would never get past.
        ha.wait_for(
            lambda ms: len(configs(ms)) == n and {m.topic for m in ms} == everything,
            "what is retained",
        )
        ha.clear()
        ha.publish("homeassistant/status", "online")  # Home Assistant (re)started
        ha.wait_for(
            lambda ms: len(configs(ms)) == n and any(m.topic == "hikd/nvr/33/motion" for m in ms),
            "discovery and states again",
        )
        again = [m for m in ha.messages if not m.retain and m.topic != "homeassistant/status"]
        assert configs(again) == before
        assert ha.last("hikd/nvr/33/motion").payload == b"ON"
        assert ha.last("hikd/nvr/availability").payload == b"online"
        # Discovery first, so entities exist when their states arrive.
        topics = [m.topic for m in again]
        first_state = topics.index("hikd/nvr/33/motion")
        assert all(t.startswith("homeassistant/") for t in topics[:n])
        assert first_state >= n
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
        ha.wait_for(
            lambda ms: len(configs(ms)) == HIKD_CONFIGS + NVR_CONFIGS,
            "discovery after the reconnect",
            30,
        )


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


@pytest.mark.parametrize("first", ["the new name", "the reload"])
def test_a_device_renamed_by_a_reload_keeps_its_entities_and_loses_its_old_topics(
    first: str, broker: Mosquitto, sink: MqttSink
) -> None:
    """Renamed in the file: the reload removes "nvr" and adds "recorder", the same recorder
    (serial). Its entities are tied to the serial: they are never withdrawn (Home Assistant
    would delete them and their history), whether the new name's login or the reload's event
    comes first; the old name's retained topics are cleared."""
    renamed = DeviceRef("recorder", SERIAL, NVR.address)
    sink.open()
    motion = Event(kind="alarm", type="motion", state="start", device=NVR, channel=33)
    assert sink.send([nvr_online(), motion]) == 2
    assert retained(broker, "hikd/nvr/33/motion")["hikd/nvr/33/motion"].payload == b"ON"
    before = configs(retained(broker, "homeassistant/#"))
    online = dataclasses.replace(nvr_online(), device=renamed)
    reload = health(HIKD, "reload", ok=True, removed={"nvr": "removed"}, added=["recorder"])
    with Subscriber(broker, ["homeassistant/#"]) as ha:
        batches = [[online], [reload]] if first == "the new name" else [[reload], [online]]
        for batch in batches:
            assert sink.send(batch) == 1
        ha.publish("homeassistant/test-marker", "x")  # after all the sink sent
        ha.wait_topic("homeassistant/test-marker")
        withdrawn = [m.topic for m in ha.messages if SERIAL in m.topic and not m.payload]
    assert withdrawn == []
    after = configs(retained(broker, "homeassistant/#"))
    uid = f"hikd_{SERIAL}"
    ours = {t for t in after if SERIAL in t}
    assert ours == {t for t in before if SERIAL in t}  # the same ids, named by "recorder"
    assert after[f"homeassistant/binary_sensor/{uid}_33_motion/config"]["state_topic"] == (
        "hikd/recorder/33/motion"
    )
    assert retained(broker, "hikd/nvr/#") == {}
    assert set(retained(broker, "hikd/recorder/#")) >= {
        "hikd/recorder/availability",
        "hikd/recorder/33/motion",
    }
    assert "nvr" not in sink.state.devices

    # Removed for good: its entities leave Home Assistant, hikd's own stay.
    gone = health(HIKD, "reload", ok=True, removed={"recorder": "disabled"})
    assert sink.send([gone]) == 1
    after = configs(retained(broker, "homeassistant/#"))
    assert not [t for t in after if SERIAL in t], after
    assert retained(broker, "hikd/recorder/#") == {}
    info = json.loads(retained(broker, "hikd/info")["hikd/info"].payload)
    assert info["devices_online"] == 0


def test_a_removed_device_leaves_once_the_devices_added_with_it_said_who_they_are(
    broker: Mosquitto, sink: MqttSink
) -> None:
    """One reload removes the recorder and adds an unrelated camera: the recorder's entities
    leave as soon as the camera has logged in (its serial is not the recorder's)."""
    sink.open()
    assert sink.send([nvr_online()]) == 1
    reload = health(HIKD, "reload", ok=True, removed={"nvr": "removed"}, added=[CAM.name])
    assert sink.send([reload]) == 1
    assert [t for t in configs(retained(broker, "homeassistant/#")) if SERIAL in t]
    assert sink.send([health(CAM, "online", serial=CAM.serial)]) == 1
    after = configs(retained(broker, "homeassistant/#"))
    assert not [t for t in after if SERIAL in t], after
    assert [t for t in after if CAM.serial in t]


def test_a_changed_device_is_announced_as_it_is_now(broker: Mosquitto, sink: MqttSink) -> None:
    """A reload changes "nvr" (a new password, a new host): it logs in again and its
    ``online`` says what it is now. A channel renamed on the device renames its camera; a
    device that is another one (its host now reaches a single camera) replaces the old one's
    entities, channels and states by its own."""
    sink.open()
    motion = Event(kind="alarm", type="motion", state="start", device=NVR, channel=34)
    assert sink.send([nvr_online(), motion]) == 2
    front = f"homeassistant/binary_sensor/hikd_{SERIAL}_33_motion/config"
    assert configs(retained(broker, "homeassistant/#"))[front]["device"]["name"] == "Front door"
    renamed = dataclasses.replace(
        nvr_online(), attributes={**nvr_online().attributes, "channel_names": {"33": "Gate"}}
    )
    assert sink.send([renamed]) == 1
    assert configs(retained(broker, "homeassistant/#"))[front]["device"]["name"] == "Gate"

    other = "DS-2CD2143G0-I20210101AAWRE9"
    camera = health(
        DeviceRef("nvr", other, "192.0.2.12:80"),
        "online",
        serial=other,
        model="DS-2CD2143G0-I",
        analog_channels=1,
        start_channel=1,
    )
    assert sink.send([camera]) == 1
    found = configs(retained(broker, "homeassistant/#"))
    assert not [t for t in found if SERIAL in t], found
    assert f"homeassistant/binary_sensor/hikd_{other}_1_motion/config" in found
    kept = retained(broker, "hikd/nvr/#")
    assert "hikd/nvr/34/motion" not in kept and kept["hikd/nvr/1/motion"].payload == b"OFF"
    assert kept["hikd/nvr/availability"].payload == b"online"


def test_a_device_removed_while_hikd_was_stopped_leaves_at_the_start(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """The sink remembers "nvr" (its state file) and the broker still holds its entities;
    hikd starts with a configuration without it (the daemon tells the sink which devices are
    configured): on connecting, the sink removes them as a reload would."""
    config = MqttConfig(host=broker.host, port=broker.port, client_id="hikd-before")
    before = MqttSink(config, SinkContext("mqtt", tmp_path, {}))
    try:
        before.open()
        assert before.send([nvr_online()]) == 1
    finally:
        before.close()
    assert [t for t in configs(retained(broker, "homeassistant/#")) if SERIAL in t]
    configured = ["porch cam"]
    after = MqttSink(config, SinkContext("mqtt", tmp_path, {"devices": lambda: configured}))
    try:
        after.open()  # connected: what it republishes is on its way
        assert wait_for(
            lambda: not [t for t in configs(retained(broker, "homeassistant/#")) if SERIAL in t]
        ), configs(retained(broker, "homeassistant/#"))
        assert wait_for(lambda: retained(broker, "hikd/nvr/#") == {})
        assert "nvr" not in after.state.devices
        assert after.send([health(CAM, "online", serial=CAM.serial)]) == 1
        assert [t for t in configs(retained(broker, "homeassistant/#")) if CAM.serial in t]
    finally:
        after.close()


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


def test_an_older_hikds_entities_that_never_got_a_state_are_withdrawn(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """A state file and retained configs as hikd left them before entities were put
    where their states go: alarm inputs announced on video channels, a disk type on the
    device, a face snap as a binary sensor."""
    state_dir = tmp_path / "old"
    state_dir.mkdir()
    facts = {"serial": SERIAL, "ip_channels": 2, "start_ip_channel": 1, "disks": 1}
    old = [(1, "io"), (2, "io"), (None, "disk_error"), (1, "face_snap"), (1, "motion")]
    (state_dir / "mqtt_state.json").write_text(
        json.dumps(
            {
                "version": 1,
                "devices": {
                    "nvr": {"facts": facts, "availability": "online"},
                    "hikd": {"facts": {}, "availability": ""},
                },
                "alarms": [
                    {"device": "nvr", "channel": c, "type": t, "value": "OFF"} for c, t in old
                ],
            }
        )
    )
    level = {None: "device"}
    stale = [
        f"homeassistant/binary_sensor/hikd_{SERIAL}_{level.get(c, c)}_{t}/config" for c, t in old
    ]
    # hikd's own device was the pseudo-device "hikd" (now "hikd_<instance_id>").
    stale.append("homeassistant/binary_sensor/hikd_hikd_connectivity/config")
    with Subscriber(broker, ["homeassistant/#"]) as older:
        for topic in stale:
            older.publish(topic, json.dumps({"state_topic": "x"}), retain=True)
    config = MqttConfig(host=broker.host, port=broker.port, client_id="hikd-new", instance_id="t")
    s = MqttSink(config, SinkContext("mqtt", state_dir, {"version": "0.1.0"}))
    try:
        s.open()
        assert s.send([Event(kind="alarm", type="motion", state="start", device=NVR, channel=2)])
        found = configs(retained(broker, "homeassistant/#"))
    finally:
        s.close()
    uid = f"homeassistant/binary_sensor/hikd_{SERIAL}"
    assert stale[0] not in found and stale[1] not in found  # io on channels 1, 2: gone
    assert stale[2] not in found  # disk_error on the device: gone
    assert stale[3] not in found  # a face snap is an event entity now
    assert stale[5] not in found  # hikd's connectivity under its old identifier
    assert "homeassistant/binary_sensor/hikd_t_connectivity/config" in found
    assert f"homeassistant/event/hikd_{SERIAL}_1_face_snap/config" in found
    assert f"{uid}_1_motion/config" in found and f"{uid}_2_motion/config" in found
    # Announced again where states go: the configured motion; io and disks as configured.
    assert not [t for t in found if t.endswith("_io/config") or "disk_error" in t]
    # The sink remembers what it announced, so the next start withdraws by that.
    saved = json.loads((state_dir / "mqtt_state.json").read_text())
    assert f"{uid}_1_motion/config" in saved["announced"]
