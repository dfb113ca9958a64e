"""A device a reload removes leaves Home Assistant at the reload itself, unless a device the
same reload adds is at its address (it may be the same device, renamed): then once that one
has said who it is or that it cannot log in, whichever of its events and the reload's the
sink gets first. The MQTT sink against a real mosquitto, fed the events hikd stores."""

from __future__ import annotations

import pytest

from hikd.delivery.outbox import HIKD
from hikd.events import DeviceRef, health
from hikd.sinks.mqtt.sink import MqttSink
from tests.mosquitto import Mosquitto, retained
from tests.sinks.mqtt.test_ha_broker import (  # noqa: F401 - broker, sink are fixtures
    NVR,
    SERIAL,
    broker,
    configs,
    nvr_online,
    sink,
)


def announced_for_the_recorder(broker: Mosquitto) -> list[str]:  # noqa: F811
    return [t for t in configs(retained(broker, "homeassistant/#")) if SERIAL in t]


def test_no_added_device_at_its_address_and_it_leaves_at_the_reload(
    broker: Mosquitto,  # noqa: F811
    sink: MqttSink,  # noqa: F811
) -> None:
    sink.open()
    assert sink.send([nvr_online()]) == 1
    assert announced_for_the_recorder(broker)
    reload = health(
        HIKD,
        "reload",
        ok=True,
        removed={"nvr": "removed"},
        added=["garage"],
        added_at={"garage": "192.0.2.99:80"},  # it never logs in: nothing else comes
    )
    assert sink.send([reload]) == 1
    assert announced_for_the_recorder(broker) == []
    assert retained(broker, "hikd/nvr/#") == {}


@pytest.mark.parametrize("first", ["the refused login", "the reload"])
def test_an_added_device_at_its_address_is_waited_for_until_its_login_is_refused(
    first: str,
    broker: Mosquitto,  # noqa: F811
    sink: MqttSink,  # noqa: F811
) -> None:
    """The device host tries the added device's login before the supervisor's reload event
    is stored, so its ``auth_failed`` may reach the sink first."""
    sink.open()
    assert sink.send([nvr_online()]) == 1
    reload = health(
        HIKD,
        "reload",
        ok=True,
        removed={"nvr": "removed"},
        added=["recorder"],
        added_at={"recorder": NVR.address},
    )
    refused = health(DeviceRef("recorder", "", NVR.address), "auth_failed", code=1)
    if first == "the reload":
        assert sink.send([reload]) == 1
        assert announced_for_the_recorder(broker)  # it may be the recorder, renamed
        assert sink.send([refused]) == 1
    else:
        assert sink.send([refused]) == 1
        assert sink.send([reload]) == 1
    assert announced_for_the_recorder(broker) == []
    assert retained(broker, "hikd/nvr/#") == {}
