"""The outbox's WAL is copied back into its database file on a thread of the supervisor's own.

By default SQLite does that copy (a "checkpoint") inside the commit that takes the WAL past
1,000 pages, on the committing thread: a device host's alarm decoder, or a sink's worker
writing its cursor. That commit then waits for the copy and two fsyncs; at 1,000 alarms/s
that is about once a second, and on a busy disk it took 5-90 ms, for every alarm queued
behind it (bench/README.md, "Where an alarm waits").

Here the connections that write the outbox leave checkpoints to SQLite only past
`BACKSTOP_PAGES` (`outbox_db.open_database`), and the supervisor's `WalCheckpointer` runs
them instead: every `EVERY_S` a PASSIVE checkpoint, which copies what it can and never
waits for a writer or a reader. While writers keep committing, such a checkpoint never
catches up with the end of the WAL, and SQLite starts the WAL from its beginning again only
after one has: so once the WAL is past `RESTART_PAGES`, a RESTART checkpoint waits (at most
`BUSY_MS`) for the writer of the moment, copies the little the last PASSIVE one left, and
the next commit starts the WAL from its beginning. The WAL stays within a few MB.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from hikd.delivery.outbox_db import open_database
from hikd.logs import get_logger

log = get_logger(__name__)

EVERY_S = 0.25
"""How often the WAL is copied into the database file."""

RESTART_PAGES = 4096
"""WAL pages (4 kB each) past which the WAL is started from its beginning again."""

BUSY_MS = 100
"""How long a RESTART checkpoint waits for the writer and the readers of the moment (it
holds up other writers meanwhile); past it, it is tried again at the next turn."""


class WalCheckpointer:
    def __init__(self, path: Path, every_s: float = EVERY_S, restart_pages: int = RESTART_PAGES):
        self.path = path
        self.every_s = every_s
        self.restart_pages = restart_pages
        self.turns = 0
        """Checkpoints tried."""
        self.restarts = 0
        """RESTART checkpoints that completed."""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="hikd-outbox-checkpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the checkpoint under way (a daemon thread: left behind after
        `timeout`; the database is consistent whenever a checkpoint stops)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            conn = open_database(self.path)
        except Exception as exc:  # the outbox's own opening says what to do about it
            log.warning("outbox: WAL checkpoints left to SQLite", error=str(exc))
            return
        failing = False
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            while not self._stop.wait(self.every_s):
                try:
                    self._checkpoint(conn)
                except sqlite3.Error as exc:
                    # Not the user's to act on: a full disk is said by the bus (the outbox
                    # cannot be written), and commits checkpoint past the backstop meanwhile.
                    if not failing:
                        log.info("outbox: WAL checkpoint failed; retrying", error=str(exc))
                    failing = True
                else:
                    failing = False
                self.turns += 1
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        _, pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if pages >= self.restart_pages:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if not busy:
                self.restarts += 1
