"""A device's host given as a name: the vendor library refuses names (error 17), hikd
resolves them before each login. The real library against hikd.sim."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hikd.devices.session import DeviceSession
from hikd.sdk.errors import SdkError
from hikd.sdk.library import Library
from hikd.sdk.login import device_address
from hikd.sim import SimDeviceConfig, Simulator
from tests.support import Collector, device_config


def test_a_device_known_by_its_host_name_logs_in(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(SimDeviceConfig(name="named"))
    session = DeviceSession(sdk, device_config(sim, host="localhost"), Collector())
    try:
        facts = session.login_once()
        assert facts.serial == sim.devices[0].config.serial_number
        assert session.state == "online"
    finally:
        session.close()


def test_a_name_that_does_not_resolve_says_so() -> None:
    assert device_address("192.0.2.7") == "192.0.2.7"
    assert device_address("localhost") == "127.0.0.1"
    with pytest.raises(SdkError) as caught:
        device_address("no-such-nvr.invalid")
    assert caught.value.code == 7
    assert "host name 'no-such-nvr.invalid' does not resolve" in str(caught.value)
