"""The rows other processes store in the outbox: how the daemon's `Outbox` counts them in.

Device hosts (and ``hikd jobs --run``) append through `hikd.delivery.outbox_append`, after the
last row, with their own connection. The daemon learns of them when a device host says it
committed (its wake-up: the first sink to read then finds and decodes the rows, `Outbox.read`)
or by looking (`refresh`, the bus's periodic look). ``PRAGMA data_version`` changes when
another connection commits, so a look that finds nothing costs one statement; a read after a
host's wake-up skips even that (``told``): the host has just committed.
"""

from __future__ import annotations

import sqlite3
import threading

from hikd.delivery.outbox_db import decode_row
from hikd.delivery.outbox_recent import RecentEvents


class OthersRows:
    """The part of `hikd.delivery.outbox.Outbox` that counts other processes' rows in."""

    _lock: threading.Lock
    _data_version: int
    """``PRAGMA data_version`` when every row committed up to it was counted in."""
    _refreshed_upto: int
    _last_seq: int
    _count: int
    _bytes: int
    _recent: RecentEvents

    def _require(self) -> sqlite3.Connection:
        raise NotImplementedError

    def refresh(self) -> bool:
        """Count the events another process appended (`hikd.delivery.outbox_append`) since this
        one last looked; True if rows were stored since the last call (by another process,
        and found here or by a sink's `read`, or by this one). Cheap: one pragma when
        nothing changed."""
        with self._lock:
            conn = self._require()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._data_version = version
                self._sync_locked()
            new = self._last_seq > self._refreshed_upto
            self._refreshed_upto = self._last_seq
            return new

    def _read_others_locked(self, conn: sqlite3.Connection, limit: int, told: bool) -> bool:
        """Read up to `limit` rows after the newest one this process knows of, count them
        in and keep them decoded (the other sinks woken by the same commit take them from
        memory); False if there were none. Without `told` (that a process has just
        committed), only when ``data_version`` says something was committed since the last
        look; with it, the pragma is left for the next look, which finds nothing more."""
        version = None if told else conn.execute("PRAGMA data_version").fetchone()[0]
        if version is not None and version == self._data_version:
            return False
        rows = conn.execute(
            "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (self._last_seq, limit),
        ).fetchall()
        if len(rows) < limit and version is not None:
            # Every row committed up to `version` is read (and counted below); a row
            # committed since makes a new version, found at the next look.
            self._data_version = version
        if not rows:
            return False
        # Appended after this process's rows, so they follow them without a gap.
        first = self._last_seq + 1
        self._last_seq = int(rows[-1][0])
        self._count += len(rows)
        self._bytes += sum(len(body) for _, body in rows)
        if len(rows) == limit:
            self._sync_locked()  # and the rows after these
        if int(rows[0][0]) == first and int(rows[-1][0]) - first + 1 == len(rows):
            self._recent.keep(first, [decode_row(seq, body) for seq, body in rows])
        return True

    def _sync_locked(self) -> bool:
        # Appended after this process's rows, so they follow them without a gap. One
        # statement: one look per wake-up, and no rows counted that came after its max.
        query = "SELECT count(*), coalesce(sum(length(body)), 0), max(seq) FROM events"
        count, nbytes, newest = (
            self._require().execute(query + " WHERE seq > ?", (self._last_seq,)).fetchone()
        )
        if not count:
            return False
        self._last_seq = int(newest)
        self._count += int(count)
        self._bytes += int(nbytes)
        return True
