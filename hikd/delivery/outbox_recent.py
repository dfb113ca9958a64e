"""The events an outbox keeps in memory after storing them, until every sink has them.

A sink that keeps up (or catches up after a burst) reads them from here without reading
and decoding rows again; a sink further behind reads from the database. Events other
processes stored (`OutboxAppender`) come here once the first sink has read them, so the
other sinks do not decode them again.
"""

from __future__ import annotations

from hikd.events import Event

MOST = 16384
"""Events remembered at most (~2.5 kB each); past it, the oldest are forgotten."""


class RecentEvents:
    """Events with contiguous sequence numbers from `first` on. Not thread-safe: the
    outbox calls it under its own lock."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.first = 0

    def add(self, first: int, stored: list[Event], cut: int) -> None:
        """`stored` got the numbers `first`, `first + 1`, ...; rows up to `cut` were
        dropped (the size limit) and must not be served."""
        if self.events and self.first + len(self.events) == first:
            self.events.extend(stored)
        else:
            self.events = list(stored)
            self.first = first
        self.forget(max(cut - self.first + 1, len(self.events) - MOST))

    def keep(self, start: int, read: list[Event]) -> None:
        """`read` are rows `start`, `start + 1`, ... just read from the database: remember
        them if they follow what is remembered (or nothing is)."""
        if not self.events:
            self.first = start
        if self.first + len(self.events) == start:
            self.events.extend(read)
            self.forget(len(self.events) - MOST)

    def forget_upto(self, seq: int) -> None:
        """Forget the events up to and including `seq` (every sink has them)."""
        self.forget(seq - self.first + 1)

    def forget(self, n: int) -> None:
        """Forget the `n` oldest."""
        if n > 0:
            n = min(n, len(self.events))
            del self.events[:n]
            self.first += n

    def clear(self) -> None:
        self.events = []

    def read(self, start: int, limit: int) -> list[tuple[int, Event]] | None:
        """Up to `limit` events from `start` on as (seq, event); None if `start` is not
        remembered."""
        if not self.first <= start < self.first + len(self.events):
            return None
        i = start - self.first
        return list(enumerate(self.events[i : i + limit], start))

    def stored_bytes(self, start: int, upto: int) -> int | None:
        """The bytes rows `start`..`upto` take stored, when all of them are remembered."""
        i = start - self.first
        if i < 0 or upto >= self.first + len(self.events):
            return None
        return sum(len(e.to_json_bytes()) for e in self.events[i : upto - self.first + 1])
