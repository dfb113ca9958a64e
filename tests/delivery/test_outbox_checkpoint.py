"""The outbox's WAL is checkpointed by the supervisor's own thread, not inside a commit."""

from __future__ import annotations

import time
from pathlib import Path

from hikd.delivery.outbox_checkpoint import WalCheckpointer
from hikd.delivery.outbox_db import OUTBOX_FILE, open_database

PAGE = 4096
ROW = b"x" * (4 * PAGE)  # five WAL pages a commit, with the table's own


def _wal_pages(path: Path) -> int:
    """Pages in the WAL now (a PASSIVE checkpoint says, and copies what it can)."""
    conn = open_database(path)
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def test_a_commit_does_not_checkpoint_the_wal_itself(tmp_path: Path) -> None:
    path = tmp_path / OUTBOX_FILE
    conn = open_database(path)
    try:
        for _ in range(300):  # ~1,500 pages: SQLite's own default checkpoints at 1,000
            conn.execute("INSERT INTO events (body) VALUES (?)", (ROW,))
        assert _wal_pages(path) >= 1400
    finally:
        conn.close()  # the last connection to close checkpoints


def test_the_checkpointer_keeps_the_wal_small_while_a_writer_commits(tmp_path: Path) -> None:
    path = tmp_path / OUTBOX_FILE
    writer = open_database(path)
    checkpointer = WalCheckpointer(path, every_s=0.001, restart_pages=100)
    checkpointer.start()
    wal = path.with_name(OUTBOX_FILE + "-wal")
    largest = 0
    try:
        for batch in range(20):  # ~5,000 pages in all
            for _ in range(50):
                writer.execute("INSERT INTO events (body) VALUES (?)", (ROW,))
            # Whatever the machine's load: the checkpointer gets a turn between batches.
            turns = checkpointer.turns
            deadline = time.monotonic() + 60
            while checkpointer.turns < turns + 2 and time.monotonic() < deadline:
                time.sleep(0.001)
            assert checkpointer.turns >= turns + 2, f"no checkpoint after batch {batch}"
            largest = max(largest, wal.stat().st_size)
    finally:
        checkpointer.stop()
        writer.close()
    assert checkpointer.restarts >= 1
    assert largest < 1000 * PAGE  # never near the 5,000 pages written
