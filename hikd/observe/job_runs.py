"""Job runs by result, read from the state database at each scrape.

Jobs record every run on a device in ``state.sqlite`` (`hikd.state`, table ``runs``), from
whichever process ran them (the daemon, a device host, ``hikd jobs --run``), and publish no
event of their own: so the runs are counted from that table, the rows added since hikd
started (200 are kept per job and device, far more than run between two scrapes).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from hikd.logs import get_logger
from hikd.state import FILE_NAME

log = get_logger(__name__)


class JobRuns:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self.counts: dict[tuple[str, str], int] = {}
        """(job, result) -> runs on one device; result ok, failed or skipped."""
        self._lock = threading.Lock()  # scrapes may overlap
        self._last_id: int | None = None

    def start(self) -> None:
        """Count from now: the runs stored before this are not this run's."""
        with self._lock:
            self._last_id = self._max_id()

    def update(self) -> dict[tuple[str, str], int]:
        with self._lock:
            if self._last_id is None:
                self._last_id = 0
            try:
                rows = self._read("SELECT id, job, ok, summary FROM runs WHERE id > ? ORDER BY id",
                                  (self._last_id,))  # fmt: skip
            except sqlite3.Error as e:
                log.debug("metrics: cannot read the job runs", error=str(e))
                return dict(self.counts)
            for run_id, job, ok, summary in rows:
                result = "ok" if ok else "skipped" if summary.startswith("skipped") else "failed"
                key = (str(job), result)
                self.counts[key] = self.counts.get(key, 0) + 1
                self._last_id = max(self._last_id, int(run_id))
            return dict(self.counts)

    def _max_id(self) -> int:
        try:
            rows = self._read("SELECT coalesce(max(id), 0) FROM runs", ())
        except sqlite3.Error:
            return 0
        return int(rows[0][0]) if rows else 0

    def _read(self, query: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=2.0)
        try:
            return list(conn.execute(query, args).fetchall())
        finally:
            conn.close()
