"""The watch: an internal consumer of the outbox that feeds the board.

It is a sink like the others as far as the outbox is concerned (its own cursor, its own
worker, woken after every commit, also of events other processes stored), so the board
sees every stored event once, whoever stored it, and a row is kept until the board has
seen it. Its name cannot be a configured sink's by accident, and the metrics and
`hikd status` leave it out of the sinks they list.

After counting a batch it acknowledges it only once its newest event was received
`HOLD_S` ago, so a row stays in the outbox about that long after it was stored: ``hikd
events tail`` reads the outbox from another process and must see each row before it is
deleted (the other sinks may acknowledge within a millisecond). A batch that is older (the
watch is catching up after a burst) is acknowledged at once, so the watch never falls
behind; while events trickle in, its acknowledgement (an outbox write) comes once every
`HOLD_S` rather than once per stored batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel

from hikd.events import Event
from hikd.observe.board import EventBoard

WATCH_SINK = "hikd:watch"
"""The watch's name in the outbox's cursors."""

HOLD_S = 1.0
"""How long a stored row stays for readers of the outbox (ten looks of `events tail`)."""


class _NoConfig(BaseModel):
    pass


class WatchSink:
    """Counts what is stored into the board; never fails."""

    Config: ClassVar[type[BaseModel]] = _NoConfig

    def __init__(self, board: EventBoard, hold_s: float = HOLD_S) -> None:
        self.board = board
        self.hold_s = hold_s
        self._closing = threading.Event()

    def open(self) -> None:
        pass

    def send(self, batch: Sequence[Event]) -> int:
        self.board.observe_all(batch)
        if batch:
            age = time.time() - batch[-1].received.timestamp()
            if age < self.hold_s:
                self._closing.wait(self.hold_s - max(0.0, age))
        return len(batch)

    def closing(self) -> None:
        """hikd stops: acknowledge at once from now on."""
        self._closing.set()

    def close(self) -> None:
        pass
