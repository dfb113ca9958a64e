"""Commands on private-protocol sessions, through the stand-in library.

The real library cannot switch an output over ISAPI with NET_DVR_SetAlarmOut (error 189,
no request sent: measured, README vendor-library notes), and its private protocol cannot
be simulated; so the SetAlarmOut route runs against the stand-in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hikd.commands import Command
from hikd.devices.commands import run_command
from hikd.devices.session import DeviceSession
from tests.standin import StandIn, expected_jpeg
from tests.standin.jobs import Events

pytest_plugins = ["tests.standin.fixtures"]

pytestmark = pytest.mark.standin


def test_outputs_switch_with_set_alarm_out(
    standin: StandIn, standin_session: DeviceSession, tmp_path: Path
) -> None:
    """The real library cannot do this over ISAPI (error 189)."""
    sessions = {"dvr": standin_session}
    result = run_command(sessions, Command("dvr", "output", 2, on=True), Events(), tmp_path)
    assert result.outcome == "done", result.reason
    # Seed 5.19.29: ports count from 0; 1 starts the output.
    assert (standin.get("alarm_out_port"), standin.get("alarm_out_state")) == (1, 1)
    result = run_command(sessions, Command("dvr", "output", 1, on=False), Events(), tmp_path)
    assert result.outcome == "done", result.reason
    assert (standin.get("alarm_out_port"), standin.get("alarm_out_state")) == (0, 0)
    assert standin.get("set_alarm_out_calls") == 2


def test_an_output_the_device_refuses(
    standin: StandIn, standin_session: DeviceSession, tmp_path: Path
) -> None:
    """The real library cannot do this over ISAPI; the stand-in fails as told."""
    sessions = {"dvr": standin_session}
    missing = run_command(sessions, Command("dvr", "output", 3, on=True), Events(), tmp_path)
    assert (missing.outcome, missing.reason) == (
        "refused",
        "dvr has 2 alarm outputs; there is no output 3",
    )
    assert standin.get("set_alarm_out_calls") == 0
    standin.set(set_alarm_out_error=2)
    failed = run_command(sessions, Command("dvr", "output", 1, on=True), Events(), tmp_path)
    assert failed.outcome == "failed"
    assert "no permission" in failed.reason
    assert failed.device is not None and failed.device.serial


def test_a_snapshot_by_command_uses_the_capture_call(
    standin: StandIn, standin_session: DeviceSession, tmp_path: Path
) -> None:
    """The real library cannot do this over ISAPI (CaptureJPEGPicture_NEW: error 189)."""
    events = Events()
    command = Command("dvr", "snapshot", 5)
    result = run_command({"dvr": standin_session}, command, events, tmp_path)
    assert result.outcome == "done", result.reason
    # IP channel 5 is the private protocol's 33.
    assert Path(result.files[0]).read_bytes() == expected_jpeg(33)
    assert [e.attributes["command_id"] for e in events.of_type("snapshot")] == [command.id]


def test_a_detection_without_isapi_is_refused(
    standin: StandIn, standin_session: DeviceSession, tmp_path: Path
) -> None:
    """The stand-in answers no ISAPI pass-through (error 23), like an old DVR."""
    command = Command("dvr", "detection", 1, True, "motion")
    result = run_command({"dvr": standin_session}, command, Events(), tmp_path)
    assert (result.outcome, result.reason) == (
        "refused",
        "dvr offers no motion detection on channel 1",
    )
