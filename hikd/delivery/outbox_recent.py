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
    outbox calls it under its own lock.

    Forgetting only moves a start index (deleting the front of a long list moves all the
    rest, per acknowledgement); the list is cut once the forgotten part is half of it."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._skip = 0  # forgotten, still at the front of `_events`
        self.first = 0
        """The seq of the oldest remembered event."""

    def __len__(self) -> int:
        return len(self._events) - self._skip

    def _restart(self, first: int, events: list[Event]) -> None:
        self._events, self._skip, self.first = events, 0, first

    def add(self, first: int, stored: list[Event], cut: int) -> None:
        """`stored` got the numbers `first`, `first + 1`, ...; rows up to `cut` were
        dropped (the size limit) and must not be served."""
        if len(self) and self.first + len(self) == first:
            self._events.extend(stored)
        else:
            self._restart(first, list(stored))
        self.forget(max(cut - self.first + 1, len(self) - MOST))

    def keep(self, start: int, read: list[Event]) -> None:
        """`read` are rows `start`, `start + 1`, ... just read from the database: remember
        them if they follow what is remembered (or nothing is)."""
        if not len(self):
            self._restart(start, [])
        if self.first + len(self) == start:
            self._events.extend(read)
            self.forget(len(self) - MOST)

    def forget_upto(self, seq: int) -> None:
        """Forget the events up to and including `seq` (every sink has them)."""
        self.forget(seq - self.first + 1)

    def forget(self, n: int) -> None:
        """Forget the `n` oldest."""
        if n > 0:
            n = min(n, len(self))
            self._skip += n
            self.first += n
            if self._skip * 2 >= len(self._events):
                del self._events[: self._skip]
                self._skip = 0

    def clear(self) -> None:
        self._restart(self.first, [])

    def read(self, start: int, limit: int) -> list[tuple[int, Event]] | None:
        """Up to `limit` events from `start` on as (seq, event); None if `start` is not
        remembered."""
        if not self.first <= start < self.first + len(self):
            return None
        i = self._skip + start - self.first
        return list(enumerate(self._events[i : i + limit], start))

    def stored_bytes(self, start: int, upto: int) -> int | None:
        """The bytes rows `start`..`upto` take stored, when all of them are remembered."""
        if start < self.first or upto >= self.first + len(self):
            return None
        i = self._skip + start - self.first
        return sum(len(e.to_json_bytes()) for e in self._events[i : i + upto - start + 1])
