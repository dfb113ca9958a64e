"""A dead session always comes back, and a refused login never locks the account.

The real vendor library against hikd.sim: the device's password is changed while hikd is
armed (the library's own re-login is refused, 0x8044, and it never tries again), and
devices that count tries and lock the user answer with their userCheck body.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

from hikd.devices.lockout import next_try
from hikd.devices.session import DeviceSession
from hikd.sdk.errors import AuthError
from hikd.sdk.library import Library
from hikd.sdk.login import LoginFailureDetails
from hikd.sim import Simulator
from tests.listeners.test_alarms import PASSWORD, Running, nvr, run_daemon
from tests.support import Collector, device_config, wait_for

__all__ = ["run_daemon"]  # the daemon fixture of test_alarms, shared

LOGIN = "/ISAPI/Security/sessionLogin"


def unpaired_episodes(running: Running) -> dict[str, int]:
    """Health types whose starts outnumber their stops."""
    starts = Counter(e["type"] for e in running.events(kind="health", state="start"))
    stops = Counter(e["type"] for e in running.events(kind="health", state="stop"))
    return {t: n - stops[t] for t, n in starts.items() if n != stops[t]}


def test_a_refused_relogin_goes_back_to_the_login_loop_and_rearms(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    sim = start_sim(nvr("moved", lock_after=5))
    device = sim.devices[0]
    running = run_daemon(sim, device_extra="auth_retry_s = 2")
    assert device.wait_for_streams(1, timeout=15)
    running.wait_event(type="armed")

    # Someone changes the password on the device: every session and stream is gone.
    device.set_password("Changed-Elsewhere-9")
    device.forget_sessions()
    device.alarms.close_streams()
    refused = running.wait_event(type="auth_failed", timeout=30)
    running.wait_event(type="disarmed")  # the dead session's alarm channel is closed
    # The library's own re-login took one try, hikd's login the next: 3 left of 5.
    assert refused["attributes"]["retries_left"] == 3
    assert refused["attributes"]["next_try_s"] == 2

    device.set_password(PASSWORD)  # ... and puts it back
    assert wait_for(lambda: len(running.events(type="armed")) >= 2, timeout=30), (
        "hikd never logged in and armed again"
    )
    assert device.wait_for_streams(1, timeout=15)
    device.trigger(type="VMD", channel=2)
    running.wait_event(type="motion", state="start", channel=2)
    assert not device.is_locked("admin")
    assert running.daemon.sessions[0].state == "online"
    assert not unpaired_episodes(running), "a health start without its stop"


def test_never_the_last_try(sdk: Library, start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(nvr("strict", lock_after=3))
    events = Collector()
    config = device_config(sim, password="not-the-password", auth_retry_s=0.3)
    session = DeviceSession(sdk, config, events)
    session.start()
    try:
        assert wait_for(lambda: len(events.matching("health", "auth_failed")) >= 2)
        time.sleep(1.5)  # room for the retry storm of the old code (one per 0.3 s)
        refusals = events.matching("health", "auth_failed")
        assert [e.attributes["retries_left"] for e in refusals] == [2, 1]
        last = refusals[-1].attributes
        assert last["next_try_s"] is None
        assert "restart hikd" in last["what_to_do"]
        assert sim.devices[0].bad_tries("admin") == 2
        assert not sim.devices[0].is_locked("admin")
    finally:
        session.close()
        session.join(2)


def test_a_locked_user_is_not_tried_before_the_unlock_time(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(nvr("locked", lock_after=1, lock_seconds=5))
    device = sim.devices[0]
    bad = DeviceSession(sdk, device_config(sim, password="wrong"), Collector())
    with pytest.raises(AuthError):
        bad.login_once()
    assert device.is_locked("admin")
    device.clear_requests()

    events = Collector()
    session = DeviceSession(sdk, device_config(sim, auth_retry_s=0.2), events)
    session.start()
    try:
        assert wait_for(lambda: session.state == "online", timeout=20)
        refusal = events.matching("health", "auth_failed")[0].attributes
        assert refusal["code"] == 153
        assert 1 <= refusal["unlock_in_s"] <= 5  # what was left of the lock (whole seconds)
        assert refusal["unlock_at"]
        # One refused try, then one after the unlock time: not one every 0.2 s.
        assert device.count(LOGIN, "POST") == 2
    finally:
        session.close()
        session.join(2)


def test_next_try_follows_what_the_device_says() -> None:
    wait = next_try("cam", 1, LoginFailureDetails(retries_left=4, lock_seconds=None), 60)
    assert (wait.wait_s, wait.retries_left) == (60, 4)
    last = next_try("cam", 1, LoginFailureDetails(retries_left=1, lock_seconds=None), 60)
    assert last.wait_s is None
    locked = next_try("cam", 153, LoginFailureDetails(retries_left=0, lock_seconds=1800), 60)
    assert locked.wait_s == 1801 and locked.unlock_at is not None
    # A device that says nothing about tries (bySupportLock 0): the configured wait.
    silent = next_try("cam", 1, LoginFailureDetails(retries_left=None, lock_seconds=None), 60)
    assert silent.wait_s == 60
