"""What a listen front has done, in the user's words (README "The listen front"): for
`hikd status` (and ``--json``), the metrics, and a ``listen_counts`` health event at most once
a minute while the numbers change.

All counts are since hikd started: ``accepted`` (pushes answered 200), ``refused`` (per
reason), ``dropped_senders`` (addresses cut off as not allowed), ``resent`` (pushes relayed
again to a device host after the one before ended, or read back after a restart, their
events marked ``resent``), ``read_back`` (pushes read back from the spool at the start);
and now: ``kept`` (pushes answered and not stored by a device host yet) and ``kept_bytes``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from hikd.delivery.outbox import HIKD
from hikd.events import Event, health
from hikd.listeners.relayed import KeptRequests

REFUSED = "refused: "
"""Prefix of the per-reason refusal counters (`hikd.listeners.refusals`)."""


def front_stats(
    port: int, counters: Counter[str], dropped_senders: int, kept: KeptRequests | None
) -> dict[str, Any]:
    """One front's numbers (any thread: a dict copy is one step under the GIL)."""
    counts = dict(counters)
    return {
        "port": port,
        "accepted": counts.get("accepted", 0),
        "refused": {k[len(REFUSED) :]: v for k, v in counts.items() if k.startswith(REFUSED)},
        "dropped_senders": dropped_senders,
        "kept": 0 if kept is None else kept.count,
        "kept_bytes": 0 if kept is None else kept.bytes,
        "resent": counts.get("resent", 0),
        "read_back": counts.get("kept from the run before", 0),
    }


class CountsReport:
    """The ``listen_counts`` health event: at most once a minute, when something changed."""

    def __init__(self, publish: Callable[[Event], None]) -> None:
        self._publish = publish
        self._last: dict[str, Any] | None = None

    def report(self, stats: dict[str, Any]) -> None:
        if stats == self._last or (self._last is None and not _any(stats)):
            return
        self._last = stats
        self._publish(health(HIKD, "listen_counts", **stats))


def _any(stats: dict[str, Any]) -> bool:
    return any(v for k, v in stats.items() if k != "port")
