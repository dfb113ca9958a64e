"""Device sessions with the real vendor library against hikd.sim over ISAPI."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from hikd.devices.session import DeviceSession
from hikd.sdk.errors import AuthError, SdkError
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, SimDisk, Simulator
from tests.support import Collector, device_config, free_port, logged_in, wait_for


def test_login_reports_the_facts_the_device_serves(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(
        SimDeviceConfig(
            name="nvr1",
            serial_number="DS-7608NI-K20820240101CCRRJ12345678",
            device_type="NVR",
            analog_channels=2,
            ip_channels=6,
            alarm_inputs=3,
            alarm_outputs=2,
            disks=[SimDisk(id=1), SimDisk(id=2)],
        )
    )
    events = Collector()
    session = DeviceSession(sdk, device_config(sim), events)
    try:
        facts = session.login_once()
        assert facts.serial == "DS-7608NI-K20820240101CCRRJ12345678"
        assert facts.protocol == "isapi"
        assert (facts.analog_channels, facts.start_channel) == (2, 1)
        # Over ISAPI the library numbers IP channels right after the analog ones
        # (byStartDChan = analog + 1; 1 on a pure NVR, never the private protocol's 33).
        assert (facts.ip_channels, facts.start_ip_channel) == (6, 3)
        assert facts.channels == [1, 2, 3, 4, 5, 6, 7, 8]
        assert (facts.alarm_inputs, facts.alarm_outputs, facts.disks) == (3, 2, 2)
        assert session.model == sim.devices[0].config.model
        assert session.state == "online"
        online = [e for e in events.events if e.type == "online"]
        assert online and online[0].device.serial == facts.serial
        assert online[0].attributes["ip_channels"] == 6
    finally:
        session.close()
    assert sim.devices[0].count("/ISAPI/Security/sessionLogout") == 1


def test_wrong_password_stops_before_the_device_locks_the_account(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(SimDeviceConfig(name="cam", lock_after=5))
    events = Collector()
    config = device_config(sim, password="not-the-password", auth_retry_s=3600)
    session = DeviceSession(sdk, config, events)
    session.start()
    try:
        assert wait_for(lambda: session.state == "auth_failed")
        # Give a retry storm time to happen, if there were one.
        time.sleep(1.5)
        assert sim.devices[0].bad_tries("admin") == 1
        assert not sim.devices[0].is_locked("admin")
        failures = [e for e in events.events if e.type == "auth_failed"]
        assert len(failures) == 1
        assert failures[0].attributes["code"] == 1
        # The device said how many tries are left before it locks the user.
        assert failures[0].attributes["retries_left"] == 4
    finally:
        session.close()
        session.join(2)


def test_locked_user_is_an_auth_error_with_code_153(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(SimDeviceConfig(name="locked", lock_after=2))
    bad = DeviceSession(sdk, device_config(sim, password="wrong-one"), Collector())
    for _ in range(2):
        with pytest.raises(AuthError):
            bad.login_once()
    assert sim.devices[0].is_locked("admin")
    good = DeviceSession(sdk, device_config(sim), Collector())
    with pytest.raises(AuthError) as info:
        good.login_once()
    assert info.value.code == 153


def test_unreachable_device_backs_off_then_connects_when_it_comes_up(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    port = free_port()
    probe = start_sim(SimDeviceConfig(name="late", port=port))
    config = device_config(probe, reconnect_min_s=0.2, reconnect_max_s=0.4)
    probe.stop()  # the device is down when hikd starts
    events = Collector()
    session = DeviceSession(sdk, config, events)
    session.start()
    try:
        assert wait_for(lambda: "offline" in events.types())
        assert session.state == "offline"
        offline = next(e for e in events.events if e.type == "offline")
        assert offline.attributes["code"] == 7  # NET_DVR_NETWORK_FAIL_CONNECT
        sim = start_sim(SimDeviceConfig(name="late", port=port))
        assert wait_for(lambda: session.state == "online", timeout=20)
        assert sim.devices[0].logins("admin") >= 1
        # One offline event per outage, not one per retry.
        assert events.types().count("offline") == 1
    finally:
        session.close()
        session.join(2)


def test_adaptive_login_falls_back_to_isapi(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(SimDeviceConfig(name="adaptive"))
    session = DeviceSession(sdk, device_config(sim, login_mode="adaptive"), Collector())
    try:
        facts = session.login_once()
        assert facts.protocol == "isapi"
    finally:
        session.close()


def test_https_login(sdk: Library, start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(SimDeviceConfig(name="tls", https=True))
    session = DeviceSession(sdk, device_config(sim, https=True), Collector())
    try:
        facts = session.login_once()
        assert facts.serial == sim.devices[0].config.serial_number
    finally:
        session.close()


def test_session_id_check_login(sdk: Library, start_sim: Callable[..., Simulator]) -> None:
    """sessionIDVersion 2: the library verifies the HMAC sessionID and needs a Set-Cookie."""
    sim = start_sim(SimDeviceConfig(name="sid", session_id_version="2"))
    with logged_in(sdk, device_config(sim), Collector()) as session:
        assert session.isapi("GET", "/ISAPI/System/deviceInfo").body.startswith(b"<?xml")


def test_isapi_passthrough_and_the_404_error(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(SimDeviceConfig(name="pass"))
    with logged_in(sdk, device_config(sim), Collector()) as session:
        reply = session.isapi("GET", "/ISAPI/System/deviceInfo")
        assert sim.devices[0].config.serial_number.encode() in reply.body
        with pytest.raises(SdkError) as info:
            session.isapi("GET", "/ISAPI/No/Such/Thing")
        assert info.value.code == 23


def test_check_online_notices_a_dead_device_and_its_return(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    port = free_port()
    sim = start_sim(SimDeviceConfig(name="flaky", port=port))
    events = Collector()
    with logged_in(sdk, device_config(sim), events) as session:
        sim.stop()
        assert session.check_online() is False
        assert session.state == "offline"
        # A restarted device has forgotten the session: the library re-logs in by itself.
        start_sim(SimDeviceConfig(name="flaky", port=port))
        assert wait_for(session.check_online, timeout=10)
        assert events.types() == ["online", "offline", "online"]
