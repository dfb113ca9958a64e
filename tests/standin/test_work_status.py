"""Structured work status (GetDeviceConfig NET_DVR_GET_WORK_STATUS) on private-protocol
sessions, through the stand-in library, including the status-189 trap.

The real library only returns the trap over ISAPI (TRUE, item status 189, zeros; see
tests/recorders/test_status.py); a filled NET_DVR_WORKSTATE_V40 needs a private-protocol device,
which the stand-in plays.
"""

from __future__ import annotations

import pytest

from hikd.devices.capabilities.work_status import work_status
from hikd.devices.session import DeviceSession
from hikd.jobs.base import JobResult
from hikd.recorders.status import StatusConfig, StatusJob
from hikd.sdk.errors import NotSupportedError
from hikd.sdk.status import WorkStatusUnavailable
from hikd.state import StateStore
from tests.standin import StandIn
from tests.standin.jobs import Events, job_context

pytest_plugins = ["tests.standin.fixtures"]

pytestmark = pytest.mark.standin


def poll(session: DeviceSession, state: StateStore) -> tuple[JobResult, Events]:
    ctx, events = job_context(session, state, job="status")
    return StatusJob(StatusConfig()).run(ctx), events


def changes(events: Events) -> list[tuple[str, str, int | None, object]]:
    return [(e.type, e.state, e.channel, e.attributes.get("disk")) for e in events
            if e.type != "status"]  # fmt: skip


def test_the_structured_status_is_read_field_by_field(
    standin: StandIn, standin_session: DeviceSession
) -> None:
    """The real library cannot do this over ISAPI (it returns status 189 and zeros)."""
    standin.set(disk1_status=2, disk1_free_mb=1234, not_recording=33, signal_lost=2,
                alarm_in_active=3, alarm_out_active=1)  # fmt: skip
    status = work_status(standin_session)
    assert status.source == "private"
    assert [(d.id, d.status, d.capacity_mb, d.free_mb) for d in status.disks] == [
        (1, "error", 953_869, 1234),
        (2, "ok", 953_869, 120_832),
    ]
    # hikd's numbers: the library's IP channels 33 and 34 are 5 and 6.
    assert [c.channel for c in status.channels] == [1, 2, 3, 4, 5, 6]
    by_channel = {c.channel: c for c in status.channels}
    assert by_channel[5].recording is False and by_channel[1].recording is True
    assert by_channel[2].signal_lost is True and by_channel[3].signal_lost is False
    assert by_channel[1].online is None  # the private struct does not say
    assert (status.alarm_inputs_active, status.alarm_outputs_active) == ([3], [1])


def test_item_status_one_also_means_success(
    standin: StandIn, standin_session: DeviceSession
) -> None:
    """The real library cannot do this over ISAPI. Seed 5.31.1: 0 or 1 in lpStatusList is a
    success."""
    standin.set(item_status=1)
    assert len(work_status(standin_session).disks) == 2


def test_true_with_status_189_is_not_a_healthy_device(
    standin: StandIn, standin_session: DeviceSession
) -> None:
    """The stand-in returns exactly what the real library returns over ISAPI (TRUE, item
    status 189, all zeros) on a private session, where hikd trusts the structured call."""
    standin.set(work_status_mode=1)
    with pytest.raises(WorkStatusUnavailable) as caught:
        work_status(standin_session)
    assert caught.value.code == 189


def test_a_failed_call(standin: StandIn, standin_session: DeviceSession) -> None:
    """The real library cannot do this over ISAPI."""
    standin.set(work_status_mode=2, work_status_error=23)
    with pytest.raises(NotSupportedError):
        work_status(standin_session)


def test_status_job_on_a_private_session(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (structured work status)."""
    result, events = poll(standin_session, state_store)
    assert result.ok and changes(events) == []
    standin.set(disk1_status=4, not_recording=34)
    _result, events = poll(standin_session, state_store)
    assert sorted(changes(events), key=str) == [
        ("channel_not_recording", "start", 6, None),  # the library's 34
        ("disk_error", "start", None, 1),
    ]
    assert events.of_type("disk_error")[0].attributes["status"] == "unformatted"


def test_the_trap_neither_ends_problems_nor_reports_all_fine(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI. A poll that gets the 189 trap must fail
    and keep the known problems: zeros are not "disk repaired, channels gone"."""
    standin.set(disk1_status=2)
    _result, events = poll(standin_session, state_store)
    assert changes(events) == [("disk_error", "start", None, 1)]
    standin.set(work_status_mode=1)
    result, events = poll(standin_session, state_store)
    assert not result.ok and "not available" in result.summary
    (status,) = events
    assert status.type == "status" and status.attributes["available"] is False
    standin.set(work_status_mode=0)
    _result, events = poll(standin_session, state_store)
    assert changes(events) == []  # still the same failed disk: no stop, no new start


def test_a_vanished_disk_is_missing_until_it_is_back(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (structured work status)."""
    poll(standin_session, state_store)
    standin.set(disks=1)
    _result, events = poll(standin_session, state_store)
    assert changes(events) == [("disk_error", "start", None, 2)]
    assert events.of_type("disk_error")[0].attributes["status"] == "missing"
    _result, events = poll(standin_session, state_store)
    assert changes(events) == []
    standin.set(disks=2)
    _result, events = poll(standin_session, state_store)
    assert changes(events) == [("disk_error", "stop", None, 2)]
