"""The library's exception codes become health events (seed 5.2.12).

The real library raises 0x8000/0x8006/0x8016/0x8040/0x8041/0x8044 in tests/listeners/test_alarms.py
and tests/devices/test_session_recovery.py; 0x8022/0x8023 (alarms the library itself dropped) and
most other codes cannot be provoked against the simulator, so these feed the router the
integers the callback would hand it.
"""

from __future__ import annotations

import time

from hikd.config import DeviceConfig
from hikd.devices.sdk_exceptions import EARLY_WAIT_S, SdkExceptionRouter, describe_exception
from hikd.devices.session import DeviceSession
from hikd.events import Event
from hikd.sdk.constants import EXCEPTION_NAMES
from hikd.sdk.library import Library
from tests.support import wait_for


def router_for(sdk: Library) -> tuple[SdkExceptionRouter, DeviceSession, list[Event]]:
    events: list[Event] = []
    config = DeviceConfig(name="nvr", host="127.0.0.1", port=8000, password="x")
    session = DeviceSession(sdk, config, events.append)
    session.user_id = 3
    return SdkExceptionRouter(lambda: [session], events.append), session, events


def test_lost_alarms_are_counted_and_reconnects_are_one_episode(sdk: Library) -> None:
    router, _session, events = router_for(sdk)
    router.route(0x8023, 3, 0)
    router.route(0x8022, 3, 0)
    lost = [e for e in events if e.type == "alarms_lost"]
    assert [e.attributes["count"] for e in lost] == [1, 2]

    events.clear()
    for _ in range(3):  # the library repeats 0x8006 every reconnect interval
        router.route(0x8006, 3, 0)
    router.route(0x8016, 3, 0)
    assert [(e.type, e.state) for e in events] == [
        ("arming_reconnecting", "start"),
        ("arming_reconnecting", "stop"),
        ("rearmed", "pulse"),
    ]
    assert all(e.device.name == "nvr" for e in events)


def test_a_reconnect_reported_before_its_retry_still_ends_the_episode(sdk: Library) -> None:
    # The library raises a retry's 0x8006 and its 0x8016 on two threads; under load the
    # 0x8016 came 11 ms first (tests/listeners/test_backfill.py, the re-sent alarms, failed
    # so: the episode stayed open and no backfill ran). The simulator cannot make the
    # library swap them at will, so the handler is fed the order seen.
    router, _session, events = router_for(sdk)
    router.start()
    try:
        router.handler(0x8016, 3, 0)
        router.handler(0x8006, 3, 0)
        assert wait_for(lambda: len(events) >= 3, 10), events
    finally:
        router.stop()
    assert [(e.type, e.state) for e in events] == [
        ("arming_reconnecting", "start"),
        ("arming_reconnecting", "stop"),
        ("rearmed", "pulse"),
    ]
    # A 0x8016 whose 0x8006 never comes is not lost: it is routed once it waited enough.
    events.clear()
    router.route(0x8016, 3, 0)
    router.release_early(time.monotonic())
    assert events == []
    router.release_early(time.monotonic() + EARLY_WAIT_S)
    assert [(e.type, e.state) for e in events] == [("rearmed", "pulse")]


def test_every_start_gets_its_stop(sdk: Library) -> None:
    router, session, events = router_for(sdk)
    session.state = "online"
    for _ in range(3):  # 0x8000 comes at every failed session check
        router.route(0x8000, 3, 0)
    router.route(0x8017, 3, 0)  # RESUME_EXCHANGE
    router.route(0x8040, 3, -1)
    router.route(0x8044, 3, -1)  # the re-login was refused
    router.route(0x8006, 3, 0)
    session.end_episodes("session closed")
    pairs = [(e.type, e.state) for e in events if e.state != "pulse"]
    assert pairs == [
        ("session_heartbeat_lost", "start"),
        ("session_heartbeat_lost", "stop"),
        ("relogin", "start"),
        ("relogin", "stop"),
        ("arming_reconnecting", "start"),
        ("arming_reconnecting", "stop"),
    ]
    refused = next(e for e in events if e.type == "relogin" and e.state == "stop")
    assert refused.attributes["failed"] is True
    assert refused.attributes["code_name"] == "EXCEPTION_RELOGIN_FAILED"


def test_a_reconnect_after_a_relogin_without_its_success_ends_the_relogin(sdk: Library) -> None:
    # The library's order is 0x8040, 0x8041, 0x8016 (sdk-over-isapi.md part 3); a full-suite
    # run under load (test_backfill.py, the device restarted) got the 0x8016 and never the
    # 0x8041. The simulator cannot make the library leave a code out, so the router is fed
    # the codes seen.
    router, session, events = router_for(sdk)
    session.state = "online"
    router.route(0x8006, 3, 0)
    router.route(0x8040, 3, -1)
    router.route(0x8016, 3, 0)
    router.route(0x8041, 3, -1)  # late: the episode is over, nothing more is published
    pairs = [(e.type, e.state) for e in events]
    assert pairs == [
        ("arming_reconnecting", "start"),
        ("relogin", "start"),
        ("arming_reconnecting", "stop"),
        ("relogin", "stop"),
        ("rearmed", "pulse"),
    ]
    stop = next(e for e in events if e.type == "relogin" and e.state == "stop")
    assert stop.attributes["code_name"] == "ALARM_RECONNECTSUCCESS"
    assert "failed" not in stop.attributes


def test_every_exception_code_of_the_guide_has_a_name() -> None:
    for code, macro in EXCEPTION_NAMES.items():
        name, _state, meaning = describe_exception(code)
        assert not name.startswith("sdk_exception"), macro
        assert name != "library_exception", macro
        assert meaning, macro
    assert describe_exception(0x8017)[:2] == ("session_heartbeat_lost", "stop")
    assert describe_exception(0x9999)[0] == "library_exception"
