"""The stand-in library has hikd's struct layouts, and behaves like a private login."""

from __future__ import annotations

import pytest

from hikd.devices.session import DeviceSession
from hikd.sdk._cdef import STRUCTS
from hikd.sdk.ffi import ffi
from tests.standin import SERIAL, StandIn

pytest_plugins = ["tests.standin.fixtures"]


@pytest.mark.standin
def test_every_struct_has_the_size_hikd_declares(standin: StandIn) -> None:
    """The header is generated from hikd's cffi declarations; compiled by gcc, each struct
    must have exactly cffi's size, so stand-in tests exercise the real layouts."""
    mismatched = {
        name: (ffi.sizeof(name), standin.sizeof(name))
        for name in STRUCTS
        if ffi.sizeof(name) != standin.sizeof(name)
    }
    assert mismatched == {}
    assert standin.sizeof("NET_DVR_WORKSTATE_V40") == 490_264  # sdk-over-isapi.md part 2 c


@pytest.mark.standin
def test_a_private_login_through_the_standin(
    standin: StandIn, standin_session: DeviceSession
) -> None:
    """The real library cannot log in over the private protocol here (nothing to talk
    to): the stand-in answers like a DVR would."""
    facts = standin_session.facts
    assert facts is not None
    assert facts.protocol == "private"
    assert facts.serial == SERIAL
    # Private-protocol numbering: analog 1-4, IP channels from byStartDChan 33.
    assert facts.channels == [1, 2, 3, 4, 33, 34]
    assert standin.get("logins") == 1
    assert standin_session.check_online()
    standin.set(online=0)
    assert not standin_session.check_online()
    assert standin_session.state == "offline"
