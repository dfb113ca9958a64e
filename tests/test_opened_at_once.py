"""Processes that open the same new SQLite file at once (device hosts starting together, a
`hikd jobs --run` next to a starting daemon): SQLite answered the switch to WAL of all but
one "database is locked" straight away, without its busy timeout, and that process died at
start (a device host, seen in CI). About one round in ten failed here; threads with their
own connections race the same way as processes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hikd.delivery.outbox_db import open_database
from hikd.state import StateStore


def _state(path: Path) -> None:
    StateStore(path).close()


def _outbox(path: Path) -> None:
    open_database(path).close()


@pytest.mark.parametrize("open_it", [_state, _outbox], ids=["state", "outbox"])
def test_several_processes_may_open_a_new_file_at_once(
    tmp_path: Path, open_it: Callable[[Path], None]
) -> None:
    failures: list[str] = []
    for round_ in range(200):
        path = tmp_path / f"new-{round_}.sqlite"
        barrier = threading.Barrier(4)

        def opener(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                open_it(path)
            except Exception as exc:  # what failed is the test's finding
                failures.append(repr(exc))

        openers = [threading.Thread(target=opener) for _ in range(4)]
        for thread in openers:
            thread.start()
        for thread in openers:
            thread.join()
    assert failures == []
