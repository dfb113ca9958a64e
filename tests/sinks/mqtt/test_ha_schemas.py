"""Every discovery config hikd publishes, checked by Home Assistant's own MQTT discovery
schemas (each platform's DISCOVERY_SCHEMA and the origin schema), in a virtual
environment of its own: Home Assistant needs a newer Python than hikd's. `make ha-venv`
builds it (tools/ha_venv.py; cached); until it is there these tests are skipped, saying so.

What is checked: what the MQTT sink leaves retained on a real mosquitto for an NVR with
named IP channels, alarm inputs and disks, a camera behind it, and hikd itself, with
pictures on; each config must be valid, and no key may be dropped as unknown (a typo
would be) but ``default_entity_id``, which Home Assistant knows from 2025.10 on.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hikd.events import DeviceRef, Event, health
from hikd.sinks.base import SinkContext
from hikd.sinks.mqtt.sink import MqttConfig, MqttSink
from tests.mosquitto import Mosquitto, retained

VALIDATOR = Path(__file__).with_name("ha") / "validate_discovery.py"
NEWER_KEYS = {"default_entity_id"}
"""Keys Home Assistant releases before 2025.10 drop (hikd sends both spellings)."""


def ha_python() -> Path:
    configured = os.environ.get("HIKD_HA_VENV")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = Path(configured) if configured else cache / "hikd" / "ha-venv"
    if not (venv / "hikd-ready").is_file():
        pytest.skip(
            f"Home Assistant's environment is not built (yet) at {venv}: "
            "run `make ha-venv` once"
        )
    return venv / "bin" / "python"


def validate(configs: dict[str, dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    given = [{"topic": t, "payload": p} for t, p in configs.items()]
    done = subprocess.run(
        [str(ha_python()), str(VALIDATOR)],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    return str(answer["version"]), list(answer["results"])


SERIAL = "DS-7608NI-K20820190101CCWRC12345678WCVU"
NVR = DeviceRef("nvr", SERIAL, "192.0.2.10:8000")
CAM = DeviceRef("porch cam", "DS-2CD2143G0-I20200101AAWRE1", "192.0.2.11:80")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


def everything(tmp_path: Path) -> list[Event]:
    picture = tmp_path / "p.jpg"
    picture.write_bytes(b"\xff\xd8jpeg\xff\xd9")
    online = health(
        NVR,
        "online",
        serial=SERIAL,
        model="DS-7608NI-K2",
        firmware="V4.30.085",
        hardware="0x0",
        mac="c0:56:e3:00:00:01",
        analog_channels=0,
        start_channel=1,
        ip_channels=4,
        start_ip_channel=1,
        alarm_inputs=2,
        alarm_outputs=1,
        disks=2,
        channel_names={"1": "Front door", "2": "Garage"},
        supported_types={
            "motion": [1, 2, 3, 4],
            "line_crossing": [1],
            "io": ["input1", "input2"],
            "vehicle": [2],
            "disk_full": [None],
        },
    )
    alarm = {"kind": "alarm", "device": NVR}
    return [
        online,
        Event(**alarm, type="motion", state="start", channel=1, files=(str(picture),)),
        Event(**alarm, type="face_snap", state="pulse", channel=2),
        Event(**alarm, type="smoke", state="start", channel=3),
        Event(**alarm, type="illegal_access", state="pulse"),
        Event(**alarm, type="video_intercom", state="pulse"),
        Event(**alarm, type="line_crossing", state="pulse", channel=4),  # seen as a pulse
        health(NVR, "status", disks=[{"id": 1, "status": "ok", "capacity_mb": 9, "free_mb": 1}]),
        health(NVR, "disk_full", "start", disk=1),
        health(NVR, "arming_failed"),
        health(DeviceRef("hikd"), "sink_unavailable", "start", sink="syslog"),
        health(CAM, "online", serial=CAM.serial, analog_channels=1, start_channel=1, via="nvr"),
        Event(kind="alarm", type="tamper", state="start", device=CAM, channel=1),
    ]


def test_every_config_is_valid_for_home_assistant(broker: Mosquitto, tmp_path: Path) -> None:
    python = ha_python()
    assert python.exists()
    config = MqttConfig(
        host=broker.host,
        port=broker.port,
        client_id="hikd-schemas",
        images=True,
        instance_id="server1",
        discovery_types=["motion", "disk_error"],
    )
    sink = MqttSink(config, SinkContext("mqtt", tmp_path / "state", {"version": "0.1.0"}))
    try:
        sink.open()
        batch = everything(tmp_path)
        assert sink.send(batch) == len(batch)
        kept = retained(broker, "homeassistant/#")
    finally:
        sink.close()
    configs = {t: json.loads(m.payload) for t, m in kept.items() if m.payload}
    components = {t.split("/")[1] for t in configs}
    assert components == {"binary_sensor", "sensor", "event", "image"}
    version, results = validate(configs)
    problems = [r for r in results if r["error"] or set(r["dropped"]) - NEWER_KEYS]
    assert not problems, f"Home Assistant {version}: {json.dumps(problems, indent=1)}"
    assert len(results) == len(configs)


def test_the_validator_catches_a_bad_config() -> None:
    """The check itself: an unknown key, a wrong device class and a missing topic."""
    bad = {
        "homeassistant/binary_sensor/a/config": {
            "unique_id": "a",
            "state_topic": "x/y",
            "device_class": "no_such_class",
        },
        "homeassistant/sensor/b/config": {"unique_id": "b", "state_topic": "x", "hw_verison": 1},
        "homeassistant/event/c/config": {"unique_id": "c", "event_types": ["e"]},
    }
    _version, results = validate(bad)
    by_topic = {r["topic"]: r for r in results}
    assert "device_class" in by_topic["homeassistant/binary_sensor/a/config"]["error"]
    assert by_topic["homeassistant/sensor/b/config"]["dropped"] == ["hw_verison"]
    assert "state_topic" in by_topic["homeassistant/event/c/config"]["error"]
