"""The library's exception codes become health events (seed 5.2.12).

The real library raises 0x8006/0x8016/0x8040/0x8041 in tests/test_alarms.py (a killed
simulator); 0x8022/0x8023 (alarms the library itself dropped) cannot be provoked against the
simulator, so these feed the router the integers the callback would hand it.
"""

from __future__ import annotations

from hikd.config import DeviceConfig
from hikd.events import Event
from hikd.listeners.sdk_exceptions import SdkExceptionRouter
from hikd.sdk.library import Library
from hikd.session import DeviceSession


def test_lost_alarms_are_counted_and_reconnects_are_one_episode(sdk: Library) -> None:
    config = DeviceConfig(name="nvr", host="127.0.0.1", port=8000, password="x")
    session = DeviceSession(sdk, config, lambda _e: None)
    session.user_id = 3
    events: list[Event] = []
    router = SdkExceptionRouter(lambda: [session], events.append)

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
