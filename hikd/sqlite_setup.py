"""Setting up a SQLite file that other processes may be creating at the same moment."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

WAIT_S = 10.0
"""How long setting up waits for another process that is setting up the same file."""


def set_up_when_unlocked(set_up: Callable[[], T], wait_s: float = WAIT_S) -> T:
    """`set_up()`, tried again while SQLite says "database is locked". Processes that open a
    new file at once (device hosts starting together, a `hikd jobs --run` beside a starting
    daemon) get that from the switch to WAL straight away, without SQLite's busy timeout
    (tests/test_opened_at_once.py). Other errors, and a lock that outlasts `wait_s`, raise."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return set_up()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
