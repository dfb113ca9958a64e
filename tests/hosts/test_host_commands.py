"""Commands across the process boundary: `hikd run` with two device hosts, a real
mosquitto, the real vendor library in each host and hikd.sim. A command published on MQTT
reaches the supervisor's MQTT sink and is carried out by the host that owns the device
(`HostSupervisor.command`); its snapshot's file event comes from that host."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hikd.hosts.placement import host_of
from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess, disk_events, write_config
from tests.mosquitto import Mosquitto, Subscriber
from tests.support import wait_until

DOOR, YARD = "door", "yard"
assert host_of(DOOR, 2) != host_of(YARD, 2), "the two devices must be on two hosts"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    devices = [
        SimDeviceConfig(name=name, password=SECRET, alarm_outputs=1) for name in (DOOR, YARD)
    ]
    simulator = Simulator(devices).start()
    try:
        yield simulator
    finally:
        simulator.stop()


def commands_on_disk(state: Path) -> list[dict[str, Any]]:
    return [e for e in disk_events(state) if e["kind"] == "command"]


def test_commands_reach_the_host_that_owns_the_device(
    tmp_path: Path,
    sim: Simulator,
    broker: Mosquitto,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "hikd.toml", sim, state, broker, hold_s=5)
    text = config.read_text().replace("[daemon]\n", "[daemon]\ndevice_hosts = 2\n", 1)
    config.write_text(text + "commands = true\n")  # the last section is [sinks.mqtt]
    hikd = run_hikd(config, sim)
    door, yard = sim.devices

    def online(name: str) -> bool:
        return any(
            e["type"] == "online" and e["device"]["name"] == name for e in disk_events(state)
        )

    wait_until(lambda: online(DOOR) and online(YARD), "both devices online", 2 * START_TIMEOUT_S)
    with Subscriber(broker, ["hikd/+/events"]) as sub:
        sub.publish(f"hikd/{DOOR}/output1/set", "ON")
        sub.publish(f"hikd/{YARD}/1/snapshot/set", "PRESS")
        sub.publish(f"hikd/{YARD}/output2/set", "ON")
        wait_until(lambda: len(commands_on_disk(state)) == 3, "three command events", 60)
        sub.wait_for(
            lambda ms: sum(json.loads(m.payload)["kind"] == "command" for m in ms) == 3,
            "the command events on MQTT",
            timeout=30,
        )
    assert door.controls.output_on(1), hikd.output()[-3000:]
    outcomes = {
        (e["device"]["name"], e["type"]): (
            e["attributes"]["outcome"],
            e["attributes"].get("reason"),
        )
        for e in commands_on_disk(state)
    }
    assert outcomes == {
        (DOOR, "output"): ("done", None),
        (YARD, "snapshot"): ("done", None),
        (YARD, "output"): ("refused", "yard has 1 alarm output; there is no output 2"),
    }
    [snapshot] = [e for e in commands_on_disk(state) if e["type"] == "snapshot"]
    [picture] = [
        e for e in disk_events(state) if e["kind"] == "file" and e["attributes"].get("command_id")
    ]
    assert picture["attributes"]["command_id"] == snapshot["attributes"]["command_id"]
    assert Path(picture["files"][0]).read_bytes() == yard.snapshot(1)
    # On MQTT too, with the device's serial from its host's session.
    mqtt = [json.loads(m.payload) for m in sub.messages]
    assert {e["id"] for e in commands_on_disk(state)} <= {e["id"] for e in mqtt}
    assert {e["device"]["serial"] for e in commands_on_disk(state)} == {
        door.config.serial_number,
        yard.config.serial_number,
    }
