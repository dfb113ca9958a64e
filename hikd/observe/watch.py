"""The watch: an internal consumer of the outbox that feeds the board.

It is a sink like the others as far as the outbox is concerned (its own cursor, its own
worker, woken after every commit, also of events other processes stored), so the board
sees every stored event once, whoever stored it, and a row is kept until the board has
seen it. Its name cannot be a configured sink's by accident, and the metrics and
`hikd status` leave it out of the sinks they list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel

from hikd.events import Event
from hikd.observe.board import EventBoard

WATCH_SINK = "hikd:watch"
"""The watch's name in the outbox's cursors."""


class _NoConfig(BaseModel):
    pass


class WatchSink:
    """Counts what is stored into the board; never fails, never blocks."""

    Config: ClassVar[type[BaseModel]] = _NoConfig

    def __init__(self, board: EventBoard) -> None:
        self.board = board

    def open(self) -> None:
        pass

    def send(self, batch: Sequence[Event]) -> int:
        self.board.observe_all(batch)
        return len(batch)

    def close(self) -> None:
        pass
