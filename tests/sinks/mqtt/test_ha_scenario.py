"""Every entity hikd announces to Home Assistant gets a state: a `hikd run` with the real
vendor library against a simulated NVR (IP channels, alarm inputs, a disk) and a real
mosquitto. The test reads what was announced (configured types, and the types the device
reports in its event triggers), triggers each announced type where it was announced, and
waits for a message on each announced state topic.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.event_types import ISAPI_ALIASES, event_type, from_device_name
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import ALERT_KINDS
from hikd.sim.config import SimDisk
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess
from tests.mosquitto import Mosquitto, Received, Subscriber

CONFIGURED = ["motion", "io", "tamper", "disk_full", "illegal_access", "vehicle"]
PLATE = "AB123CD"


def write_config(path: Path, sim: Simulator, broker: Mosquitto, state: Path) -> Path:
    dev = sim.devices[0]
    types = ", ".join(f'"{t}"' for t in CONFIGURED)
    path.write_text(
        "\n".join(
            [
                "[daemon]",
                f'state_dir = "{state}"',
                "[alarms.hold_s]",
                "default = 60",
                "[[devices]]",
                f'name = "{dev.name}"',
                'host = "127.0.0.1"',
                f"port = {dev.port}",
                "reconnect_min_s = 0.2",
                "[sinks.mqtt]",
                f'host = "{broker.host}"',
                f"port = {broker.port}",
                f'client_id = "hikd-{uuid.uuid4().hex[:8]}"',
                'instance_id = "scenario"',
                f"discovery_types = [{types}]",
            ]
        )
        + "\n"
    )
    return path


def sim_name(type_: str) -> str:
    """The device's name of a hikd type, one the simulator knows if it knows one (it
    sends any other name as a channel event)."""
    for name in [*ALERT_KINDS, *ISAPI_ALIASES]:
        if from_device_name(name) == type_:
            return name
    raise AssertionError(f"no device name for {type_}")


def alarm_configs(messages: list[Received]) -> dict[str, dict[str, Any]]:
    """The announced alarm entities of the NVR: state topic -> config."""
    out = {}
    for m in messages:
        if not (m.topic.startswith("homeassistant/") and m.topic.endswith("/config")):
            continue
        if not m.payload:
            continue
        payload = json.loads(m.payload)
        topic = payload.get("state_topic", "")
        parts = topic.split("/")
        if len(parts) >= 4 and parts[1] == "nvr" and parts[2] not in ("health",):
            if parts[3] in ("state",) or parts[2] == "availability":
                continue
            out[topic] = payload
    return out


def test_every_announced_entity_gets_a_state(
    tmp_path: Path,
    start_sim: Callable[..., Simulator],
    broker: Mosquitto,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = start_sim(
        SimDeviceConfig(
            name="nvr", password=SECRET, ip_channels=2, alarm_inputs=2, disks=[SimDisk(id=1)]
        )
    )
    dev = sim.devices[0]
    config = write_config(tmp_path / "hikd.toml", sim, broker, tmp_path / "state")
    with Subscriber(broker, ["hikd/#", "homeassistant/#"]) as sub:
        hikd = run_hikd(config, sim)
        # The device's triggers (all notify the surveillance center), in hikd's names.
        supported = {from_device_name(t.event_type) for t in dev.linkage.triggers.values()}
        expected = set(CONFIGURED) | {t for t in supported if t}
        assert {"line_crossing", "intrusion", "video_loss"} <= expected

        def announced_types(ms: list[Received]) -> set[str]:
            return {topic.split("/")[3] for topic in alarm_configs(ms)}

        try:
            sub.wait_for(
                lambda ms: expected <= announced_types(ms), "the NVR's entities", START_TIMEOUT_S
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n{hikd.output()}") from None
        assert dev.wait_for_streams(1, timeout=START_TIMEOUT_S), hikd.output()
        announced = alarm_configs(sub.messages)
        # Where the device has them: line crossing on each channel, not on the inputs.
        assert {"hikd/nvr/1/line_crossing", "hikd/nvr/2/line_crossing"} <= set(announced)
        # The channel cameras carry the names the NVR gives them.
        motion = announced["hikd/nvr/1/motion"]
        assert motion["device"]["name"] == "IPCamera 01" and motion["name"] == "Motion"

        sub.clear()
        for topic, payload in announced.items():
            where, type_ = topic.split("/")[2:4]
            # An alarm input's or a disk's number, a channel, or 1 for the device itself.
            number = where.removeprefix("input").removeprefix("disk").replace("device", "1")
            extra = {"licensePlate": PLATE} if type_ == "vehicle" else {}
            dev.trigger(sim_name(type_), channel=int(number), extra=extra)
            if event_type(type_).one_shot:
                assert payload["event_types"] == [type_]

        def fed(ms: list[Received]) -> set[str]:
            """Announced topics that got their alarm: ON, or any event for event entities
            (an OFF after the clear is the retained state announced with the entity)."""
            return {
                m.topic
                for m in ms
                if m.topic in announced and (m.topic.endswith("/event") or m.payload == b"ON")
            }

        try:
            sub.wait_for(lambda ms: fed(ms) == set(announced), "every announced topic fed", 30)
        except AssertionError as error:
            missing = sorted(set(announced) - fed(sub.messages))
            raise AssertionError(f"{error}: never fed: {missing}\n{hikd.output()}") from None
