"""Delivery latency per sink: from hikd receiving an event to the sink acknowledging it.

Counted by the sink's own worker thread after each acknowledgement, into plain lists: one
writer, no lock. A reader (the metrics endpoint) takes a copy; a copy taken while a batch
is being counted may miss part of that batch, never more.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from hikd.events import Event

BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
             60.0, 300.0)  # fmt: skip
"""Upper bounds in seconds: a millisecond on a quiet machine up to a broker outage."""


@dataclass(frozen=True, slots=True)
class LatencySnapshot:
    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    """Events per bucket (not cumulative); one more than `bounds`: the last is +Inf."""
    total_s: float
    last_delivery: float | None
    """Wall-clock time (epoch seconds) of the last acknowledgement; None before it."""


class LatencyHistogram:
    def __init__(self, bounds: tuple[float, ...] = BUCKETS_S) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._total_s = 0.0
        self._last: float | None = None

    def delivered(self, events: Iterable[Event], at: float | None = None) -> None:
        """`events` were acknowledged now (or `at`, epoch seconds)."""
        now = time.time() if at is None else at
        bounds, counts = self._bounds, self._counts
        total = 0.0
        for event in events:
            latency = max(0.0, now - event.received.timestamp())
            counts[bisect_left(bounds, latency)] += 1
            total += latency
        self._total_s += total
        self._last = now

    def snapshot(self) -> LatencySnapshot:
        return LatencySnapshot(self._bounds, tuple(self._counts), self._total_s, self._last)
