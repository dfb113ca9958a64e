"""What backfill (`hikd.listeners.backfill`) knows of each device it watches, and the record
it keeps of it in the state database: until when the device was heard, with its last live
alarms, its clock's offset and skew. The next start of its device host reads the record
back (the time hikd was down is a gap), and so does a reload that adds the device; a reload
that removes it deletes it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from itertools import islice, takewhile
from typing import TYPE_CHECKING, Any

from hikd.listeners.log_alarms import Live

if TYPE_CHECKING:
    from hikd.config import DeviceConfig
    from hikd.state import StateStore

JOB = "backfill"
"""Its name in the state database."""
_LIVE_KEPT = 200_000
_RECENT_KEPT = 20_000


@dataclass(slots=True)
class Gap:
    start: datetime
    end: datetime
    due: float
    tries: int = 0


@dataclass(slots=True)
class Watched:
    config: DeviceConfig
    deaf_since: datetime | None = None
    hearing: bool = False
    offset: tzinfo | None = None
    """The UTC offset of the device's last live alarm (its log is in that wall clock)."""
    live: deque[Live] = field(default_factory=lambda: deque(maxlen=_LIVE_KEPT))
    """(match class, channel or input, device time as POSIX seconds, re-sent) per live alarm."""
    gaps: list[Gap] = field(default_factory=list)
    unavailable: bool = False
    skew_s: float = 0.0
    """How far hikd's clock is ahead of the device's (its last live alarm's received time
    minus its device time; includes up to a second of the device time's resolution)."""


def heard_key(name: str) -> str:
    return f"{name}/heard_until"


def recall(state: StateStore, name: str, device: Watched) -> None:
    """What the record of `name` says, into `device` (nothing without a record)."""
    saved = state.get(JOB, heard_key(name))
    if saved:
        # hikd was down (or the device host restarted) since it last heard the device.
        device.deaf_since = datetime.fromisoformat(saved["time"])
        if saved.get("offset_s") is not None:
            device.offset = timezone(timedelta(seconds=float(saved["offset_s"])))
        device.skew_s = float(saved.get("skew_s", 0.0))
        for kind, where, at, resent in saved.get("recent", []):
            device.live.append((kind, where, float(at), bool(resent)))


def heard_record(device: Watched, when: datetime, tolerance_s: float) -> dict[str, Any]:
    """The record of `device` heard until `when` (called with the lock its live alarms are
    appended under)."""
    offset = device.offset.utcoffset(None) if device.offset is not None else None
    # The last live alarms go with it: the log has whole seconds, so the next window
    # begins with the second of the last alarms heard, and they must not come back.
    since = when.timestamp() - device.skew_s - tolerance_s - 2
    newest = takewhile(lambda e: e[2] >= since, reversed(device.live))  # arrival order
    recent = [list(e) for e in islice(newest, _RECENT_KEPT)][::-1]
    value: dict[str, Any] = {"time": when.isoformat(), "recent": recent}
    if offset is not None:
        value["offset_s"] = offset.total_seconds()
    value["skew_s"] = device.skew_s
    return value
