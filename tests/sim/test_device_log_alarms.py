"""What the simulator keeps for backfill, read through the real vendor library: alarms in
the device log (with the channel where the library can see it) and alarms re-sent after a
broken link (sdk-over-isapi.md part 2 §e; README "Backfill")."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from hikd.devices.session import DeviceSession
from hikd.sdk.alarms import (
    ArmingOptions,
    MessageCallback,
    close_alarm_channel,
    set_message_callback,
    setup_alarm_channel,
)
from hikd.sdk.device_log import search_log
from hikd.sdk.library import Library
from hikd.sdk.raw import RawAlarm
from hikd.sim import SimDeviceConfig, Simulator
from tests.support import device_config, wait_for


@pytest.fixture
def login(sdk: Library) -> Iterator[Callable[[Simulator], DeviceSession]]:
    sessions: list[DeviceSession] = []

    def start(sim: Simulator) -> DeviceSession:
        session = DeviceSession(sdk, device_config(sim), lambda _e: None)
        session.login_once()
        sessions.append(session)
        return session

    try:
        yield start
    finally:
        for session in sessions:
            session.close()


def _alarm_records(sdk: Library, session: DeviceSession) -> list[tuple[str, int, int]]:
    now = datetime.now(UTC)
    assert session.user_id is not None
    records = search_log(
        sdk, session.user_id, now - timedelta(hours=1), now + timedelta(hours=1), UTC
    )
    return [
        (r.minor_name, r.channel, r.alarm_input) for r in records if r.major == 1 or r.major == 2
    ]


def test_alarms_reach_the_log_with_their_channel_through_the_library(
    sdk: Library, start_sim: Callable[..., Simulator], login: Callable[[Simulator], DeviceSession]
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", log_entries=0))
    device = sim.devices[0]
    device.trigger("VMD", channel=3)
    device.trigger("VMD", channel=3, state="inactive")
    device.trigger("IO", channel=2)
    device.trigger("tamperdetection", channel=4)
    device.trigger("linedetection", channel=1)
    device.trigger("linedetection", channel=1, state="inactive")
    device.trigger("videoloss", channel=2)
    session = login(sim)
    # The library maps the metaId path (…/Alarm/motionStart/3) to major/minor and takes the
    # trailing number as the channel, or the alarm input for alarmIn: over ISAPI that is
    # the only place the channel comes from.
    assert _alarm_records(sdk, session) == [
        ("motdet_start", 3, 0),
        ("motdet_stop", 3, 0),
        ("alarm_in", 0, 2),
        ("hide_alarm_start", 4, 0),
        ("vca_alarm_start", 1, 0),
        ("vca_alarm_stop", 1, 0),
        ("vi_lost", 2, 0),
    ]


def test_a_device_without_alarm_entries_logs_none(
    sdk: Library, start_sim: Callable[..., Simulator], login: Callable[[Simulator], DeviceSession]
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", log_entries=0, log_alarms=False))
    sim.devices[0].trigger("VMD", channel=1)
    assert _alarm_records(sdk, login(sim)) == []


def test_alarms_raised_without_a_stream_are_resent_when_one_opens(
    sdk: Library, start_sim: Callable[..., Simulator], login: Callable[[Simulator], DeviceSession]
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", resend_missed=True, utc_offset_minutes=60))
    device = sim.devices[0]
    missed = [device.trigger("VMD", channel=ch) for ch in (1, 2)]
    assert all(s.streams == 0 for s in missed)
    session = login(sim)
    got: list[RawAlarm] = []
    lock = threading.Lock()

    def deliver(raw: RawAlarm) -> None:
        with lock:
            got.append(raw)

    callback = MessageCallback(deliver)
    set_message_callback(sdk, callback)
    assert session.user_id is not None
    handle = setup_alarm_channel(sdk, session.user_id, ArmingOptions())
    try:
        assert wait_for(lambda: len(got) >= 2)
        device.trigger("VMD", channel=3)
        assert wait_for(lambda: len(got) >= 3)
    finally:
        close_alarm_channel(sdk, handle)
    bodies = [raw.payload for raw in got]
    assert all(b"<isDataRetransmission>true</isDataRetransmission>" in b for b in bodies[:2])
    assert b"isDataRetransmission" not in bodies[2]
    for sent, body in zip(missed, bodies[:2], strict=True):
        assert b"<hikdSimSeq>%d</hikdSimSeq>" % sent.seq in body  # its own number and time
    assert device.alarms.resent == 2


def test_asking_for_resends_changes_nothing_the_library_sends_over_isapi(
    sdk: Library, start_sim: Callable[..., Simulator], login: Callable[[Simulator], DeviceSession]
) -> None:
    # byBrokenNetHttp (and bySupport) are private-protocol requests: over ISAPI the library
    # opens the same alertStream with or without them (README vendor-library notes).
    sim = start_sim(SimDeviceConfig(name="nvr"))
    device = sim.devices[0]
    session = login(sim)
    assert session.user_id is not None
    seen = []
    for options in (
        ArmingOptions(),
        ArmingOptions(resend_after_outage=0b11111, upload_confirmation=True),
    ):
        device.clear_requests()
        handle = setup_alarm_channel(sdk, session.user_id, options)
        try:
            assert device.wait_for_streams(1)
        finally:
            close_alarm_channel(sdk, handle)
        assert wait_for(lambda: device.stream_count == 0)
        seen.append([t for t in device.request_targets if "Event" in t[1]])
    assert seen[0] == seen[1] == [("GET", "/ISAPI/Event/notification/alertStream")]
