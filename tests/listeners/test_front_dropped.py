"""A relayed request the vendor library takes without a word (no alarm, no error, no `200`):
the listen front's matching of the host's reports to its requests stays exact, and the push
it answered `200` is not lost. `hikd run` with the real library and hikd.sim."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hikd.addresses import AddressSet
from hikd.events import Event
from hikd.listeners import front as front_module
from hikd.listeners.alarm_state import AlarmStateTracker
from hikd.listeners.front import ListenFront
from hikd.listeners.listen import LibraryListen
from hikd.listeners.pipeline import AlarmPipeline, DeviceDirectory
from hikd.listeners.senders import SenderMap
from hikd.listeners.vet import LIBRARY_MAX_BODY
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator, hostile
from hikd.sim.alerts import SimAlert
from tests.listeners.test_front import DEVICE, PASSWORD, Hikd, events, write_config
from tests.listeners.test_front import run_hikd as run_hikd  # the fixture
from tests.support import free_port, wait_for

ALERT = (
    b"<EventNotificationAlert><channelID>1</channelID><eventType>VMD</eventType>"
    b"<eventState>active</eventState></EventNotificationAlert>"
)
# Passes the front (an XML alarm part, then a JSON one); the library's answer is an error
# (0x7fff, "The JSON message contains errors in format") and a reset, no `200`.
UNREADABLE = hostile.multipart([("application/xml", ALERT), ("application/json", b'{"a": 1}')])


def test_a_push_the_library_cannot_read_is_tried_three_times_and_reported_once(
    tmp_path: Path, start_sim: Callable[..., Simulator], run_hikd: Callable[[Path], Hikd]
) -> None:
    """The front sees the missing `200` and the device host the error: the push is relayed
    again once per try all the same, and every later push is stored and forgotten."""
    sim = start_sim(SimDeviceConfig(name="pusher", password=PASSWORD, ip_channels=4))
    device = sim.devices[0]
    port, state = free_port(), tmp_path / "state"
    hikd = run_hikd(write_config(tmp_path, device.port, port, 'allowed = ["127.0.0.1"]\n'))
    assert hostile.send(DEVICE, port, UNREADABLE, source=DEVICE).status == 200
    for channel in (2, 3, 4):
        assert device.push_to(DEVICE, port, SimAlert(type="VMD", channel=channel)).status == 200

    def of_type(kind: str) -> list[dict[str, Any]]:
        return [e for e in events(state) if e["type"] == kind]

    def motion_starts() -> list[int]:
        return sorted(e["channel"] for e in of_type("motion") if e["state"] == "start")

    assert wait_for(lambda: of_type("malformed_alarm") != [], timeout=30), hikd.output()[-3000:]
    (unread,) = of_type("malformed_alarm")
    assert unread["attributes"]["sender"] == DEVICE and unread["attributes"]["tries"] == 3
    assert base64.b64decode(unread["raw"]["payload"]).startswith(b"--hikd-")
    assert wait_for(lambda: motion_starts() == [2, 3, 4], timeout=30), motion_starts()
    assert hikd.stop() == 0, hikd.output()[-3000:]
    counts = of_type("listen_counts")[-1]["attributes"]
    assert (counts["kept"], counts["accepted"]) == (0, 4), counts
    assert counts["refused"] == {"the vendor library could not read it 3 times": 1}, counts


def test_a_request_the_library_drops_unanswered_leaves_the_next_ones_matched_exactly(
    sdk: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library resets a body of 64 MiB or more without a word: no alarm, no error, no
    `200` (sdk-over-isapi.md part 1 §4). The front refuses such a push now (413, test_vet),
    so it is relayed here as the front did before, then three alarms. Counted, each alarm
    was taken for the request before it (a push marked stored when it was not, the last one
    kept for ever); by their relay addresses each is known exactly, and the dropped one is
    reported (one try here: its 64 MiB sent once)."""
    monkeypatch.setattr(front_module, "MAX_TRIES", 1)
    published: list[Event] = []
    heard: list[int] = []
    senders = SenderMap()
    pipeline = AlarmPipeline(
        DeviceDirectory(), AlarmStateTracker({"default": 600}), published.append, senders
    )
    pipeline.heard = lambda _alias, number: heard.append(number)
    library = LibraryListen(sdk, pipeline, 0)
    pipeline.start()
    library.start()
    front = ListenFront(
        "127.0.0.1", free_port(), library.library_port, AddressSet(["127.0.0.1"]), senders,
        published.append,
    )  # fmt: skip
    front.start()
    try:
        assert front._loop is not None
        big = b"<EventNotificationAlert>" + b" " * LIBRARY_MAX_BODY + b"</EventNotificationAlert>"
        relayed = asyncio.run_coroutine_threadsafe(
            front._relay(DEVICE, "/", "application/xml", big), front._loop
        )
        assert relayed.result(timeout=60) == 200  # what the device was answered
        del big, relayed
        for channel in (2, 3, 4):
            alert = ALERT.replace(b"<channelID>1<", b"<channelID>%d<" % channel)
            assert hostile.send(DEVICE, front.port, hostile.post(alert)).status == 200
        assert wait_for(lambda: len(heard) == 3, timeout=30), heard
        assert heard == [2, 3, 4]
        starts = [e.channel for e in published if e.kind == "alarm" and e.state == "start"]
        assert starts == [2, 3, 4]
        (unread,) = [e for e in published if e.type == "malformed_alarm"]
        assert unread.attributes["sender"] == DEVICE
        assert unread.attributes["size"] > LIBRARY_MAX_BODY
    finally:
        front.stop()
        library.stop()
        pipeline.stop()
