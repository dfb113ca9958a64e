"""Device-side backup (GetDiskList, BackupByTime, GetBackupProgress, StopBackup) on
private-protocol sessions, through the stand-in library.

The real library cannot back up over ISAPI: GetDiskList fails with 189 and BackupByTime
speaks the private protocol to the HTTP port and times out (sdk-over-isapi.md part 2 d).
The last test checks that hikd refuses before any such call on an ISAPI session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from hikd.devices.capabilities.backup import BackupNotSupported, backup_disks
from hikd.devices.session import DeviceSession
from hikd.jobs.base import JobResult
from hikd.recorders.device_backup import DeviceBackupConfig, DeviceBackupJob
from hikd.sdk import constants as c
from hikd.sdk.backup import BACKUP_STATES, backup_state
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.state import StateStore
from tests.standin import StandIn
from tests.standin.jobs import Events, job_context
from tests.support import device_config, wait_for

pytest_plugins = ["tests.standin.fixtures"]

FAST = {"poll_s": 0.001, "timeout_s": 30.0}

# Table 5.26 of the guide (5.14.44), and the values the V6 header adds.
TABLE_5_26 = {
    100: "success",
    101: "change_device",
    300: "search_device",
    301: "search_file",
    400: "exception",
    500: "fail",
    501: "time_seg_no_file",
    502: "no_resource",
    503: "device_low_space",
    504: "disk_finalized",
    505: "disk_exception",
    506: "device_not_exist",
    507: "other_backup_work",
    508: "user_no_right",
    509: "operate_fail",
}
HEADER_EXTRAS = {302: "search_log_file", 303: "change_disk", 510: "no_log_file"}
FAILURES = [v for v in {**TABLE_5_26, **HEADER_EXTRAS} if backup_state(v).outcome == "failed"]


def back_up(
    session: DeviceSession,
    state: StateStore,
    stop: threading.Event | None = None,
    **options: object,
) -> tuple[JobResult, Events]:
    ctx, events = job_context(session, state, job="usb", stop=stop)
    config = DeviceBackupConfig.model_validate({**FAST, "channels": [1], **options})
    return DeviceBackupJob(config).run(ctx), events


def test_every_state_of_table_5_26_has_a_name() -> None:
    for value, name in {**TABLE_5_26, **HEADER_EXTRAS}.items():
        assert backup_state(value).name == name
        assert BACKUP_STATES[value].description
    assert backup_state(100).outcome == "done"
    assert {backup_state(v).outcome for v in (101, 303)} == {"needs_medium"}
    assert {backup_state(v).outcome for v in (0, 57, 99, 300, 301, 302)} == {"running"}
    assert backup_state(57).description == "57 %"
    assert backup_state(777).outcome == "failed"  # unknown: never "still running" forever


@pytest.mark.standin
def test_a_backup_walks_through_every_running_state_to_success(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (private protocol only)."""
    assert [d.description for d in backup_disks(standin_session)] == ["usb1", "esata1"]
    running = [c.BACKUP_SEARCH_DEVICE, c.BACKUP_SEARCH_FILE, c.BACKUP_SEARCH_LOG_FILE,
               0, 25, 50, c.BACKUP_CHANGE_DEVICE, c.BACKUP_CHANGE_DISK, 75, 99]  # fmt: skip
    standin.push_backup_states(*running, c.BACKUP_SUCCESS)
    result, events = back_up(standin_session, state_store, disk="esata1", window_h=2)
    assert result.ok, result.summary
    assert standin.get("backup_progress_calls") == len(running) + 1
    assert standin.get("stop_backups") == 1  # StopBackup after success too (5.14.44)
    assert standin.get("backup_channel") == 1
    (done,) = events
    assert (done.kind, done.type, done.channel) == ("file", "backup_done", 1)
    assert (done.attributes["disk"], done.attributes["state"]) == ("esata1", "success")
    span = datetime.fromisoformat(done.attributes["end"]) - datetime.fromisoformat(
        done.attributes["start"]
    )
    assert span == timedelta(hours=2)


@pytest.mark.standin
def test_the_next_backup_starts_where_the_last_one_ended(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (private protocol only)."""
    _result, first = back_up(standin_session, state_store, window_h=24)
    _result, second = back_up(standin_session, state_store, window_h=24)
    assert second[0].attributes["start"] == first[0].attributes["end"]
    assert standin.get("backups") == 2


@pytest.mark.standin
@pytest.mark.parametrize("final", FAILURES)
def test_each_failure_state_fails_the_backup_and_stops_it(
    final: int, standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (private protocol only)."""
    standin.push_backup_states(c.BACKUP_SEARCH_DEVICE, 10, final)
    result, events = back_up(standin_session, state_store)
    assert not result.ok
    (failed,) = events
    assert (failed.kind, failed.type) == ("health", "backup_failed")
    assert failed.attributes["state"] == backup_state(final).name
    assert failed.attributes["state_code"] == final
    assert standin.get("stop_backups") == 1
    assert state_store.get("usb", "dvr/1/last_end") is None  # a failed span is tried again


@pytest.mark.standin
def test_a_backup_that_never_ends_is_stopped_at_its_timeout(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (private protocol only)."""
    standin.push_backup_states(c.BACKUP_CHANGE_DEVICE)  # waits for a new medium, forever
    result, events = back_up(standin_session, state_store, timeout_s=0.05)
    assert not result.ok and "timed out" in result.summary
    assert events[0].attributes["state"] == "change_device"
    assert standin.get("stop_backups") == 1


@pytest.mark.standin
def test_an_ip_channel_is_backed_up_by_the_librarys_number(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (private protocol only). hikd's IP
    channel 6 (after 4 analog ones) is the private protocol's 34 (byStartDChan 33)."""
    standin.push_backup_states(c.BACKUP_SUCCESS)
    result, events = back_up(standin_session, state_store, channels=[6])
    assert result.ok, result.summary
    assert standin.get("backup_channel") == 34
    (done,) = events
    assert (done.type, done.channel) == ("backup_done", 6)


@pytest.mark.standin
def test_shutdown_stops_a_running_backup(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (private protocol only)."""
    stop = threading.Event()
    standin.push_backup_states(50)
    ctx, _events = job_context(standin_session, state_store, stop=stop)
    job = DeviceBackupJob(DeviceBackupConfig(channels=[1, 2], poll_s=0.01))
    done: list[JobResult] = []
    worker = threading.Thread(target=lambda: done.append(job.run(ctx)))
    worker.start()
    try:
        assert wait_for(lambda: standin.get("backup_progress_calls") > 2)
        stop.set()
    finally:
        stop.set()
        worker.join(10)
    assert done and not done[0].ok
    assert "shutting down" in done[0].summary
    assert standin.get("backups") == 1  # channel 2 was never started
    assert standin.get("stop_backups") == 1


@pytest.mark.standin
def test_refusals_before_and_at_the_start(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (private protocol only)."""
    result, _events = back_up(standin_session, state_store, disk="usb9")
    assert not result.ok and "usb9" in result.summary and "usb1" in result.summary
    assert standin.get("backups") == 0
    standin.set(backup_error=507)
    result, events = back_up(standin_session, state_store)
    assert not result.ok and "refused" in result.summary
    assert events[0].attributes["state"] == "not_started"
    assert standin.get("stop_backups") == 0  # no handle, nothing to stop
    standin.set(backup_error=0, disk_list_error=189)
    result, _events = back_up(standin_session, state_store)
    assert not result.ok and "backup media" in result.summary


def test_an_isapi_session_is_refused_before_any_sdk_call(
    sdk: Library, start_sim: Callable[..., Simulator], state_store: StateStore
) -> None:
    """Real library, ISAPI login: the library would open the private protocol on the HTTP
    port and hang for its receive timeout; hikd must not even try."""
    sim = start_sim(SimDeviceConfig(name="cam"))
    session = DeviceSession(sdk, device_config(sim), Events())
    session.login_once()
    try:
        requests_before = len(sim.devices[0].requests)
        with pytest.raises(BackupNotSupported, match="not supported over ISAPI"):
            backup_disks(session)
        result, events = back_up(session, state_store)
        assert not result.ok
        assert result.details == {"supported": False}
        assert "login_mode" in result.summary
        assert events == []
        assert len(sim.devices[0].requests) == requests_before
    finally:
        session.close()
