"""Controls from MQTT, end to end: a real mosquitto, the daemon with the real vendor library,
and hikd.sim obeying. Commands are sent to the command topics that the Home Assistant
discovery configs name, as Home Assistant would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hikd.config import load_config
from hikd.daemon import Daemon
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.device import SimDevice
from hikd.sinks.base import SinkContext
from hikd.sinks.mqtt.command_discovery import control_configs
from hikd.sinks.mqtt.commands import MqttCommands
from hikd.sinks.mqtt.discovery import Discovery
from hikd.sinks.mqtt.facts import DeviceFacts
from hikd.sinks.mqtt.sink import MqttConfig, MqttSink
from hikd.sinks.mqtt.topics import Topics
from tests.mosquitto import Mosquitto, Received, Subscriber, retained
from tests.sinks.mqtt.test_ha_schemas import NEWER_KEYS, everything, ha_python, validate
from tests.support import wait_for

PASSWORD = "Commands-Test-1"
WAIT_S = 30.0
"""Generous: the machine may be busy; every wait ends as soon as its condition holds."""
Start = Callable[..., SimDevice]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def start(
    sdk: Library,
    start_sim: Callable[..., Simulator],
    broker: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Start]:
    """start(commands=True) -> the simulated NVR, with a daemon logged in to it."""
    daemons: list[Daemon] = []

    def run(commands: bool = True) -> SimDevice:
        sim = start_sim(
            SimDeviceConfig(
                name="nvr", password=PASSWORD, analog_channels=0, ip_channels=2, alarm_outputs=2
            )
        )
        device = sim.devices[0]
        monkeypatch.setenv("HIKD_PASSWORD_NVR", PASSWORD)
        path = tmp_path / "hikd.toml"
        path.write_text(
            "\n".join(
                [
                    "[daemon]",
                    f'state_dir = "{tmp_path / "state"}"',
                    "[sinks.mqtt]",
                    f'host = "{broker.host}"',
                    f"port = {broker.port}",
                    f'client_id = "hikd-test-{uuid.uuid4().hex[:8]}"',
                    "publish_timeout_s = 5",
                    f"commands = {'true' if commands else 'false'}",
                    "[[devices]]",
                    'name = "nvr"',
                    'host = "127.0.0.1"',
                    f"port = {device.port}",
                    "arm = false",
                    "reconnect_min_s = 0.2",
                ]
            )
            + "\n"
        )
        daemon = Daemon(load_config(path), sdk=sdk)
        daemons.append(daemon)
        daemon.start()
        return device

    try:
        yield run
    finally:
        for daemon in daemons:
            daemon.stop()


def config_of(sub: Subscriber, component: str, ending: str) -> dict[str, Any]:
    """The discovery config of `component` whose unique id ends with `ending`."""

    def found(ms: list[Received]) -> bool:
        return any(_matches(m, component, ending) for m in ms)

    sub.wait_for(found, f"the {component} config ending in {ending}", timeout=60)
    message = [m for m in sub.messages if _matches(m, component, ending)][-1]
    payload: dict[str, Any] = json.loads(message.payload)
    return payload


def _matches(m: Received, component: str, ending: str) -> bool:
    return (
        m.topic.startswith(f"homeassistant/{component}/")
        and m.topic.endswith(f"{ending}/config")
        and bool(m.payload)
    )


def events(sub: Subscriber, device: str = "nvr", **match: Any) -> list[dict[str, Any]]:
    found = [json.loads(m.payload) for m in sub.on(f"hikd/{device}/events")]
    return [e for e in found if all(e.get(k) == v for k, v in match.items())]


def command_events(sub: Subscriber, device: str = "nvr") -> list[dict[str, Any]]:
    return events(sub, device, kind="command")


def wait_command(sub: Subscriber, count: int, device: str = "nvr") -> list[dict[str, Any]]:
    sub.wait_for(
        lambda _: len(command_events(sub, device)) >= count, f"{count} command events", WAIT_S
    )
    return command_events(sub, device)


def test_commands_switch_outputs_and_detections_and_take_snapshots(
    start: Start, broker: Mosquitto
) -> None:
    with Subscriber(broker, ["hikd/#", "homeassistant/#"]) as sub:
        device = start()
        output = config_of(sub, "switch", "_output2_switch")
        assert output["name"] == "Alarm output 2"
        assert output["device"]["identifiers"] == [device.config.serial_number]

        sub.publish(output["command_topic"], "ON")
        assert wait_for(lambda: device.controls.output_on(2), WAIT_S)
        sub.wait_for(
            lambda ms: any(m.topic == output["state_topic"] and m.payload == b"ON" for m in ms),
            "the output's state ON",
            WAIT_S,
        )
        [event] = wait_command(sub, 1)
        assert event["type"] == "output" and event["channel"] is None
        assert event["attributes"]["outcome"] == "done"
        assert event["attributes"]["what"] == "switch output 2 on"
        assert event["attributes"]["who"] == f"mqtt {output['command_topic']}"
        sub.publish(output["command_topic"], "OFF")
        assert wait_for(lambda: not device.controls.output_on(2), WAIT_S)

        motion = config_of(sub, "switch", "_2_motion_detection")
        assert motion["entity_category"] == "config"
        assert device.controls.detection_enabled("motion", 2)
        sub.publish(motion["command_topic"], "OFF")
        assert wait_for(lambda: not device.controls.detection_enabled("motion", 2), WAIT_S)
        assert device.controls.detection_enabled("motion", 1)  # only the one asked for
        sub.wait_for(
            lambda ms: any(m.topic == motion["state_topic"] and m.payload == b"OFF" for m in ms),
            "the detection's state OFF",
            WAIT_S,
        )

        button = config_of(sub, "button", "_1_snapshot")
        sub.publish(button["command_topic"], button["payload_press"])
        sub.wait_for(
            lambda _: bool(events(sub, kind="file", type="snapshot")), "a snapshot", WAIT_S
        )
        [picture] = events(sub, kind="file", type="snapshot")
        assert Path(picture["files"][0]).read_bytes() == device.snapshot(1)
        done = wait_command(sub, 4)
        assert picture["attributes"]["command_id"] == done[-1]["attributes"]["command_id"]
        assert [e["attributes"]["outcome"] for e in done] == ["done"] * 4

    kept = retained(broker, "hikd/nvr/#")
    assert kept[output["state_topic"]].payload == b"OFF"
    assert kept[motion["state_topic"]].payload == b"OFF"
    assert not [t for t in kept if t.endswith("/set")]  # commands are never retained


def test_unknown_devices_and_targets_are_refused_with_a_reason(
    start: Start, broker: Mosquitto
) -> None:
    with Subscriber(broker, ["hikd/#", "homeassistant/#"]) as sub:
        # Left retained on the broker: replayed when hikd subscribes, refused, removed.
        sub.publish("hikd/nvr/output1/set", "ON", retain=True)
        device = start()
        config_of(sub, "switch", "_output1_switch")  # the daemon is connected and knows nvr
        sub.publish("hikd/ghost/output1/set", "ON")
        sub.publish("hikd/nvr/output9/set", "ON")
        sub.publish("hikd/nvr/2/tamper/detection/set", "ON")
        sub.publish("hikd/nvr/output1/set", "BRIGHT")
        sub.publish("hikd/nvr/reboot/set", "PRESS")
        sub.wait_for(
            lambda _: bool(events(sub, "hikd", kind="command")), "the unknown device", WAIT_S
        )
        refused = wait_command(sub, 5)

    [ghost] = events(sub, "hikd", kind="command")
    assert ghost["attributes"]["device"] == "ghost"
    assert ghost["attributes"]["reason"] == "no device named 'ghost' is configured"
    # Checks that need the device run after those that do not: compare without order.
    assert sorted((e["attributes"]["outcome"], e["attributes"]["reason"]) for e in refused) == [
        ("refused", "a retained command message (publish commands without retain)"),
        ("refused", "nvr has 2 alarm outputs; there is no output 9"),
        ("refused", "say ON or OFF"),
        ("refused", "unknown action 'reboot' (known: output, snapshot, detection)"),
        ("refused", "unknown detection 'tamper' (known: motion, line_crossing, intrusion)"),
    ]
    assert not device.controls.output_commands
    assert not [p for m, p in device.requests if m == "PUT"]
    assert "hikd/nvr/output1/set" not in retained(broker, "hikd/#")


def test_without_commands_nothing_is_subscribed_or_announced(
    start: Start, broker: Mosquitto
) -> None:
    with Subscriber(broker, ["hikd/#", "homeassistant/#"]) as sub:
        device = start(commands=False)
        sub.wait_for(
            lambda ms: any(m.topic.startswith("homeassistant/binary_sensor/") for m in ms),
            "the alarm entities",
            60,
        )
        sub.publish("hikd/nvr/output1/set", "ON")
        # Home Assistant's birth message makes the sink republish: once that is seen, the
        # sink has read everything published before it on this connection.
        sub.clear()
        sub.publish("homeassistant/status", "online")
        sub.wait_for(
            lambda ms: any(m.topic.startswith("homeassistant/binary_sensor/") for m in ms),
            "a republish",
            WAIT_S,
        )
        assert not command_events(sub)
        controls = ("homeassistant/switch/", "homeassistant/button/")
        assert not [m for m in sub.messages if m.topic.startswith(controls)]
    assert not device.controls.output_commands


def test_command_topics_under_a_prefix_of_several_levels() -> None:
    discovery = Discovery(Topics("home/cams"), commands=True)
    commands = MqttCommands(discovery, submit=lambda c: None, announce=True)
    assert commands.topics.subscriptions() == [
        "home/cams/+/+/set",
        "home/cams/+/+/+/set",
        "home/cams/+/+/+/+/set",
    ]
    devices = ["front/yard", "nvr"]  # a name with '/' has the topic level "front_yard"
    parse = commands.parse
    output = parse("home/cams/front_yard/output2/set", b"on", devices)
    assert (output.device, output.action, output.target, output.on) == (
        "front/yard",
        "output",
        2,
        True,
    )
    snap = parse("home/cams/nvr/3/snapshot/set", b"PRESS", devices)
    assert (snap.action, snap.target, snap.who) == (
        "snapshot",
        3,
        "mqtt home/cams/nvr/3/snapshot/set",
    )
    detection = parse("home/cams/nvr/1/line_crossing/detection/set", b"OFF", devices)
    assert (detection.action, detection.detection, detection.on) == (
        "detection",
        "line_crossing",
        False,
    )
    assert (
        parse("home/cams/nvr/outputx/set", b"ON", devices).problem()
        == "output 0: numbers start at 1"
    )
    assert parse("home/cams/nvr/1/2/3/set", b"ON", devices).action == "1/2/3"


def test_control_discovery_of_a_recorder() -> None:
    d = Discovery(Topics("hikd"), commands=True)
    facts = DeviceFacts("nvr", serial="SER1", ip_channels=2, start_ip_channel=1, alarm_outputs=1)
    facts.channel_names = {1: "Front door"}
    configs = control_configs(d, facts, [(1, "motion"), (2, "tamper"), ("input1", "io")])
    by_topic = {c.topic: c.payload for c in configs}
    assert sorted(by_topic) == [
        "homeassistant/button/hikd_SER1_1_snapshot/config",
        "homeassistant/button/hikd_SER1_2_snapshot/config",
        "homeassistant/switch/hikd_SER1_1_motion_detection/config",
        "homeassistant/switch/hikd_SER1_output1_switch/config",
    ]
    motion = by_topic["homeassistant/switch/hikd_SER1_1_motion_detection/config"]
    # On the camera's own device ("Front door"), which Home Assistant names first.
    assert (motion["name"], motion["device"]["name"]) == ("Motion detection", "Front door")
    assert motion["command_topic"] == "hikd/nvr/1/motion/detection/set"
    assert motion["state_topic"] == "hikd/nvr/1/motion/detection"
    assert [a["topic"] for a in motion["availability"]] == ["hikd/status", "hikd/nvr/availability"]
    output = by_topic["homeassistant/switch/hikd_SER1_output1_switch/config"]
    assert (output["name"], output["device"]["name"]) == ("Alarm output 1", "nvr")
    assert control_configs(Discovery(Topics("hikd")), facts, [(1, "motion")]) == []


def test_controls_are_valid_for_home_assistant(broker: Mosquitto, tmp_path: Path) -> None:
    """Checked by Home Assistant's own discovery schemas (tests/sinks/mqtt/test_ha_schemas.py
    says how; skipped until its environment is built)."""
    ha_python()
    config = MqttConfig(
        host=broker.host, port=broker.port, client_id="hikd-controls", commands=True
    )
    extra = {"version": "0.1.0", "submit_command": lambda command: None}
    sink = MqttSink(config, SinkContext("mqtt", tmp_path / "state", extra))
    try:
        sink.open()
        batch = everything(tmp_path)
        assert sink.send(batch) == len(batch)
        kept = retained(broker, "homeassistant/#")
    finally:
        sink.close()
    controls = {
        t: json.loads(m.payload)
        for t, m in kept.items()
        if m.payload and t.split("/")[1] in ("switch", "button")
    }
    names = {(p["device"]["name"], p["name"]) for p in controls.values()}
    assert {
        ("nvr", "Alarm output 1"),
        ("Front door", "Snapshot"),
        ("Front door", "Motion detection"),
        ("Front door", "Line crossing detection"),
        ("porch cam", "Snapshot"),
    } <= names
    version, results = validate(controls)
    problems = [r for r in results if r["error"] or set(r["dropped"]) - NEWER_KEYS]
    assert not problems, f"Home Assistant {version}: {json.dumps(problems, indent=1)}"
