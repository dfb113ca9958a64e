"""The watch counts every stored event once, keeps rows briefly for `events tail`, and never
falls behind a burst (a real outbox and bus; the board is the watch's own)."""

from __future__ import annotations

from pathlib import Path

from hikd.delivery.outbox import Outbox
from hikd.observe.board import EventBoard
from hikd.observe.watch import WATCH_SINK, WatchSink
from tests.delivery.test_bus import Recorder, alarm, new_bus
from tests.support import wait_for

BURST = 20_000


def test_a_burst_is_counted_at_the_pace_it_is_stored(tmp_path: Path) -> None:
    """A burst far larger than a batch: were the watch to wait its hold after every batch
    (500 events), this would take 40 holds; it waits only for batches younger than that."""
    board = EventBoard()
    watch = WatchSink(board, hold_s=1.0)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    quick = Recorder()
    bus = new_bus(outbox, [("quick", quick), (WATCH_SINK, watch)])
    bus.start()
    try:
        for i in range(BURST):
            bus.publish(alarm(i))
        assert wait_for(lambda: board.events.get(("alarm", "motion"), 0) == BURST, 20.0)
        assert wait_for(lambda: outbox.pending(WATCH_SINK) == 0, 10.0)
        assert len(quick.events) == BURST
    finally:
        watch.closing()
        bus.stop(timeout=5)
        outbox.close()
    assert board.events == {("alarm", "motion"): BURST}  # each once
