"""The machine's CPU over a bench window, by part: hikd, and each of the bench's own parts.

On 2 cores what the simulator, the broker and the subscriber cost is taken from hikd (and
shows in its latency and top rate), so `bench_delivery.py` prints every part's share next
to hikd's: a reader sees whether hikd or the machine was the limit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import tree_cpu_s

TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def machine_busy_s() -> float:
    """CPU seconds all cores spent on anything but idle/iowait, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def _fields(path: str) -> list[str]:
    return Path(path).read_text().rpartition(")")[2].split()


def own_cpu_s(pid: int) -> float:
    """utime + stime of one process (all its threads, not its children)."""
    fields = _fields(f"/proc/{pid}/stat")
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu_s(pid: int, tid: int) -> float:
    """utime + stime of one thread of `pid` (0 when it is unknown or gone)."""
    if not tid:
        return 0.0
    try:
        fields = _fields(f"/proc/{pid}/task/{tid}/stat")
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


PARTS = ("hikd", "simulator", "broker", "subscriber", "bench")
"""hikd: all of `hikd run`'s processes; bench: this process but its subscriber thread."""


def part_readers(
    hikd: int, simulator: int, broker: int, subscriber_tid: Callable[[], int]
) -> dict[str, Callable[[], float]]:
    """CPU-seconds-so-far readers of each part (`PARTS`), processes given by pid."""
    me = os.getpid()
    return {
        "hikd": lambda: tree_cpu_s(hikd),
        "simulator": lambda: tree_cpu_s(simulator),
        "broker": lambda: tree_cpu_s(broker),
        "subscriber": lambda: thread_cpu_s(me, subscriber_tid()),
        "bench": lambda: own_cpu_s(me) - thread_cpu_s(me, subscriber_tid()),
    }


@dataclass
class Window:
    """CPU seconds of each part, and of the whole machine ("busy"), over a window."""

    seconds: float
    parts: dict[str, float]
    busy: float

    @property
    def others(self) -> float:
        """Busy time of nothing measured here: the other users of the machine."""
        return max(0.0, self.busy - sum(self.parts.values()))

    @property
    def idle(self) -> float:
        return max(0.0, CORES * self.seconds - self.busy)

    def percent(self, cpu_s: float) -> float:
        """`cpu_s` over the window in % of one core (the machine has CORES x 100 %)."""
        return cpu_s / self.seconds * 100 if self.seconds else float("nan")


class Meter:
    """Starts a window now; `stop` gives its `Window`."""

    def __init__(self, readers: dict[str, Callable[[], float]]) -> None:
        self.readers = readers
        self._start = {name: read() for name, read in readers.items()}
        self._busy = machine_busy_s()
        self._t0 = time.monotonic()

    def stop(self) -> Window:
        parts = {name: read() - self._start[name] for name, read in self.readers.items()}
        busy = machine_busy_s() - self._busy
        return Window(time.monotonic() - self._t0, parts, busy)
