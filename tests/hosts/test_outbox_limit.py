"""The outbox's size limit holds for events device hosts store: they append through an
`OutboxAppender`, which does not know the limit; the supervisor's bus applies it when it
finds their rows (it did not before: the outbox grew past `max_events` while a sink was
down and only hosts stored events)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import Outbox
from hikd.delivery.outbox_append import OutboxAppender
from hikd.events import DeviceRef, Event
from tests.support import wait_for


def motion(n: int) -> Event:
    return Event(kind="alarm", type="motion", state="pulse", device=DeviceRef("cam"), channel=n)


class DownSink:
    """A receiver that is down for the whole test: nothing is acknowledged, all waits."""

    Config: ClassVar[type[BaseModel]] = BaseModel

    def open(self) -> None:
        raise ConnectionError("down")

    def send(self, batch: Sequence[Event]) -> int:
        raise ConnectionError("down")

    def close(self) -> None:
        pass


def test_rows_of_other_processes_are_held_to_the_limit(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", max_events=1000)
    reported: list[Event] = []
    bus = EventBus(outbox, [("mqtt", DownSink())], on_health=reported.append)
    bus.start()
    try:
        with OutboxAppender(tmp_path, ["mqtt"], on_commit=bus.others_stored) as host:
            for start in range(0, 1500, 100):
                host.append([motion(n) for n in range(start, start + 100)])

        def overflows() -> list[Event]:
            return [e for e in reported if e.type == "outbox_overflow"]

        def reported_drops() -> int:
            return sum(e.attributes["dropped"]["mqtt"] for e in overflows())

        # 1,500 stored by the "host", at most 1,000 kept: the rest dropped and reported.
        assert wait_for(lambda: reported_drops() >= 500, timeout=10), (reported, outbox.stats())
        assert outbox.stats().events <= 1000
        assert outbox.stats().dropped >= reported_drops()
        # The supervisor's own events (sink_unavailable) found the hosts' rows in the way
        # and went after them, without an outbox_unwritable episode.
        assert not [e for e in reported if e.type == "outbox_unwritable"], reported
        assert outbox.pending("mqtt") == outbox.stats().events
    finally:
        bus.stop()
        outbox.close()
