"""The durable outbox: every event is stored here before any sink sees it.

One SQLite database in WAL mode (``state_dir/outbox.sqlite``, `hikd.delivery.outbox_db`).
Events get a sequence number (``seq``) in the order they are stored; every sink has its own
persisted cursor (the last ``seq`` it acknowledged). A sink reads what lies after its cursor
and acknowledges what it delivered, so after a crash or a restart every unacknowledged event
is sent again, in order, per sink (at-least-once; consumers de-duplicate on ``event.id``).

Rows acknowledged by every sink are deleted; at the size limit the oldest go first
(`hikd.delivery.outbox_limit`). One transaction per `append` and per written `ack`, each
of many events. Other processes store events too (`outbox_append`): the first sink to read
past the rows this process knows of finds them, counts them in and keeps them decoded for
the other sinks; `refresh` (the bus's periodic look) counts the rest.
Sequence numbers stay contiguous: rows are only ever appended at the end and deleted
from the front, which lets counts and backlogs be computed without a query.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hikd.delivery.outbox_db import (
    HIKD,
    OUTBOX_FILE,
    OutboxClosed,
    OutboxUnwritable,
    Synchronous,
    decode_row,
    insert_rows,
    lock_outbox,
    open_database,
    rows_per_insert,
    stored_rows,
    write_cursors,
)
from hikd.delivery.outbox_limit import SizeLimit, append_in_transaction
from hikd.delivery.outbox_others import OthersRows
from hikd.delivery.outbox_recent import RecentEvents
from hikd.events import Event
from hikd.logs import get_logger

__all__ = [
    "HIKD",
    "OUTBOX_FILE",
    "Outbox",
    "OutboxClosed",
    "OutboxStats",
    "OutboxUnwritable",
    "Synchronous",
    "open_database",
]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    events: int
    """Rows stored now."""
    bytes: int
    """Bytes of event JSON stored now."""
    dropped: int
    """Events dropped by the size limit since this outbox was opened."""


class Outbox(OthersRows):
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
        self._limit = SizeLimit(max_events, max_bytes)
        self._lock = threading.Lock()
        self._lock_fd = lock_outbox(self.path)
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = open_database(self.path, synchronous)
            self._insert_rows = rows_per_insert(self._conn)
            self._load_state()
            self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            self._refreshed_upto = self._last_seq
        except BaseException:
            if self._conn is not None:
                self._conn.close()
            os.close(self._lock_fd)
            raise
        self._dropped = 0
        self._unpersisted: set[str] = set()  # sinks whose cursor `ack` could not write
        self._recent = RecentEvents()

    # -- opening -----------------------------------------------------------------------

    def _load_state(self) -> None:
        conn = self._require()
        self._cursors: dict[str, int] = dict(conn.execute("SELECT sink, seq FROM cursors"))
        last, self._count, self._bytes, first = stored_rows(conn)
        # No cursor may point past the end (a hand-edited file); new rows must come after.
        self._last_seq = max([last, *self._cursors.values()])
        self._gaps = bool(self._count and first != self._last_seq - self._count + 1)
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
        report them; they are already stored and will reach every sink. Without events:
        the size limit applied to rows other processes stored (they do not know it).
        """
        if not events and not self._limit.exceeded(self._count, self._bytes):
            return []
        bodies = [e.to_json_bytes() for e in events]
        with self._lock:
            for _ in range(9):  # device hosts append all the time: again and again
                try:
                    return self._append_locked(events, bodies)
                except sqlite3.IntegrityError:
                    # Another process appended (`hikd.delivery.outbox_append`) since this one
                    # last looked: its rows took these numbers. Count them, go after them.
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
        if cursors and not self._limit.exceeded(count, nbytes) and len(bodies) <= self._insert_rows:
            # One INSERT is a transaction of its own: no BEGIN and COMMIT statements
            # (each releases and retakes the GIL, see `insert_rows`).
            insert_rows(conn, first, bodies, self._insert_rows)
        else:
            cut, dropped, count, nbytes, cursors, last = append_in_transaction(
                conn, self._limit, self._cursors, bodies, stored, (first, count, nbytes),
                self._insert_rows,
            )  # fmt: skip
        self._last_seq = last
        self._count = count
        self._bytes = nbytes
        self._cursors = cursors
        self._dropped += dropped
        self._recent.add(first, stored, cut)
        return stored[len(events) :]

    def read(
        self, sink: str, after_cursor: int, limit: int, told: bool = False
    ) -> list[tuple[int, Event]]:
        """Up to `limit` stored events after `after_cursor`, oldest first, as (seq, event).

        After the newest row this process knows of, it looks for rows other processes
        stored (one pragma when nothing was committed since the last look, none when `told`
        that a process has just committed) and counts what it finds: a device host's rows
        are found by the first sink to read after the host's wake-up, with no query of
        their own to count them."""
        with self._lock:
            conn = self._require()
            start = max(after_cursor + 1, self._last_seq - self._count + 1)
            if limit < 1:
                return []
            if start > self._last_seq and not self._read_others_locked(conn, limit, told):
                return []
            remembered = self._recent.read(start, limit)
            if remembered is not None:
                return remembered
            # Only rows counted in: a sink never runs ahead of `last_seq`, whose rows after
            # it the next look reads.
            rows = conn.execute(
                "SELECT seq, body FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                (start, self._last_seq, limit),
            ).fetchall()
        events = [(seq, decode_row(seq, body)) for seq, body in rows]
        if events and events[-1][0] - start + 1 == len(events):
            with self._lock:
                # Rows another process stored: the next sink to read them gets them decoded.
                if self._conn is not None and start > self._last_seq - self._count:
                    self._recent.keep(start, [event for _, event in events])
        return events

    def ack(self, sink: str, seq: int, persist: bool = True) -> None:
        """`sink` delivered everything up to and including `seq`; persist its cursor (with
        `persist` false only in memory: the next `ack` that persists writes it too).

        Raises `OutboxUnwritable` when the cursor cannot be written; it is kept in memory
        and written by the next `ack` of any sink (call again with the same `seq` to retry).
        """
        with self._lock:
            conn = self._require()
            seq = min(seq, self._last_seq)
            if seq <= self._cursors[sink] and sink not in self._unpersisted:
                return
            if not persist:
                self._cursors = {**self._cursors, sink: max(seq, self._cursors[sink])}
                self._unpersisted.add(sink)
                return
            cursors = {**self._cursors, sink: max(seq, self._cursors[sink])}
            upto, pruned = self._prunable(conn, cursors)
            # Every cursor only kept in memory is written too.
            writes = {s: cursors[s] for s in {*self._unpersisted, sink}}
            try:
                write_cursors(conn, writes, upto)
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
            self._recent.forget_upto(min(cursors.values()))

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
        # Rows still remembered: their bodies are their JSON, no query needed.
        remembered = None if self._gaps else self._recent.stored_bytes(first_present, upto)
        if remembered is not None:
            return upto, (upto - first_present + 1, remembered)
        count, nbytes = conn.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM events WHERE seq <= ?",
            (upto,),
        ).fetchone()
        return upto, (int(count), int(nbytes))

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
                self._recent.clear()
                os.close(self._lock_fd)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
