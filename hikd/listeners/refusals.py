"""Refused pushes (and pushes not relayed yet), told without flooding (README "The listen
front"): each refusal is counted per sender and reason; a sender gets at most one log line
and one ``listen_refused`` health event a minute, and at most `MAX_REPORTS` such lines a
minute go out in all (a sender may have many addresses), the rest summed up under
``sender = "others"``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog

from hikd.delivery.outbox import HIKD
from hikd.events import Event, health

log = structlog.get_logger("hikd.listen")

REPORT_EVERY_S = 60.0
"""A refused sender is logged (and a health event published) at most this often."""
MAX_TRACKED = 4096
MAX_REPORTS = 20


class Refusals:
    """The refusals of one listen port; used from the front's event loop only."""

    def __init__(self, port: int, publish: Callable[[Event], None], counters: Counter[str]):
        self.port = port
        self._publish = publish
        self.counters = counters
        self.by_sender: Counter[str] = Counter()
        self.dropped: set[str] = set()
        """Senders cut off as not allowed (up to `MAX_TRACKED`)."""
        self._unreported: dict[str, Counter[str]] = {}
        self._suppressed: Counter[str] = Counter()
        self._last_report: dict[str, float] = {}
        self._minute_start = 0.0
        self._reports = 0
        self._warned: dict[str, float] = {}

    def warn(self, message: str, **fields: Any) -> None:
        """Log `message` at most once a minute (while a host restarts or its library port is
        gone, every push and every try would be a line of its own)."""
        now = time.monotonic()
        if now - self._warned.get(message, -REPORT_EVERY_S) >= REPORT_EVERY_S:
            self._warned[message] = now
            log.warning(message, port=self.port, **fields)

    def refused(self, sender: str, reason: str) -> None:
        """Count a refusal; log it (and publish health) at most once a minute per sender, and
        at most `MAX_REPORTS` lines a minute in all (a sender may have many addresses)."""
        self.counters["refused"] += 1
        self.counters[f"refused: {reason}"] += 1
        if reason == "not allowed" and len(self.dropped) < MAX_TRACKED:
            self.dropped.add(sender)
        if sender in self.by_sender or len(self.by_sender) < MAX_TRACKED:
            self.by_sender[sender] += 1
        if sender in self._unreported or len(self._unreported) < MAX_TRACKED:
            self._unreported.setdefault(sender, Counter())[reason] += 1
        else:
            self._suppressed[reason] += 1
        now = time.monotonic()
        last = self._last_report.get(sender)
        if last is None or now - last >= REPORT_EVERY_S:
            self._report(sender, now)

    def _report(self, sender: str, now: float) -> None:
        if now - self._minute_start >= REPORT_EVERY_S:
            self._minute_start, self._reports = now, 0
        if self._reports >= MAX_REPORTS:
            return  # stays pending: the next flush or refusal reports it
        self._reports += 1
        self._last_report[sender] = now
        reasons = self._unreported.pop(sender, Counter())
        self._emit(sender, reasons, self.by_sender[sender])

    def flush(self) -> None:
        """Every minute: what was refused since the last lines, so no count stays unsaid."""
        now = time.monotonic()
        for sender, when in list(self._last_report.items()):
            if now - when >= REPORT_EVERY_S and sender not in self._unreported:
                del self._last_report[sender]  # quiet for a minute: forgotten
        for sender in list(self._unreported):
            if now - self._last_report.get(sender, -REPORT_EVERY_S) >= REPORT_EVERY_S:
                self._report(sender, now)
        if self._suppressed:
            others, self._suppressed = self._suppressed, Counter()
            self._emit("others", others, sum(others.values()))

    def _emit(self, sender: str, reasons: Counter[str], total: int) -> None:
        count = sum(reasons.values())
        if not count:
            return
        reason = reasons.most_common(1)[0][0]
        hint = (
            "add it to listen.allowed (or to a device's allowed_addresses) if it is a device"
            if reason == "not allowed"
            else "see README: The listen front, for the limits and their settings"
        )
        log.warning(
            "pushed alarm refused",
            sender=sender,
            port=self.port,
            reason=reason,
            count=count,
            total=total,
            hint=hint,
        )
        self._publish(
            health(
                HIKD,
                "listen_refused",
                sender=sender,
                port=self.port,
                reason=reason,
                reasons=dict(reasons),
                count=count,
                total=total,
            )
        )
