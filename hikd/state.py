"""The state database: what scheduled jobs did, so nothing is fetched twice.

One SQLite file (``<state_dir>/state.sqlite``, WAL) shared by every job and by
``hikd jobs``, which reads it while the daemon runs. Three tables:

* ``kv``: a job's own values (a cursor, pending clips), JSON;
* ``done``: the items a job has finished (a recording, a clip), with what it produced;
  a job asks `is_done` before fetching, so a second run and a restart fetch only the rest;
* ``runs``: one row per run of a job on a device (start, end, ok, one-line summary).

One connection behind a lock: the writes are small and few (one per recording), and the
lock keeps the store usable from the scheduler's worker threads and the clip recorder.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hikd.sqlite_setup import set_up_when_unlocked

FILE_NAME = "state.sqlite"
RUNS_KEPT = 200
"""Runs kept per (job, device); older ones are dropped as new ones come."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    job TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (job, key)
);
CREATE TABLE IF NOT EXISTS done (
    job TEXT NOT NULL, item TEXT NOT NULL, info TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (job, item)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL, device TEXT NOT NULL,
    started TEXT NOT NULL, ended TEXT NOT NULL,
    ok INTEGER NOT NULL, summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, device, id);
"""


def _iso(value: datetime | float) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    return datetime.fromtimestamp(value, UTC).isoformat()


class StateStore:
    """Thread-safe. `StateStore.open(state_dir)` or `StateStore(path_to_file)`."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            uri = f"{self.path.absolute().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10.0)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            self._set_up()
        self._lock = threading.Lock()
        self._before_write: Callable[[], None] | None = None

    def _set_up(self) -> None:
        """WAL (`hikd jobs` reads while the daemon writes) and the schema."""

        def set_up() -> None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

        set_up_when_unlocked(set_up)

    @classmethod
    def open(cls, state_dir: Path) -> StateStore:
        return cls(Path(state_dir) / FILE_NAME)

    def waiting_for(self, stored: Callable[[], None]) -> StateStore:
        """This database as a job sees it in the daemon: `put` and `mark_done` first call
        `stored`, which returns once every event published so far is stored in the outbox
        (or raises): nothing is marked done whose events could still be lost. The view
        shares this store's connection (closing either closes both)."""
        view = copy.copy(self)
        view._before_write = stored
        return view

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- a job's own values ------------------------------------------------------------
    def get(self, job: str, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM kv WHERE job = ? AND key = ?", (job, key)
            ).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, job: str, key: str, value: Any) -> None:
        if self._before_write is not None:
            self._before_write()
        text = json.dumps(value, separators=(",", ":"), default=str)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO kv (job, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (job, key) DO UPDATE SET value = excluded.value",
                (job, key, text),
            )

    def delete(self, job: str, key: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM kv WHERE job = ? AND key = ?", (job, key))

    def items(self, job: str, prefix: str = "") -> dict[str, Any]:
        """Every (key, value) of `job` whose key starts with `prefix`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM kv WHERE job = ? AND substr(key, 1, ?) = ?",
                (job, len(prefix), prefix),
            ).fetchall()
        return {key: json.loads(value) for key, value in rows}

    # -- finished items ----------------------------------------------------------------
    def is_done(self, job: str, item: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM done WHERE job = ? AND item = ?", (job, item)
            ).fetchone()
        return row is not None

    def mark_done(self, job: str, item: str, info: dict[str, Any]) -> None:
        if self._before_write is not None:
            self._before_write()
        text = json.dumps(info, separators=(",", ":"), default=str)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO done (job, item, info, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (job, item) DO UPDATE SET info = excluded.info, at = excluded.at",
                (job, item, text, time.time()),
            )

    def done_info(self, job: str, item: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT info FROM done WHERE job = ? AND item = ?", (job, item)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def done_count(self, job: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM done WHERE job = ?", (job,)).fetchone()
        return int(row[0])

    # -- runs --------------------------------------------------------------------------
    def record_run(
        self,
        job: str,
        device: str,
        started: datetime | float,
        ended: datetime | float,
        ok: bool,
        summary: str,
    ) -> None:
        """Times are aware datetimes or POSIX timestamps."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO runs (job, device, started, ended, ok, summary) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job, device, _iso(started), _iso(ended), int(ok), summary),
            )
            self._db.execute(
                "DELETE FROM runs WHERE job = ? AND device = ? AND id <= ("
                "  SELECT id FROM runs WHERE job = ? AND device = ? "
                "  ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (job, device, job, device, RUNS_KEPT),
            )

    def last_run(self, job: str, device: str | None = None) -> dict[str, Any] | None:
        """The latest run of `job` on `device` (on any device when None):
        ``{"job", "device", "started", "ended", "ok", "summary"}``, times as aware datetimes."""
        query = "SELECT job, device, started, ended, ok, summary FROM runs WHERE job = ?"
        args: tuple[Any, ...] = (job,)
        if device is not None:
            query += " AND device = ?"
            args += (device,)
        with self._lock:
            row = self._db.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        return {
            "job": row[0],
            "device": row[1],
            "started": datetime.fromisoformat(row[2]),
            "ended": datetime.fromisoformat(row[3]),
            "ok": bool(row[4]),
            "summary": row[5],
        }

    def last_runs(self, job: str) -> list[dict[str, Any]]:
        """The latest run of `job` on each device it ran on, by device name."""
        with self._lock:
            devices = [
                r[0]
                for r in self._db.execute(
                    "SELECT DISTINCT device FROM runs WHERE job = ? ORDER BY device", (job,)
                ).fetchall()
            ]
        runs = [self.last_run(job, device) for device in devices]
        return [run for run in runs if run is not None]
