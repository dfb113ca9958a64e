"""The outbox's SQLite database: its file, its schema, opening it, and the statements both
writers of it share (`hikd.delivery.outbox.Outbox` in the daemon, `OutboxAppender` in other
processes).

One table of events (``seq``, the JSON ``body``) and one of cursors (the last ``seq`` each
sink acknowledged). WAL mode, so that one process writes while others read, and several
processes write in turn.

``synchronous`` is the SQLite durability knob, chosen per installation:

* ``NORMAL`` (default): in WAL mode a commit survives the *process* dying at any point
  (crash, SIGKILL, OOM killer); a power cut or kernel panic may lose the last few
  transactions (the WAL is only fsynced at checkpoints). Costs no fsync per commit.
* ``FULL``: the WAL is fsynced on every commit, so a commit also survives a power cut.
  Costs one fsync per batch written and per acknowledgement.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sqlite3
from pathlib import Path
from typing import Literal

from hikd.errors import UserError
from hikd.events import DeviceRef, Event
from hikd.logs import get_logger
from hikd.sqlite_setup import set_up_when_unlocked

log = get_logger(__name__)

Synchronous = Literal["NORMAL", "FULL"]

HIKD = DeviceRef(name="hikd")
"""The device of events about hikd itself (outbox overflow, sink state)."""

OUTBOX_FILE = "outbox.sqlite"
"""The outbox's file name under the state directory."""

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    sink TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"""


BACKSTOP_PAGES = 16384
"""WAL pages (64 MB) past which a commit checkpoints the WAL itself (SQLite's default: 1,000):
the supervisor's `WalCheckpointer` keeps it far smaller while it runs."""


class OutboxClosed(RuntimeError):
    """The outbox was closed (the daemon is stopping)."""


class OutboxUnwritable(RuntimeError):
    """The outbox cannot be written now (its file system is full, an I/O error, ...).

    Raised by `ack`: the cursor is kept in memory and written with the next `ack` that
    succeeds, so delivered events are not sent again meanwhile (after a crash they are)."""


def open_database(path: Path, synchronous: Synchronous = "NORMAL") -> sqlite3.Connection:
    """Open (and create) the outbox database at `path`: WAL, the schema, autocommit.
    `UserError` when it cannot be used."""
    try:
        return set_up_when_unlocked(lambda: _open_database(path, synchronous))
    except sqlite3.DatabaseError as e:
        raise UserError(
            f"outbox {path} cannot be used ({e}); check the state directory, "
            "or move the file away (its undelivered events are then lost)"
        ) from None


def _open_database(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        # Keep the WAL file from staying large after a burst.
        conn.execute("PRAGMA journal_size_limit=67108864")
        # The supervisor checkpoints the WAL on a thread of its own (outbox_checkpoint.py):
        # a commit copies it back only when that has not run for long.
        conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        conn.execute("PRAGMA busy_timeout=5000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(
                f"outbox {path} was written by a newer hikd (schema {version}); "
                "upgrade hikd or move the file away"
            )
        if version < SCHEMA_VERSION:  # no write when there is nothing to do
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


def lock_outbox(path: Path) -> int:
    """Take the lock that makes `path` this process's outbox; its descriptor (close it to
    let go). `UserError` when another hikd process holds it."""
    # A separate lock file: closing any descriptor of the database file itself would
    # release SQLite's own POSIX locks on it (see SQLite "How To Corrupt", 2.2.1).
    lock_path = f"{path}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise UserError(
            f"outbox: cannot open {lock_path}: {e.strerror}; "
            "check that the state directory exists and is writable"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"outbox {path} is in use by another hikd process; "
            "stop it or give this one another state directory"
        ) from None
    return fd


def write_cursors(conn: sqlite3.Connection, cursors: dict[str, int], upto: int | None) -> None:
    """In one transaction: set the sinks' `cursors`, delete the rows up to `upto` (none when
    None). On failure the transaction is left for the caller to roll back."""
    if any("\0" in s for s in cursors):  # cannot be written as an SQL literal
        conn.execute("BEGIN IMMEDIATE")
        for s, c in cursors.items():
            conn.execute("UPDATE cursors SET seq = ? WHERE sink = ?", (c, s))
        if upto is not None:
            conn.execute("DELETE FROM events WHERE seq <= ?", (upto,))
        conn.execute("COMMIT")
        return
    # One script: executescript releases the GIL once per statement, execute() four times,
    # and each time the sink's thread waits up to the switch interval to get it back from
    # a busy thread. Only integers and the quoted sink names go into the text.
    statements = [
        "BEGIN IMMEDIATE",
        *(
            f"UPDATE cursors SET seq = {int(c)} WHERE sink = {sql_string(s)}"
            for s, c in cursors.items()
        ),
        f"DELETE FROM events WHERE seq <= {int(upto)}" if upto is not None else "",
        "COMMIT",
    ]
    conn.executescript(";\n".join(filter(None, statements)) + ";")


def rows_per_insert(conn: sqlite3.Connection) -> int:
    """Rows one INSERT of `insert_rows` takes at most on this SQLite (two parameters each)."""
    return max(1, min(MAX_INSERT_ROWS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 2))


def stored_rows(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
    """(the last seq ever given, rows stored, their bytes, the first stored seq or 0)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    count, nbytes, first = conn.execute(
        "SELECT count(*), coalesce(sum(length(body)), 0), min(seq) FROM events"
    ).fetchone()
    return int(row[0]) if row else 0, int(count), int(nbytes), int(first or 0)


def sql_string(text: str) -> str:
    """`text` as an SQLite string literal (SQLite has no backslash escapes)."""
    return "'" + text.replace("'", "''") + "'"


def insert_rows(conn: sqlite3.Connection, first: int, bodies: list[bytes], most: int) -> None:
    """Insert `bodies` as rows `first`, `first + 1`, ...

    One INSERT of many rows rather than ``executemany``: that steps SQLite once per row
    and releases the GIL each time, and a thread taking the GIL back from a busy decoder
    thread waits up to the switch interval (5 ms) for it, so a batch took seconds.
    """
    for start in range(0, len(bodies), most):
        chunk = bodies[start : start + most]
        seqs = range(first + start, first + start + len(chunk))
        params = [v for row in zip(seqs, chunk, strict=True) for v in row]
        conn.execute(_insert_sql(len(chunk)), params)


MAX_INSERT_ROWS = 4096
"""Rows per INSERT at most (the bus stores up to 2000 events at a time); fewer where
SQLite allows fewer parameters per statement."""


@functools.lru_cache(maxsize=64)
def append_rows_sql(rows: int) -> str:
    """One INSERT of `rows` bodies, numbered by SQLite in their order (another process's
    append: the daemon's `Outbox` numbers its own rows)."""
    return "INSERT INTO events (body) VALUES " + ",".join(["(?)"] * rows)


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    return "INSERT INTO events (seq, body) VALUES " + ",".join(["(?, ?)"] * rows)


def decode_row(seq: int, body: bytes) -> Event:
    try:
        # The row is what `to_json_bytes()` wrote: the event keeps it, so sinks send it as is.
        return Event.from_stored_json(body)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # A row this hikd cannot read must not wedge delivery, nor vanish silently.
        log.error(
            "outbox: a stored event cannot be decoded; delivering it as "
            "an outbox_corrupt_event health event",
            seq=seq,
            error=str(e),
        )
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return Event(
            kind="health",
            type="outbox_corrupt_event",
            state="pulse",
            device=HIKD,
            attributes={"seq": seq, "error": str(e)},
            raw={"body": text},
        )
