"""The simulator's event set-up documents, read and written through the real library."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hikd.doctor.xml_edit import add_center
from hikd.sdk.errors import SdkError
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.linkage_config import EventSetup
from tests.support import device_config, logged_in

REBUILT = (
    b"<EventTriggerNotificationList><EventTriggerNotification><id>center</id>"
    b"<notificationMethod>center</notificationMethod></EventTriggerNotification>"
    b"</EventTriggerNotificationList>"
)
"""What a client that rebuilds the linkage from what it understood sends: the device's
``record`` entry and its ``dynVideoInputID`` are gone."""


def test_a_rebuilt_document_is_refused_and_an_edited_one_accepted(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(
        SimDeviceConfig(name="nvr", ip_channels=2, events=EventSetup(notify_center=False))
    )
    device = sim.devices[0]
    with logged_in(sdk, device_config(sim)) as session:
        url = "/ISAPI/Event/triggers/VMD-2/notifications"
        with pytest.raises(SdkError):
            session.isapi("PUT", url, REBUILT)
        assert not device.linkage.notifies_center("VMD-2")
        own = session.isapi("GET", url).body
        assert b"<dynVideoInputID>2</dynVideoInputID>" in own
        edited = add_center(own)
        assert edited is not None
        session.isapi("PUT", url, edited[0])
        assert device.linkage.notifies_center("VMD-2")
        assert b"dynVideoInputID" in session.isapi("GET", url).body


def test_without_strict_writes_a_rebuilt_document_is_taken(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    events = EventSetup(notify_center=False, strict_writes=False)
    sim = start_sim(SimDeviceConfig(name="cam", events=events))
    with logged_in(sdk, device_config(sim)) as session:
        session.isapi("PUT", "/ISAPI/Event/triggers/VMD-1/notifications", REBUILT)
        assert sim.devices[0].linkage.notifies_center("VMD-1")


def test_the_event_setup_changes_at_run_time_over_the_control_endpoint(
    start_sim: Callable[..., Simulator],
) -> None:
    import json
    import urllib.request

    sim = start_sim(SimDeviceConfig(name="cam", alarm_inputs=1))
    device = sim.devices[0]
    body = json.dumps({"events": {"notify_center": False, "clock_offset_s": 600}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{device.port}/hikd-sim/set", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert json.load(reply)["applied"] == ["events"]
    assert not device.linkage.notifies_center("VMD-1")
    assert not device.linkage.notifies_center("IO-1")
    assert device.config.events.clock_offset_s == 600
    device.linkage.set_up(notify_center=True)
    assert device.linkage.notifies_center("IO-1")


def test_the_device_sends_only_what_its_linkage_and_schedule_let_out(
    start_sim: Callable[..., Simulator],
) -> None:
    from tests.support import free_port

    sim = start_sim(SimDeviceConfig(name="cam", alarm_inputs=1))
    device = sim.devices[0]
    device.add_push_target("127.0.0.1", free_port())  # nothing listens: only counted
    assert device.trigger("VMD", channel=1).pushes == 1
    device.linkage.set_notify_center("VMD-1", False)
    assert device.trigger("VMD", channel=1).pushes == 0
    assert device.trigger("IO", channel=1).pushes == 1
    device.linkage.set_up(notify_center=True, schedule="empty")
    assert device.trigger("VMD", channel=1).pushes == 0  # no arming time
    assert device.trigger("IO", channel=1).pushes == 1  # not a detection with that schedule
    assert device.trigger("someNewEvent", channel=1).pushes == 1  # no trigger: always sent
    # The device's own log has every one of them.
    assert device.sent[-1].type == "someNewEvent"
