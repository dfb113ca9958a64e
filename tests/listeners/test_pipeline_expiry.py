"""The decoder thread ends each alarm when its hold runs out, not at the next pass over all
open alarms (that pass came every 0.25 s, and its burst of stops held up the alarms queued
behind it: bench/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from hikd.events import DeviceRef, Event
from hikd.listeners.alarm_state import AlarmStateTracker
from hikd.listeners.pipeline import AlarmPipeline, DeviceDirectory
from tests.support import Collector, wait_for


def test_an_alarm_ends_when_its_hold_runs_out_with_no_message_after_it() -> None:
    tracker = AlarmStateTracker({"default": 0.05})
    published = Collector()
    # A pass over all open alarms an hour apart: only the alarm's own hold can end it.
    pipeline = AlarmPipeline(DeviceDirectory(), tracker, published, expire_every_s=3600)
    start = Event(
        kind="alarm",
        type="motion",
        state="start",
        device=DeviceRef("cam"),
        channel=1,
        time=datetime(2024, 3, 10, tzinfo=UTC),
    )

    def decoded() -> None:  # what the decoder does with a message (one needs the library)
        for event in tracker.feed(start):
            published(event)

    pipeline.start()
    try:
        pipeline.on_decoder(decoded)
        assert wait_for(lambda: len(published.events) == 2, timeout=30), published.events
        stop = published.events[1]
        assert (stop.state, stop.attributes["ended_by"]) == ("stop", "hold_timeout")
    finally:
        pipeline.stop()
