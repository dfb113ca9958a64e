"""The durable outbox: every event is stored here before any sink sees it.

One SQLite database in WAL mode (``state_dir/outbox.sqlite``). Events get a sequence
number (``seq``) in the order they are stored; every sink has its own persisted cursor
(the last ``seq`` it acknowledged). A sink reads what lies after its cursor and
acknowledges what it delivered, so after a crash or a restart every unacknowledged event
is sent again, in order, per sink (at-least-once; consumers de-duplicate on ``event.id``).

Rows acknowledged by every configured sink are deleted. When the outbox reaches its size
limit (events or bytes), the oldest rows go first, down to 99 % of the limit so that a
full outbox drops in chunks rather than on every write, and a health event
(``type="outbox_overflow"``) stored in their place says how many each sink lost.

``synchronous`` is the SQLite durability knob, chosen per installation:

* ``NORMAL`` (default): in WAL mode a commit survives the *process* dying at any point
  (crash, SIGKILL, OOM killer); a power cut or kernel panic may lose the last few
  transactions (the WAL is only fsynced at checkpoints). Costs no fsync per commit.
* ``FULL``: the WAL is fsynced on every commit, so a commit also survives a power cut.
  Costs one fsync per batch written and per acknowledgement.

Sequence numbers stay contiguous: rows are only ever appended at the end and deleted
from the front, which lets counts and backlogs be computed without a query.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hikd.errors import UserError
from hikd.events import DeviceRef, Event, health
from hikd.logs import get_logger

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

# Events kept in memory after they are stored, until every sink has acknowledged them,
# so that a sink keeping up (or catching up after a burst) reads them without decoding
# JSON again; a sink further behind reads from the database. ~2.5 kB each.
_RECENT = 16384


class OutboxClosed(RuntimeError):
    """The outbox was closed (the daemon is stopping)."""


class OutboxUnwritable(RuntimeError):
    """The outbox cannot be written now (its file system is full, an I/O error, ...).

    Raised by `ack`: the cursor is kept in memory and written with the next `ack` that
    succeeds, so delivered events are not sent again meanwhile (after a crash they are)."""


@dataclass(frozen=True, slots=True)
class OutboxStats:
    events: int
    """Rows stored now."""
    bytes: int
    """Bytes of event JSON stored now."""
    dropped: int
    """Events dropped by the size limit since this outbox was opened."""


class Outbox:
    """Thread-safe: the bus's writer appends while each sink's worker reads and acks."""

    def __init__(
        self,
        path: Path,
        max_events: int = 1_000_000,
        max_bytes: int = 1 << 30,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError("max_events and max_bytes must be positive")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._lock_fd = self._take_file_lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._connect(synchronous)
            self._insert_rows = max(
                1,
                min(
                    _MAX_INSERT_ROWS,
                    self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 2,
                ),
            )
            self._load_state()
            self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        except BaseException:
            if self._conn is not None:
                self._conn.close()
            os.close(self._lock_fd)
            raise
        self._dropped = 0
        self._unpersisted: set[str] = set()  # sinks whose cursor `ack` could not write
        self._recent: list[Event] = []
        self._recent_first = 0

    # -- opening -----------------------------------------------------------------------

    def _take_file_lock(self) -> int:
        # A separate lock file: closing any descriptor of the database file itself would
        # release SQLite's own POSIX locks on it (see SQLite "How To Corrupt", 2.2.1).
        lock_path = f"{self.path}.lock"
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
                f"outbox {self.path} is in use by another hikd process; "
                "stop it or give this one another state directory"
            ) from None
        return fd

    def _connect(self, synchronous: Synchronous) -> sqlite3.Connection:
        return open_database(self.path, synchronous)

    def _load_state(self) -> None:
        conn = self._require()
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        last = int(row[0]) if row else 0
        self._cursors: dict[str, int] = dict(conn.execute("SELECT sink, seq FROM cursors"))
        # No cursor may point past the end (a hand-edited file); new rows must come after.
        self._last_seq = max([last, *self._cursors.values()])
        count, nbytes, first = conn.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0), min(seq) FROM events"
        ).fetchone()
        self._count = int(count)
        self._bytes = int(nbytes)
        self._gaps = bool(count and int(first) != self._last_seq - self._count + 1)
        if self._gaps:
            # Rows are only deleted from the front, so a gap means outside editing;
            # counting backlogs from seq numbers would then be wrong.
            log.warning(
                "outbox: sequence numbers have gaps; backlog counts are approximate",
                file=str(self.path),
            )

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxClosed(f"outbox {self.path} is closed")
        return self._conn

    # -- sinks and cursors -------------------------------------------------------------

    def set_sinks(self, names: Iterable[str]) -> None:
        """Declare the configured sinks; call once at start, before appending.

        A sink seen for the first time starts with the events stored from now on. A sink
        no longer configured is forgotten, so it cannot keep old rows forever.
        """
        wanted = list(dict.fromkeys(names))
        with self._lock:
            conn = self._require()
            gone = [s for s in self._cursors if s not in wanted]
            new = [s for s in wanted if s not in self._cursors]
            cursors = {s: self._cursors.get(s, self._last_seq) for s in wanted}
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sink in gone:
                    conn.execute("DELETE FROM cursors WHERE sink = ?", (sink,))
                for sink in new:
                    conn.execute(
                        "INSERT INTO cursors (sink, seq) VALUES (?, ?)", (sink, self._last_seq)
                    )
                pruned = self._prune(conn, cursors)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may have rolled back already
                    conn.execute("ROLLBACK")
                raise
            for sink in gone:
                log.warning(
                    "outbox: forgetting a sink that is no longer configured; "
                    "the stored events it had not received will not be sent to it",
                    sink=sink,
                    undelivered=self._pending_locked(sink),
                )
            for sink in new:
                log.info("outbox: new sink gets the events stored from now on", sink=sink)
            self._cursors = cursors
            self._count -= pruned[0]
            self._bytes -= pruned[1]

    @property
    def sinks(self) -> list[str]:
        with self._lock:
            return list(self._cursors)

    def cursor(self, sink: str) -> int:
        """The last seq `sink` acknowledged (0 before its first)."""
        with self._lock:
            return self._cursors[sink]

    def pending(self, sink: str) -> int:
        """How many stored events `sink` has not acknowledged yet (0 for unknown sinks)."""
        with self._lock:
            return self._pending_locked(sink) if sink in self._cursors else 0

    def _pending_locked(self, sink: str) -> int:
        return min(self._count, max(0, self._last_seq - self._cursors[sink]))

    @property
    def last_seq(self) -> int:
        """The seq of the newest stored event (0 if none was ever stored)."""
        with self._lock:
            return self._last_seq

    # -- append, read, ack -------------------------------------------------------------

    def append(self, events: Sequence[Event]) -> list[Event]:
        """Store `events` in one transaction, in order.

        Returns the health events the outbox itself stored after them (an
        ``outbox_overflow`` when the size limit dropped old rows), so the caller can
        report them; they are already stored and will reach every sink.
        """
        if not events:
            return []
        bodies = [e.to_json().encode() for e in events]
        with self._lock:
            try:
                return self._append_locked(events, bodies)
            except sqlite3.IntegrityError:
                # Another process appended (`hikd.delivery.outbox_append`) since this one last
                # looked: its rows took these sequence numbers. Count them, go after them.
                self._sync_locked()
                return self._append_locked(events, bodies)

    def _append_locked(self, events: Sequence[Event], bodies: list[bytes]) -> list[Event]:
        conn = self._require()
        first = self._last_seq + 1
        last = first + len(bodies) - 1
        count = self._count + len(bodies)
        nbytes = self._bytes + sum(map(len, bodies))
        stored: list[Event] = list(events)
        cut = dropped = 0
        cursors = self._cursors
        if (
            cursors
            and count <= self.max_events
            and nbytes <= self.max_bytes
            and len(bodies) <= self._insert_rows
        ):
            # One INSERT is a transaction of its own: no BEGIN and COMMIT statements
            # (each releases and retakes the GIL, see `_insert`).
            _insert(conn, first, bodies, self._insert_rows)
        else:
            cut, dropped, count, nbytes, cursors, last = self._append_in_transaction(
                conn, bodies, stored, first, count, nbytes
            )
        self._last_seq = last
        self._count = count
        self._bytes = nbytes
        self._cursors = cursors
        self._dropped += dropped
        self._remember_locked(first, stored, cut)
        return stored[len(events) :]

    def _append_in_transaction(
        self,
        conn: sqlite3.Connection,
        bodies: list[bytes],
        stored: list[Event],
        first: int,
        count: int,
        nbytes: int,
    ) -> tuple[int, int, int, int, dict[str, int], int]:
        """`append` when rows must also be deleted: nobody to deliver to, or the size limit
        is reached (the overflow event is added to `stored`). Returns (last dropped seq,
        how many dropped, rows and bytes after, cursors after, last seq)."""
        last = first + len(bodies) - 1
        cut = dropped = 0
        cursors = self._cursors
        conn.execute("BEGIN IMMEDIATE")
        try:
            _insert(conn, first, bodies, self._insert_rows)
            if not cursors:
                # Nobody to deliver to: the rows are acknowledged by every sink.
                conn.execute("DELETE FROM events WHERE seq <= ?", (last,))
                count, nbytes = 0, 0
            elif count > self.max_events or nbytes > self.max_bytes:
                cut, dropped, overflow, nbytes = self._drop_oldest(conn, last, count, nbytes)
                count -= dropped
                body = overflow.to_json().encode()
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

    def _drop_oldest(
        self, conn: sqlite3.Connection, last: int, count: int, nbytes: int
    ) -> tuple[int, int, Event, int]:
        """Delete the oldest rows so that the rest plus one health event fit in 99 %.

        Returns (last dropped seq, how many dropped, the overflow event, bytes left).
        """
        first_present = last - count + 1
        keep_events = max(1, self.max_events - max(1, self.max_events // 100)) - 1
        keep_bytes = self.max_bytes - max(1, self.max_bytes // 100)
        # Room for the overflow event itself: its size with the widest possible counts.
        widest = self._overflow_event(dict.fromkeys(self._cursors, 10**15), 10**15, "max_bytes")
        keep_bytes -= len(widest.to_json().encode())
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
        per_sink = {s: max(0, cut - max(c, first_present - 1)) for s, c in self._cursors.items()}
        conn.execute("DELETE FROM events WHERE seq <= ?", (cut,))
        log.warning(
            "outbox: size limit reached, dropped the oldest events; "
            "a sink is falling behind or the limit is too small",
            limit=reason,
            dropped=dropped,
            undelivered_per_sink=per_sink,
        )
        return cut, dropped, self._overflow_event(per_sink, dropped, reason), left

    def _overflow_event(self, per_sink: dict[str, int], total: int, reason: str) -> Event:
        return health(
            HIKD,
            "outbox_overflow",
            dropped=per_sink,
            total=total,
            reason=reason,
            max_events=self.max_events,
            max_bytes=self.max_bytes,
        )

    def _remember_locked(self, first: int, stored: list[Event], cut: int) -> None:
        if self._recent and self._recent_first + len(self._recent) == first:
            self._recent.extend(stored)
        else:
            self._recent = list(stored)
            self._recent_first = first
        # Rows the size limit dropped must not be served; past _RECENT, the oldest go.
        self._forget_locked(max(cut - self._recent_first + 1, len(self._recent) - _RECENT))

    def _forget_locked(self, n: int) -> None:
        """Drop the `n` oldest remembered events."""
        if n > 0:
            n = min(n, len(self._recent))
            del self._recent[:n]
            self._recent_first += n

    def read(self, sink: str, after_cursor: int, limit: int) -> list[tuple[int, Event]]:
        """Up to `limit` stored events after `after_cursor`, oldest first, as (seq, event)."""
        with self._lock:
            conn = self._require()
            start = max(after_cursor + 1, self._last_seq - self._count + 1)
            if start > self._last_seq or limit < 1:
                return []
            if self._recent_first <= start < self._recent_first + len(self._recent):
                i = start - self._recent_first
                return list(enumerate(self._recent[i : i + limit], start))
            rows = conn.execute(
                "SELECT seq, body FROM events WHERE seq >= ? ORDER BY seq LIMIT ?",
                (start, limit),
            ).fetchall()
        return [(seq, _decode(seq, body)) for seq, body in rows]

    def ack(self, sink: str, seq: int) -> None:
        """`sink` delivered everything up to and including `seq`; persist its cursor.

        Raises `OutboxUnwritable` when the cursor cannot be written; it is kept in memory
        and written by the next `ack` of any sink (call again with the same `seq` to retry).
        """
        with self._lock:
            conn = self._require()
            seq = min(seq, self._last_seq)
            if seq <= self._cursors[sink] and sink not in self._unpersisted:
                return
            cursors = {**self._cursors, sink: max(seq, self._cursors[sink])}
            upto, pruned = self._prunable(conn, cursors)
            # Every cursor only kept in memory is written too.
            writes = {s: cursors[s] for s in {*self._unpersisted, sink}}
            if any("\0" in s for s in writes):  # cannot be written as an SQL literal
                statements = None
            else:
                # One script: executescript releases the GIL once per statement, execute()
                # four times, and each time the sink's thread waits up to the switch
                # interval to get it back from a busy decoder thread. Only integers and
                # the quoted sink names go into the text.
                statements = [
                    "BEGIN IMMEDIATE",
                    *(
                        f"UPDATE cursors SET seq = {int(c)} WHERE sink = {_sql_string(s)}"
                        for s, c in writes.items()
                    ),
                    f"DELETE FROM events WHERE seq <= {int(upto)}" if upto is not None else "",
                    "COMMIT",
                ]
            try:
                if statements is None:
                    conn.execute("BEGIN IMMEDIATE")
                    for s, c in writes.items():
                        conn.execute("UPDATE cursors SET seq = ? WHERE sink = ?", (c, s))
                    if upto is not None:
                        conn.execute("DELETE FROM events WHERE seq <= ?", (upto,))
                    conn.execute("COMMIT")
                else:
                    conn.executescript(";\n".join(filter(None, statements)) + ";")
            except sqlite3.OperationalError as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                # Delivered all the same: remember it, so the sink goes on after it.
                self._cursors = cursors
                self._unpersisted.add(sink)
                raise OutboxUnwritable(f"outbox {self.path}: {e}") from None
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may have rolled back already
                    conn.execute("ROLLBACK")
                raise
            self._unpersisted.clear()
            self._cursors = cursors
            self._count -= pruned[0]
            self._bytes -= pruned[1]
            # What every sink has acknowledged is not read again.
            self._forget_locked(min(cursors.values()) - self._recent_first + 1)

    def _prune(self, conn: sqlite3.Connection, cursors: dict[str, int]) -> tuple[int, int]:
        """Delete the rows every sink in `cursors` has acknowledged; (rows, bytes) deleted."""
        upto, pruned = self._prunable(conn, cursors)
        if upto is not None:
            conn.execute("DELETE FROM events WHERE seq <= ?", (upto,))
        return pruned

    def _prunable(
        self, conn: sqlite3.Connection, cursors: dict[str, int]
    ) -> tuple[int | None, tuple[int, int]]:
        """The last seq every sink in `cursors` has acknowledged (None when no stored row
        is), and (rows, bytes) stored up to there."""
        first_present = self._last_seq - self._count + 1
        upto = min(cursors.values(), default=self._last_seq)
        if upto < first_present:
            return None, (0, 0)
        start = first_present - self._recent_first
        if not self._gaps and start >= 0 and upto < self._recent_first + len(self._recent):
            # Rows still remembered: their bodies are their JSON, no query needed.
            count = upto - first_present + 1
            nbytes = sum(_size(e.to_json()) for e in self._recent[start : start + count])
            return upto, (count, nbytes)
        count, nbytes = conn.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM events WHERE seq <= ?",
            (upto,),
        ).fetchone()
        return upto, (int(count), int(nbytes))

    # -- other processes' events -------------------------------------------------------

    def refresh(self) -> bool:
        """Count the events another process appended (`hikd.delivery.outbox_append`) since this
        one last looked; True if there are new ones to deliver. Cheap: one pragma when
        nothing changed."""
        with self._lock:
            conn = self._require()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return False
            self._data_version = version
            return self._sync_locked()

    def _sync_locked(self) -> bool:
        conn = self._require()
        (newest,) = conn.execute("SELECT max(seq) FROM events").fetchone()
        if newest is None or int(newest) <= self._last_seq:
            return False
        # Appended after this process's rows, so they follow them without a gap.
        count, nbytes = conn.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM events WHERE seq > ?",
            (self._last_seq,),
        ).fetchone()
        self._last_seq = int(newest)
        self._count += int(count)
        self._bytes += int(nbytes)
        return True

    # -- the rest ----------------------------------------------------------------------

    def stats(self) -> OutboxStats:
        with self._lock:
            return OutboxStats(events=self._count, bytes=self._bytes, dropped=self._dropped)

    def close(self) -> None:
        """Close the database; safe to call twice. Later calls raise `OutboxClosed`."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.close()
            finally:
                self._conn = None
                self._recent = []
                os.close(self._lock_fd)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_database(path: Path, synchronous: Synchronous = "NORMAL") -> sqlite3.Connection:
    """Open (and create) the outbox database at `path`: WAL, the schema, autocommit.
    `UserError` when it cannot be used."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            # Keep the WAL file from staying large after a burst.
            conn.execute("PRAGMA journal_size_limit=67108864")
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
    except sqlite3.DatabaseError as e:
        raise UserError(
            f"outbox {path} cannot be used ({e}); check the state directory, "
            "or move the file away (its undelivered events are then lost)"
        ) from None
    return conn


def _size(text: str) -> int:
    """The bytes `text` takes stored (to_json() writes ASCII, so no encoding is needed)."""
    return len(text) if text.isascii() else len(text.encode())


def _sql_string(text: str) -> str:
    """`text` as an SQLite string literal (SQLite has no backslash escapes)."""
    return "'" + text.replace("'", "''") + "'"


def _insert(conn: sqlite3.Connection, first: int, bodies: list[bytes], most: int) -> None:
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


_MAX_INSERT_ROWS = 4096
"""Rows per INSERT at most (the bus stores up to 2000 events at a time); fewer where
SQLite allows fewer parameters per statement."""


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    return "INSERT INTO events (seq, body) VALUES " + ",".join(["(?, ?)"] * rows)


def _decode(seq: int, body: bytes) -> Event:
    try:
        # The row is what `to_json()` wrote: the event keeps it, so sinks send it as is.
        return Event.from_stored_json(body.decode() if isinstance(body, bytes) else body)
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
