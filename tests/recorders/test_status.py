"""Status polls with the real vendor library against hikd.sim over ISAPI.

Over ISAPI the library's structured work status is a trap (TRUE, item status 189, all
zeros); the status job must read the device's own documents through the pass-through and
publish health events only when something changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hikd.devices.capabilities.work_status import work_status
from hikd.devices.session import DeviceSession
from hikd.jobs.base import JobResult
from hikd.recorders.status import StatusConfig, StatusJob
from hikd.sdk.library import Library
from hikd.sdk.status import WorkStatusUnavailable, get_work_status
from hikd.sim import SimDeviceConfig, SimDisk, Simulator
from hikd.sim.variants import DocumentVariants
from hikd.state import StateStore
from tests.standin.jobs import Events, job_context
from tests.support import device_config, logged_in

pytest_plugins = ["tests.standin.fixtures"]


@pytest.fixture
def nvr(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> Iterator[tuple[Simulator, DeviceSession]]:
    sim = start_sim(
        SimDeviceConfig(
            name="nvr", ip_channels=4, alarm_inputs=3, disks=[SimDisk(id=1), SimDisk(id=2)]
        )
    )
    with logged_in(sdk, device_config(sim), Events()) as session:
        yield sim, session


def poll(
    session: DeviceSession, state: StateStore, config: StatusConfig | None = None
) -> tuple[JobResult, Events]:
    ctx, events = job_context(session, state, job="status")
    return StatusJob(config or StatusConfig()).run(ctx), events


def changes(events: Events) -> list[tuple[str, str, int | None, object]]:
    """(type, state, channel, disk) of every event but the periodic status."""
    return [(e.type, e.state, e.channel, e.attributes.get("disk")) for e in events
            if e.type != "status"]  # fmt: skip


def test_the_librarys_structured_work_status_is_refused_over_isapi(
    sdk: Library, nvr: tuple[Simulator, DeviceSession]
) -> None:
    """The trap itself, with the real library: TRUE with status 189 and zeros must not
    read as a healthy device without disks."""
    _sim, session = nvr
    assert session.user_id is not None
    with pytest.raises(WorkStatusUnavailable) as caught:
        get_work_status(sdk, session.user_id)
    assert caught.value.code == 189


def test_work_status_over_isapi_reads_the_devices_documents(
    nvr: tuple[Simulator, DeviceSession],
) -> None:
    sim, session = nvr
    sim.devices[0].set_input(2, True)
    status = work_status(session)
    assert status.source == "isapi"
    assert [(d.id, d.status, d.capacity_mb) for d in status.disks] == [
        (1, "ok", 953_869),
        (2, "ok", 953_869),
    ]
    assert [c.channel for c in status.channels] == [1, 2, 3, 4]
    assert all(c.recording and c.signal_lost is False for c in status.channels)
    assert status.alarm_inputs_active == [2]


def test_no_change_no_event(nvr: tuple[Simulator, DeviceSession], state_store: StateStore) -> None:
    _sim, session = nvr
    first, events = poll(session, state_store)
    assert first.ok, first.summary
    assert changes(events) == []
    (status,) = events.of_type("status")
    assert status.kind == "health"
    assert status.attributes["available"] is True
    assert len(status.attributes["disks"]) == 2
    second, events = poll(session, state_store)
    assert second.ok and changes(events) == []
    assert "all fine" in second.summary


def test_a_failed_disk_starts_and_ends_a_disk_error(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore
) -> None:
    sim, session = nvr
    poll(session, state_store)
    sim.devices[0].set_disk_status(2, "error")
    _result, events = poll(session, state_store)
    assert changes(events) == [("disk_error", "start", None, 2)]
    assert events.of_type("disk_error")[0].attributes["status"] == "error"
    _result, events = poll(session, state_store)
    assert changes(events) == []  # still failed: no news
    sim.devices[0].set_disk_status(2, "ok")
    _result, events = poll(session, state_store)
    assert changes(events) == [("disk_error", "stop", None, 2)]


def test_a_channel_that_stops_recording(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore
) -> None:
    sim, session = nvr
    poll(session, state_store)
    sim.devices[0].set_recording(3, False)
    _result, events = poll(session, state_store)
    assert changes(events) == [("channel_not_recording", "start", 3, None)]
    sim.devices[0].set_recording(3, True)
    _result, events = poll(session, state_store)
    assert changes(events) == [("channel_not_recording", "stop", 3, None)]


def test_an_offline_camera_and_a_full_disk(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore
) -> None:
    sim, session = nvr
    poll(session, state_store)
    sim.devices[0].set_channel_online(4, False)
    sim.devices[0].config.disks[0].free_mb = 0
    _result, events = poll(session, state_store)
    assert sorted(changes(events), key=str) == sorted(
        [
            ("channel_offline", "start", 4, None),
            ("video_signal_lost", "start", 4, None),
            ("disk_full", "start", None, 1),
        ],
        key=str,
    )
    # A device that overwrites its oldest recordings is always full: the user turns it off.
    _result, events = poll(session, state_store, StatusConfig(disk_full_free_mb=None))
    assert changes(events) == [("disk_full", "stop", None, 1)]


def test_problems_present_at_the_first_poll_are_reported(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore
) -> None:
    sim, session = nvr
    sim.devices[0].set_disk_status(1, "unformatted")
    sim.devices[0].set_recording(2, False)
    _result, events = poll(session, state_store, StatusConfig(ignore_channels=[2]))
    assert changes(events) == [("disk_error", "start", None, 1)]


def test_an_unreachable_device_is_a_failed_run_without_status_events(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore
) -> None:
    sim, session = nvr
    poll(session, state_store)
    sim.stop()
    result, events = poll(session, state_store)
    assert not result.ok
    assert "offline" in result.summary
    assert [e.type for e in events] == []
    assert session.state == "offline"


# Spellings of the status documents real devices use (issue 8 item 4): port ids as
# <ioPortID> + <ioPortType> (hikvision_next's captures of NVRs and cameras), <inputPort>,
# <id>; /ISAPI/System/IO/status with inputs and outputs in one list; workingstatus as XML
# whatever was asked; no namespace; another order with unknown elements; other case.
SPELLINGS = {
    "ioPortID": DocumentVariants(io_port_id="ioPortID"),
    "inputPort": DocumentVariants(io_port_id="inputPort"),
    "id": DocumentVariants(io_port_id="id"),
    "io-status-ioPortID": DocumentVariants(
        io_status="all", io_port_id="ioPortID", working_status="xml"
    ),
    "io-status-inputIOPortID": DocumentVariants(io_status="all", working_status="xml"),
    "io-status-inputPort": DocumentVariants(io_status="all", io_port_id="inputPort"),
    "workingstatus-xml": DocumentVariants(working_status="xml"),
    "no-namespace": DocumentVariants(namespace=False, working_status="xml"),
    "reordered": DocumentVariants(reordered=True),
    "reordered-xml": DocumentVariants(reordered=True, working_status="xml", io_status="all"),
    "lower-case": DocumentVariants(lower_case=True),
    "lower-case-xml": DocumentVariants(lower_case=True, working_status="xml", io_status="all"),
}  # fmt: skip


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_the_status_documents_reads_the_same(
    spelling: str, sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(
        SimDeviceConfig(
            name="nvr",
            ip_channels=4,
            alarm_inputs=3,
            alarm_outputs=2,
            disks=[SimDisk(id=1), SimDisk(id=2, status="error")],
            variants=SPELLINGS[spelling],
        )
    )
    device = sim.devices[0]
    device.set_input(2, True)
    device.set_output(1, True)  # output 1 is no input 1: <ioPortType> tells them apart
    device.set_channel_online(3, False)
    with logged_in(sdk, device_config(sim), Events()) as session:
        status = work_status(session)
    assert [(d.id, d.status) for d in status.disks] == [(1, "ok"), (2, "error")]
    assert [(c.channel, c.online) for c in status.channels] == [
        (1, True), (2, True), (3, False), (4, True)
    ]  # fmt: skip
    assert status.alarm_inputs_active == [2]
    assert status.alarm_outputs_active == [1]
    # /ISAPI/System/deviceInfo, read by hikd itself for what DEVICEINFO_V40 lacks.
    assert (session.model, session.firmware) == ("DS-7608NI-K2", "V4.74.105")
