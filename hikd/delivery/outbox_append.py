"""Storing events in a state directory's outbox from another process than the daemon.

``hikd jobs --run`` (and, later, the device-host processes of architecture.md) produce
events while ``hikd run`` owns the outbox: the daemon holds its lock file, keeps counts in
memory and gives its own rows their sequence numbers. Other processes append rows of their
own rather than spool files the daemon would have to collect: SQLite in WAL mode lets
several processes write one database (one writer at a time, each waiting its turn), so an
event is stored for good the moment its transaction commits, whether or not the daemon
runs. The row takes the next number (``AUTOINCREMENT``); the daemon notices new rows
(``PRAGMA data_version``, `Outbox.refresh`, within half a second) and delivers them like
its own, in the order stored. A daemon started later finds them at its start.

An appender declares the configured sinks: a sink the outbox has never seen gets a cursor
before these events, so a first ``hikd run`` still delivers them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from hikd.delivery.outbox_db import (
    OUTBOX_FILE,
    OutboxUnwritable,
    append_rows_sql,
    open_database,
    rows_per_insert,
)
from hikd.events import Event


class OutboxAppender:
    """Appends events to the outbox of `state_dir`; safe beside a running daemon."""

    def __init__(
        self,
        state_dir: Path,
        sinks: Iterable[str],
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        """`on_commit` is called after each batch is stored for good (to wake the daemon's
        delivery at once: `EventBus.others_stored`)."""
        self.path = Path(state_dir) / OUTBOX_FILE
        self._on_commit = on_commit
        self.stored = 0
        """Events this appender stored."""
        self._conn = open_database(self.path)
        self._rows = rows_per_insert(self._conn)
        try:
            # Another process may be in a long write: wait for it rather than fail.
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._write(
                "INSERT OR IGNORE INTO cursors (sink, seq) VALUES (?, coalesce("
                "(SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))",
                [(name,) for name in dict.fromkeys(sinks)],
            )
        except BaseException:
            self._conn.close()
            raise

    def append(self, events: Sequence[Event]) -> None:
        """Store `events`, in order, in one transaction; `OutboxUnwritable` if that failed
        (nothing of them is stored then)."""
        if not events:
            return
        bodies = [e.to_json_bytes() for e in events]
        if len(bodies) <= self._rows:
            # One INSERT of every row is a transaction of its own and steps SQLite once
            # (executemany stepped it per row, and released the GIL each time).
            try:
                self._conn.execute(append_rows_sql(len(bodies)), bodies)
            except sqlite3.Error as e:
                raise OutboxUnwritable(
                    f"cannot store events in the outbox {self.path}: {e}"
                ) from None
        else:
            self._write("INSERT INTO events (body) VALUES (?)", [(b,) for b in bodies])
        self.stored += len(events)
        if self._on_commit is not None:
            self._on_commit()

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise OutboxUnwritable(f"cannot store events in the outbox {self.path}: {e}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> OutboxAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
