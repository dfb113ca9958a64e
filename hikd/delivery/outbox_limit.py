"""The outbox's size limit: when it is reached, the oldest rows go first, down to 99 % of
the limit (so that a full outbox drops in chunks rather than on every write), and a health
event (``outbox_overflow``) stored in their place says how many each sink lost."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from hikd.delivery.outbox_db import HIKD, insert_rows
from hikd.events import Event, health
from hikd.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SizeLimit:
    max_events: int
    max_bytes: int

    def exceeded(self, count: int, nbytes: int) -> bool:
        return count > self.max_events or nbytes > self.max_bytes

    def overflow_event(self, per_sink: dict[str, int], total: int, reason: str) -> Event:
        return health(
            HIKD,
            "outbox_overflow",
            dropped=per_sink,
            total=total,
            reason=reason,
            max_events=self.max_events,
            max_bytes=self.max_bytes,
        )

    def drop_oldest(
        self,
        conn: sqlite3.Connection,
        cursors: dict[str, int],
        last: int,
        count: int,
        nbytes: int,
    ) -> tuple[int, int, Event, int]:
        """Delete the oldest rows so that the rest plus one health event fit in 99 %.

        Returns (last dropped seq, how many dropped, the overflow event, bytes left).
        """
        first_present = last - count + 1
        keep_events = max(1, self.max_events - max(1, self.max_events // 100)) - 1
        keep_bytes = self.max_bytes - max(1, self.max_bytes // 100)
        # Room for the overflow event itself: its size with the widest possible counts.
        widest = self.overflow_event(dict.fromkeys(cursors, 10**15), 10**15, "max_bytes")
        keep_bytes -= len(widest.to_json_bytes())
        reason = "max_events" if count > self.max_events else "max_bytes"
        cut = max(first_present - 1, last - keep_events)
        (cut_size,) = conn.execute(
            "SELECT coalesce(sum(length(body)), 0) FROM events WHERE seq <= ?", (cut,)
        ).fetchone()
        left = nbytes - int(cut_size)
        while left > keep_bytes:
            rows = conn.execute(
                "SELECT seq, length(body) FROM events WHERE seq > ? ORDER BY seq LIMIT 4096",
                (cut,),
            ).fetchall()
            if not rows:
                break
            for seq, size in rows:
                if left <= keep_bytes:
                    break
                cut = seq
                left -= size
        dropped = cut - first_present + 1
        per_sink = {s: max(0, cut - max(c, first_present - 1)) for s, c in cursors.items()}
        conn.execute("DELETE FROM events WHERE seq <= ?", (cut,))
        log.warning(
            "outbox: size limit reached, dropped the oldest events; "
            "a sink is falling behind or the limit is too small",
            limit=reason,
            dropped=dropped,
            undelivered_per_sink=per_sink,
        )
        return cut, dropped, self.overflow_event(per_sink, dropped, reason), left


def append_in_transaction(
    conn: sqlite3.Connection,
    limit: SizeLimit,
    cursors: dict[str, int],
    bodies: list[bytes],
    stored: list[Event],
    at: tuple[int, int, int],
    most: int,
) -> tuple[int, int, int, int, dict[str, int], int]:
    """`Outbox.append` when rows must also be deleted: nobody to deliver to, or the size
    limit is reached (the overflow event is added to `stored`). `at` is (the first seq of
    `bodies`, rows and bytes stored with them); `most` rows go in one INSERT. Returns (last
    dropped seq, how many dropped, rows and bytes after, cursors after, last seq)."""
    first, count, nbytes = at
    last = first + len(bodies) - 1
    cut = dropped = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        insert_rows(conn, first, bodies, most)
        if not cursors:
            # Nobody to deliver to: the rows are acknowledged by every sink.
            conn.execute("DELETE FROM events WHERE seq <= ?", (last,))
            count, nbytes = 0, 0
        elif limit.exceeded(count, nbytes):
            cut, dropped, overflow, nbytes = limit.drop_oldest(conn, cursors, last, count, nbytes)
            count -= dropped
            body = overflow.to_json_bytes()
            last += 1
            conn.execute("INSERT INTO events (seq, body) VALUES (?, ?)", (last, body))
            conn.execute("UPDATE cursors SET seq = ? WHERE seq < ?", (cut, cut))
            cursors = {s: max(c, cut) for s, c in cursors.items()}
            count += 1
            nbytes += len(body)
            stored.append(overflow)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT may have rolled back already
            conn.execute("ROLLBACK")
        raise
    return cut, dropped, count, nbytes, cursors, last
