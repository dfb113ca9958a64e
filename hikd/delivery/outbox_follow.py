"""Following the outbox from another process, read-only: what ``hikd events tail`` shows.

The daemon stores every event in ``<state_dir>/outbox.sqlite`` (SQLite, WAL) and deletes a
row once every sink and the daemon's own watch have acknowledged it. The watch keeps each
row for `hikd.observe.watch.HOLD_S` after it is stored, so a follower that looks several
times within that (``PRAGMA data_version`` says when anything was committed) sees every
event; one that was held up longer (a stopped terminal) is told how many it missed.
Sequence numbers are contiguous (rows are only appended at the end), which is how a gap
shows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hikd.delivery.outbox import OUTBOX_FILE
from hikd.errors import UserError

_BATCH = 1000


class OutboxFollower:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / OUTBOX_FILE
        if not self.path.is_file():
            raise UserError(
                f"no outbox at {self.path}: has hikd run with this state directory? "
                "(check [daemon] state_dir, and --config)"
            )
        try:
            self._conn = sqlite3.connect(
                f"{self.path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
            self._conn.execute("PRAGMA busy_timeout=5000")
            self.last = self._newest()
        except sqlite3.Error as e:
            raise UserError(
                f"cannot read the outbox {self.path} ({e}); run this as the user hikd runs as"
            ) from None
        self._version: int | None = None
        self.missed = 0
        """Events stored and deleted before this follower could read them."""

    def _newest(self) -> int:
        row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def poll(self) -> list[tuple[int, str]]:
        """The rows committed since the last call, as (seq, event JSON), in order and at
        most a thousand at a time; [] when nothing changed."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return []
        self._conn.execute("BEGIN")  # one snapshot for both reads
        try:
            rows = self._conn.execute(
                "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (self.last, _BATCH),
            ).fetchall()
            newest = self._newest()
        finally:
            self._conn.execute("COMMIT")
        if len(rows) < _BATCH:
            self._version = version  # everything committed up to this version is read
        first = int(rows[0][0]) if rows else newest + 1
        if first > self.last + 1:  # stored and deleted before this follower looked
            self.missed += first - self.last - 1
        self.last = int(rows[-1][0]) if rows else max(self.last, newest)
        return [(int(seq), _text(body)) for seq, body in rows]

    def close(self) -> None:
        self._conn.close()


def _text(body: bytes | str) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
