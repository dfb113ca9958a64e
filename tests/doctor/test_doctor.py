"""`hikd doctor` against the real vendor library and hikd.sim, set up right and wrong."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hikd.config import Config
from hikd.doctor.report import DeviceReport
from hikd.doctor.run import examine
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.linkage_config import EventSetup
from hikd.sim.variants import DocumentVariants
from tests.support import device_config, free_port


@pytest.fixture
def listener() -> Iterator[int]:
    """A bound, listening port standing in for a running hikd's listen server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def make_config(sim: Simulator, tmp_path: Path, listen: int | None, **device: Any) -> Config:
    values: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path / "state")},
        "devices": [device_config(sim, **device)],
        "jobs": [{"name": "nightly", "kind": "download", "cron": "0 3 * * *"}],
    }
    if listen is not None:
        values["listen"] = [{"address": "127.0.0.1", "port": listen}]
    return Config.model_validate(values)


def statuses(report: DeviceReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def check(report: DeviceReport, name: str) -> Any:
    found = [c for c in report.checks if c.name == name]
    assert found, f"no check {name!r} in {statuses(report)}"
    return found[0]


def run(
    sdk: Library, sim: Simulator, tmp_path: Path, listen: int | None, **options: bool
) -> DeviceReport:
    config = make_config(sim, tmp_path, listen)
    return examine(sdk, config, config.devices[0], **options)


def test_a_device_set_up_right_is_all_ok(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path, listener: int
) -> None:
    setup = EventSetup(alarm_host=f"127.0.0.1:{listener}")
    sim = start_sim(SimDeviceConfig(name="nvr", ip_channels=2, alarm_inputs=2, events=setup))
    report = run(sdk, sim, tmp_path, listener)
    assert report.status == "ok", statuses(report)
    for name in ("address", "login", "protocol", "arming", "clock", f"listen port {listener}",
                 "motion linkage", "line crossing linkage", "intrusion linkage",
                 "alarm input linkage", "motion schedule", "alarm host", "user rights",
                 "disks", "record schedule", "recording", "disk full linkage"):  # fmt: skip
        assert check(report, name).status == "ok"
    assert check(report, "disk full linkage").detail == "notifies hikd"
    assert sim.devices[0].bad_tries("admin") == 0


MISCONFIGURED = [
    pytest.param({"notify_center": False}, "motion linkage", "Linkage Method", id="linkage-off"),
    pytest.param({"schedule": "empty"}, "motion schedule", "Arming Schedule", id="schedule-empty"),
    pytest.param({"alarm_host": "10.9.9.9:8123"}, "alarm host", "Alarm Server", id="wrong-host"),
    pytest.param({"remote_alarm_right": False}, "user rights", "User Management", id="no-right"),
    pytest.param({"clock_offset_s": 300.0}, "clock", "NTP", id="clock-off"),
    pytest.param({"record_schedule": False}, "record schedule", "Record Schedule", id="no-record"),
]


@pytest.mark.parametrize(("setup", "name", "where"), MISCONFIGURED)
def test_each_misconfiguration_is_a_problem_with_its_remedy(
    sdk: Library,
    start_sim: Callable[..., Simulator],
    tmp_path: Path,
    listener: int,
    setup: dict[str, Any],
    name: str,
    where: str,
) -> None:
    events = EventSetup(**{"alarm_host": f"127.0.0.1:{listener}", **setup})
    sim = start_sim(SimDeviceConfig(name="cam", ip_channels=2, events=events))
    report = run(sdk, sim, tmp_path, listener)
    found = check(report, name)
    assert found.status == "problem"
    assert found.remedy
    assert where in found.where
    # Only this misconfiguration is a problem: the same check of other event kinds, and (for
    # linkage off) the summary that nothing at all reaches hikd.
    kind = name.split()[-1]
    others = [c.name for c in report.checks if c.status == "problem" and c.name != name]
    assert all(o.endswith(kind) or o == "events for hikd" for o in others), others
    assert report.status == "problem"


def test_a_schedule_that_does_not_cover_now_is_a_warning(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="cam", events=EventSetup(schedule="not_now")))
    report = run(sdk, sim, tmp_path, None)
    assert check(report, "motion schedule").status == "warning"
    assert "does not cover now" in check(report, "motion schedule").detail


SPELLINGS = [
    pytest.param(DocumentVariants(), id="isapi-namespace"),
    pytest.param(DocumentVariants(namespace=False, reordered=True), id="plain-reordered"),
    pytest.param(DocumentVariants(lower_case=True, reordered=True), id="lower-case"),
    pytest.param(DocumentVariants(ip_channel_first_id=33), id="ids-from-33"),
]


@pytest.mark.parametrize("variants", SPELLINGS)
def test_fix_adds_linkage_and_alarm_host_and_a_second_run_is_clean(
    sdk: Library,
    start_sim: Callable[..., Simulator],
    tmp_path: Path,
    listener: int,
    variants: DocumentVariants,
) -> None:
    events = EventSetup(notify_center=False, alarm_host="10.9.9.9:8123", alarm_host_slots=3)
    sim = start_sim(
        SimDeviceConfig(name="nvr", ip_channels=2, alarm_inputs=1, events=events, variants=variants)
    )
    device = sim.devices[0]

    dry = run(sdk, sim, tmp_path, listener, fix=True)
    assert dry.status == "problem"
    assert device.linkage.writes == []  # a dry run writes nothing
    urls = [c.url for c in dry.changes]
    assert f"/ISAPI/Event/triggers/VMD-{device.config.channel_id(1)}/notifications" in urls
    assert "/ISAPI/Event/notification/httpHosts" in urls
    assert all("center" in c.added for c in dry.changes if "triggers" in c.url)

    fixed = run(sdk, sim, tmp_path, listener, fix=True, apply=True)
    assert [c.error for c in fixed.changes if c.error] == []
    assert all(c.applied for c in fixed.changes)
    assert fixed.status == "ok", statuses(fixed)
    assert all(device.linkage.notifies_center(t) for t in device.linkage.triggers)
    # A free slot is used; the other host stays as it was.
    hosts = device.linkage.alarm_hosts()
    assert ("10.9.9.9", 8123) in hosts
    assert ("127.0.0.1", listener) in hosts
    # The configuration was saved first, the way the configuration-backup job saves it.
    assert Path(fixed.backup).read_bytes() == device.configuration_data()

    writes = len(device.linkage.writes)
    again = run(sdk, sim, tmp_path, listener, fix=True, apply=True)
    assert again.status == "ok"
    assert again.changes == []
    assert len(device.linkage.writes) == writes  # idempotent: nothing written
    assert device.bad_tries("admin") == 0


def test_fix_replaces_a_wrong_alarm_host_when_no_slot_is_free(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path, listener: int
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", events=EventSetup(alarm_host="10.9.9.9:8123")))
    dry = run(sdk, sim, tmp_path, listener, fix=True)
    assert [c.summary for c in dry.changes] == [
        f"alarm host 1 (was 10.9.9.9:8123) -> 127.0.0.1:{listener}"
    ]
    run(sdk, sim, tmp_path, listener, fix=True, apply=True)
    assert sim.devices[0].linkage.alarm_hosts() == [("127.0.0.1", listener)]


def test_fix_leaves_triggers_whose_detection_is_off(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    events = EventSetup(notify_center=False, detections=False)
    sim = start_sim(SimDeviceConfig(name="cam", ip_channels=1, alarm_inputs=0, events=events))
    report = run(sdk, sim, tmp_path, None, fix=True)
    assert "off on channels 1" in check(report, "motion linkage").detail
    assert not any("VMD" in c.url for c in report.changes)


def test_a_wrong_password_costs_exactly_one_try(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", lock_after=5))
    config = make_config(sim, tmp_path, None, password="wrong-password")
    report = examine(sdk, config, config.devices[0], fix=True, apply=True)
    login = check(report, "login")
    assert login.status == "problem"
    assert "4 more wrong passwords" in login.detail
    assert "tried once" in login.detail
    assert sim.devices[0].bad_tries("admin") == 1
    assert sim.devices[0].logins("admin") == 0


def test_no_second_try_with_a_refused_password_when_one_try_is_left(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", lock_after=2))
    device = sim.devices[0]
    wrong = make_config(sim, tmp_path, None, password="wrong-password")
    first = examine(sdk, wrong, wrong.devices[0])
    assert "1 more wrong password " in check(first, "login").detail
    again = examine(sdk, wrong, wrong.devices[0])
    assert check(again, "login").detail.startswith("not tried: the device refused this password")
    assert device.bad_tries("admin") == 1
    assert not device.is_locked("admin")
    assert b"wrong-password" not in (tmp_path / "state" / "doctor-refusals.json").read_bytes()
    # Another password is tried (here the right one), and the memory is cleared.
    right = make_config(sim, tmp_path, None)
    assert check(examine(sdk, right, right.devices[0]), "login").status == "ok"
    assert examine(sdk, wrong, wrong.devices[0]).checks[1].detail.startswith("the device refused")


def test_an_unreachable_device_is_one_problem_and_no_login(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    config = make_config(sim, tmp_path, None, port=closed)
    report = examine(sdk, config, config.devices[0])
    assert [(c.name, c.status) for c in report.checks] == [("address", "problem")]


def test_a_listen_port_on_loopback_is_a_problem_for_a_device_elsewhere(listener: int) -> None:
    from hikd.config import ListenConfig
    from hikd.doctor.hikd_side import _listen_check

    listen = ListenConfig(address="127.0.0.1", port=listener)
    # This host's address towards a device on the LAN (the tests have only loopback).
    assert _listen_check(listen, "192.168.1.10").status == "problem"
    assert _listen_check(listen, "127.0.0.1").status == "ok"


def test_firmware_without_the_documents_gets_warnings_not_failures(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path, listener: int
) -> None:
    sim = start_sim(SimDeviceConfig(name="old", events=EventSetup(notify_center=False)))
    sim.devices[0].unavailable.update(
        {
            "/ISAPI/Event/triggers",
            "/ISAPI/Event/notification/httpHosts",
            "/ISAPI/Security/users",
            "/ISAPI/System/time",
            "/ISAPI/ContentMgmt/record/tracks",
        }
    )
    report = run(sdk, sim, tmp_path, listener, fix=True)
    assert report.status == "warning", statuses(report)
    for name in ("event linkage", "alarm host", "user rights", "clock"):
        assert check(report, name).status == "warning"
    assert report.changes == []


def test_an_offline_camera_behind_an_nvr_is_asked_once(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", ip_channels=2, alarm_inputs=0))
    device = sim.devices[0]
    device.linkage.unreachable.add(2)
    report = run(sdk, sim, tmp_path, None)
    channel_2 = {
        "/ISAPI/ContentMgmt/InputProxy/channels/2/video/motionDetection",
        "/ISAPI/Smart/LineDetection/2",
        "/ISAPI/Smart/FieldDetection/2",
    }
    asked = [path for _method, path in device.requests if path in channel_2]
    assert len(asked) == 1, asked
    # Channel 1 was read; channel 2's linkage is still judged (its detection state unknown).
    for name in ("motion linkage", "line crossing linkage", "intrusion linkage"):
        assert check(report, name).detail == "notifies hikd on channels 1-2"
    assert report.status == "ok", statuses(report)


def test_an_http_linkage_reaches_hikd_only_when_it_listens(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path, listener: int
) -> None:
    """Some firmware pushes to the alarm host on an "HTTP" linkage rather than "center"."""
    events = EventSetup(alarm_host=f"127.0.0.1:{listener}")
    sim = start_sim(SimDeviceConfig(name="cam", ip_channels=1, alarm_inputs=0, events=events))
    device = sim.devices[0]
    device.linkage.triggers["VMD-1"].notifications = [
        {"id": "1", "notificationMethod": "HTTP", "httpHostID": "1"}
    ]
    device.add_push_target("127.0.0.1", free_port())
    assert device.trigger("VMD", channel=1).pushes == 2  # the alarm host and the extra one
    listening = run(sdk, sim, tmp_path, listener)
    assert check(listening, "motion linkage").status == "ok"
    armed_only = run(sdk, sim, tmp_path, None)
    assert check(armed_only, "motion linkage").status == "problem"


def test_firmware_without_the_schedule_list_is_asked_per_channel(
    sdk: Library, start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="cam", ip_channels=2, events=EventSetup(schedule="empty")))
    device = sim.devices[0]
    device.unavailable.add("/ISAPI/Event/schedules/motionDetections")
    report = run(sdk, sim, tmp_path, None)
    assert check(report, "motion schedule").status == "problem"
    assert device.count("/ISAPI/Event/schedules/motionDetections/VMD_video2") == 1
