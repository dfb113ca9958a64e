"""The status document `hikd status` shows: devices, sinks, jobs, device hosts and listen
ports, now."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hikd import __version__
from hikd.delivery.latency import LatencySnapshot
from hikd.observe.board import EventBoard
from hikd.observe.watch import WATCH_SINK

Rows = Callable[[], list[Any]]
"""Rows of a part the board does not see (jobs, device hosts): dataclasses or dicts."""


class StatusReport:
    def __init__(
        self,
        board: EventBoard,
        delivery: Callable[[], dict[str, Any]],
        jobs: Rows | None = None,
        hosts: Callable[[], list[Any] | None] | None = None,
        listen: Rows | None = None,
    ) -> None:
        """`hosts` returns None while the devices run in the daemon's own process; `listen`:
        the listen fronts' numbers, a row per port."""
        self.board = board
        self.delivery = delivery
        self.jobs = jobs
        self.hosts = hosts
        self.listen = listen
        self.started = time.time()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """What the control socket answers (`hikd.observe.control`)."""
        if request.get("get", "status") != "status":
            return {"error": f"unknown request {request.get('get')!r}; ask for status"}
        return self.document()

    def document(self) -> dict[str, Any]:
        now = time.time()
        stats = self.delivery()
        return {
            "version": __version__,
            "pid": os.getpid(),
            "started": _iso(self.started),
            "uptime_s": round(now - self.started, 1),
            "devices": self.board.device_list(),
            "sinks": [
                _sink(name, s, now) for name, s in stats["sinks"].items() if name != WATCH_SINK
            ],
            "outbox": stats["outbox"],
            "jobs": [_row(r) for r in self.jobs()] if self.jobs is not None else [],
            "hosts": self._hosts(),
            "listen": [_row(r) for r in self.listen()] if self.listen is not None else [],
        }

    def _hosts(self) -> list[Any] | None:
        rows = self.hosts() if self.hosts is not None else None
        return None if rows is None else [_row(r) for r in rows]


def _sink(name: str, s: dict[str, Any], now: float) -> dict[str, Any]:
    latency: LatencySnapshot = s["latency"]
    oldest = s["oldest_pending"]
    return {
        "name": name,
        "up": s["up"],
        "state": s["state"],
        "backlog": s["pending"],
        "oldest_pending_age_s": None if oldest is None else round(max(0.0, now - oldest), 1),
        "last_delivery": None if latency.last_delivery is None else _iso(latency.last_delivery),
        "delivered": s["delivered"],
        "failures": s["failures"],
        "last_error": s["last_error"],
    }


def _row(row: Any) -> Any:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    return row


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
