"""Timestamps of events at each hop of the alarm path, for `bench/bench_delivery.py --hops`.

Off unless the environment variable ``HIKD_HOPS`` names a directory when the process starts
(the supervisor's device hosts inherit it). Then each hop notes ``time.monotonic_ns()``
(one clock for every process on Linux) with the ids of the events passing it, in memory,
and the process writes them to ``<dir>/hops-<pid>.txt`` when it exits: one line per event
and hop, ``<hop> <ns> <event id>``; a hop noted without events (a wake-up) has ``-``.

Callers check `ON` first, so that a daemon that does not trace pays one test of a constant
per batch and nothing else.
"""

from __future__ import annotations

import atexit
import os
import time
from collections.abc import Iterable
from pathlib import Path

from hikd.events import Event

ENV = "HIKD_HOPS"
ON = bool(os.environ.get(ENV))
_noted: list[tuple[str, int, list[str]]] = []


def note(hop: str, events: Iterable[Event] = (), ns: int | None = None) -> None:
    """`events` passed `hop` now (or at `ns`, a `time.monotonic_ns()`)."""
    _noted.append((hop, time.monotonic_ns() if ns is None else ns, [e.id for e in events]))


def _write() -> None:
    if not _noted:
        return
    path = Path(os.environ[ENV]) / f"hops-{os.getpid()}.txt"
    with open(path, "w") as out:
        for hop, ns, ids in _noted:
            out.writelines(f"{hop} {ns} {i}\n" for i in ids or ["-"])


if ON:
    atexit.register(_write)
