"""Timestamps of events at each hop of the alarm path, for `bench/bench_delivery.py --hops`.

Off unless the environment variable ``HIKD_HOPS`` names a directory when the process starts
(the supervisor's device hosts inherit it). Then each hop notes ``time.monotonic_ns()``
(one clock for every process on Linux) with the ids of the events passing it, in memory,
and the process writes them to ``<dir>/hops-<pid>.txt`` when it exits: one line per event
and hop, ``<hop> <ns> <event id>``; a hop noted without events (a wake-up) has ``-``. The
garbage collector's pauses are noted too, as ``gc<generation> <start ns> <length ns>``: a
collection stops every thread of the process.

Callers check `ON` first, so that a daemon that does not trace pays one test of a constant
per batch and nothing else.
"""

from __future__ import annotations

import atexit
import gc
import os
import time
from collections.abc import Iterable
from pathlib import Path

from hikd.events import Event

ENV = "HIKD_HOPS"
ON = bool(os.environ.get(ENV))
_noted: list[str] = []
"""Lines to write: strings, which the garbage collector does not track (tuples and lists
would make every collection of the traced process longer)."""


def note(hop: str, events: Iterable[Event] = (), ns: int | None = None) -> None:
    """`events` passed `hop` now (or at `ns`, a `time.monotonic_ns()`)."""
    at = time.monotonic_ns() if ns is None else ns
    lines = [f"{hop} {at} {e.id}\n" for e in events]
    _noted.extend(lines or [f"{hop} {at} -\n"])


_gc_started = 0


def _collecting(phase: str, info: dict[str, int]) -> None:
    global _gc_started
    now = time.monotonic_ns()
    if phase == "start":
        _gc_started = now
    else:
        _noted.append(f"gc{info['generation']} {_gc_started} {now - _gc_started}\n")


def _write() -> None:
    if _noted:
        path = Path(os.environ[ENV]) / f"hops-{os.getpid()}.txt"
        path.write_text("".join(_noted))


if ON:
    atexit.register(_write)
    gc.callbacks.append(_collecting)
