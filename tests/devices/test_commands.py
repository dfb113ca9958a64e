"""Commands carried out on ISAPI sessions: the real vendor library against hikd.sim.

Alarm outputs, snapshots and detection switches (`hikd.devices.commands`); the
private-protocol route of alarm outputs is in tests/standin/test_commands.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hikd.commands import Command, CommandResult
from hikd.devices.commands import run_command, set_enabled
from hikd.devices.session import DeviceSession
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.device import SimDevice
from hikd.sim.variants import DocumentVariants
from tests.support import Collector, device_config

SessionFactory = Callable[..., tuple[DeviceSession, SimDevice]]


@pytest.fixture
def logged_in(sdk: Library, start_sim: Callable[..., Simulator]) -> Iterator[SessionFactory]:
    sessions: list[DeviceSession] = []

    def make(**config: Any) -> tuple[DeviceSession, SimDevice]:
        values: dict[str, Any] = {
            "name": "nvr",
            "analog_channels": 0,
            "ip_channels": 4,
            "alarm_outputs": 2,
            **config,
        }
        sim = start_sim(SimDeviceConfig(**values))
        session = DeviceSession(sdk, device_config(sim), Collector())
        sessions.append(session)
        session.login_once()
        return session, sim.devices[0]

    try:
        yield make
    finally:
        for session in sessions:
            session.close()


def run(
    session: DeviceSession, command: Command, tmp_path: Path, events: Collector | None = None
) -> CommandResult:
    return run_command({session.name: session}, command, events or Collector(), tmp_path)


def test_outputs_switch_on_and_off(logged_in: SessionFactory, tmp_path: Path) -> None:
    session, device = logged_in()
    result = run(session, Command("nvr", "output", 2, on=True), tmp_path)
    assert result.outcome == "done", result.reason
    assert device.controls.output_on(2) and not device.controls.output_on(1)
    assert run(session, Command("nvr", "output", 2, on=False), tmp_path).outcome == "done"
    assert not device.controls.output_on(2)
    assert device.controls.output_commands == [(2, "high"), (2, "low")]


def test_an_output_the_device_lacks_is_refused(logged_in: SessionFactory, tmp_path: Path) -> None:
    session, device = logged_in()
    result = run(session, Command("nvr", "output", 3, on=True), tmp_path)
    assert result.outcome == "refused"
    assert result.reason == "nvr has 2 alarm outputs; there is no output 3"
    assert device.controls.output_commands == []


def test_a_snapshot_is_stored_and_announced(logged_in: SessionFactory, tmp_path: Path) -> None:
    session, device = logged_in()
    events = Collector()
    command = Command("nvr", "snapshot", 3)
    result = run(session, command, tmp_path, events)
    assert result.outcome == "done", result.reason
    [path] = result.files
    assert Path(path).read_bytes() == device.snapshot(3)
    [event] = events.matching("file", "snapshot")
    assert event.channel == 3 and event.files == (path,)
    assert event.attributes["command_id"] == command.id


@pytest.mark.parametrize(
    ("variants", "analog"),
    [(DocumentVariants(), 0), (DocumentVariants(namespace=False, reordered=True), 2)],
    ids=["nvr", "dvr-reordered"],
)
def test_detections_switch_by_editing_the_devices_document(
    logged_in: SessionFactory, tmp_path: Path, variants: DocumentVariants, analog: int
) -> None:
    """Channel 2 is an IP channel of the NVR (motion: the InputProxy document) and an
    analog channel of the DVR (motion: the video input's)."""
    session, device = logged_in(variants=variants, analog_channels=analog)
    for detection in ("motion", "line_crossing", "intrusion"):
        for on in (False, True, False):
            result = run(session, Command("nvr", "detection", 2, on, detection), tmp_path)
            assert result.outcome == "done", result.reason
            assert device.controls.detection_enabled(detection, 2) is on
        assert device.controls.detection_enabled(detection, 1)  # other channels stay on
    assert device.controls.refused_puts == 0
    puts = [path for method, path in device.requests if method == "PUT"]
    motion = "/ISAPI/ContentMgmt/InputProxy/channels/2/video/motionDetection"
    if analog:
        motion = "/ISAPI/System/Video/inputs/channels/2/motionDetection"
    assert puts[:3] == [motion] * 3


def test_a_detection_the_device_lacks_is_refused(logged_in: SessionFactory, tmp_path: Path) -> None:
    session, device = logged_in()
    device.unavailable.add("/ISAPI/Smart/FieldDetection/2")
    result = run(session, Command("nvr", "detection", 2, True, "intrusion"), tmp_path)
    assert (result.outcome, result.reason) == (
        "refused",
        "nvr offers no intrusion detection on channel 2",
    )
    result = run(session, Command("nvr", "detection", 7, True, "motion"), tmp_path)
    assert (result.outcome, result.reason) == ("refused", "nvr has no channel 7 (it has 1-4)")


def test_the_simulator_refuses_a_rebuilt_document(
    logged_in: SessionFactory, tmp_path: Path
) -> None:
    """What hikd must not do: a document rebuilt from the fields it knows loses the
    device's own (lines, regions) and real devices answer 400."""
    session, device = logged_in()
    rebuilt = b"<LineDetection><id>1</id><enabled>false</enabled></LineDetection>"
    with pytest.raises(Exception, match="SDK error"):
        session.isapi("PUT", "/ISAPI/Smart/LineDetection/1", rebuilt)
    assert device.controls.refused_puts == 1
    assert device.controls.detection_enabled("line_crossing", 1)  # as it was


def test_a_device_offline_refuses_commands(logged_in: SessionFactory, tmp_path: Path) -> None:
    session, device = logged_in()
    session.close()
    result = run(session, Command("nvr", "output", 1, on=True), tmp_path)
    assert result.outcome == "refused" and "nvr is not connected now" in result.reason
    assert device.controls.output_commands == []


def test_set_enabled_edits_only_the_roots_own_element() -> None:
    document = (
        b'<?xml version="1.0"?>\n<x:LineDetection xmlns:x="urn:a">'
        b"<x:LineItem><x:enabled>true</x:enabled></x:LineItem>"
        b"<x:Enabled>false</x:Enabled><x:unknown a='1'/></x:LineDetection>"
    )
    assert set_enabled(document, True) == document.replace(
        b"<x:Enabled>false</x:Enabled>", b"<x:Enabled>true</x:Enabled>"
    )
    empty = b"<MotionDetection><id>1</id><enabled /></MotionDetection>"
    assert set_enabled(empty, True) == (
        b"<MotionDetection><id>1</id><enabled>true</enabled></MotionDetection>"
    )
    assert set_enabled(b"<MotionDetection><id>1</id></MotionDetection>", True) is None
    assert set_enabled(b"<M><!-- x --><enabled>false</enabled></M>", True) is None
