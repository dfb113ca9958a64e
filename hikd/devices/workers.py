"""A few threads for the sessions of many devices: logins, re-logins and session checks.

A thread per device cost ~36 kB of touched stack plus the interpreter's state each (256
devices: ~10 MB, README "Processes"), to wait most of its life. Here each session's next
step (`Steps.run_at`) is a timer in one heap; one dispatcher thread, which never calls the
vendor library, hands each due step to an idle worker, and starts another worker when none
is idle, up to `BUSY_LIMIT` working at once. The vendor library can hang in any call: a
worker busy for longer than `STUCK_S` no longer counts toward that limit, so a hung call
holds up only its own device (as it did with a thread per device), never the others.
Workers idle for `IDLE_S` end.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("hikd.devices.session")

BUSY_LIMIT = 32
"""Steps run at once: logins (at most 16 of them, `hikd.devices.session`) beside the
arming and checks of devices already logged in. A thread per device had no limit here."""
STUCK_S = 10.0
"""A step running this long is taken for hung: another worker may start beside it."""
IDLE_S = 5.0
"""A worker with nothing to do for this long ends."""


@dataclass(order=True)
class _Due:
    when: float
    seq: int
    step: Callable[[], None] = field(compare=False)
    owner: Steps = field(compare=False)


class _Worker:
    def __init__(self) -> None:
        self.step: Callable[[], None] | None = None
        self.given = threading.Event()
        self.busy_since: float | None = None


class Workers:
    """The dispatcher and its workers (started at the first step)."""

    def __init__(self, busy_limit: int = BUSY_LIMIT, stuck_s: float = STUCK_S) -> None:
        self.busy_limit = busy_limit
        self.stuck_s = stuck_s
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._names = itertools.count(1)
        self._dispatcher: threading.Thread | None = None

    def threads(self) -> int:
        """Workers now (busy or idle)."""
        with self._cond:
            return len(self._idle) + len(self._busy)

    def _add(self, due: _Due) -> None:
        with self._cond:
            heapq.heappush(self._heap, due)
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=self._dispatch, name="session-dispatcher", daemon=True
                )
                self._dispatcher.start()
            self._cond.notify()

    def _dispatch(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0].when <= now:
                    due = self._heap[0]
                    if due.owner.pending is not due:  # replaced or cancelled since
                        heapq.heappop(self._heap)
                        continue
                    if not self._hand(due, now):
                        break
                    heapq.heappop(self._heap)
                    due.owner.pending = None
                if not self._heap:
                    wait = None
                elif self._heap[0].when <= now:
                    wait = 0.5  # every worker busy: look again as busy ones turn stuck
                else:
                    wait = self._heap[0].when - now
                self._cond.wait(wait)

    def _hand(self, due: _Due, now: float) -> bool:
        """Give `due` to an idle worker or a new one; False when `BUSY_LIMIT` are busy."""
        if self._idle:
            worker = self._idle.pop()
        else:
            working = sum(
                1 for w in self._busy if w.busy_since and now - w.busy_since < self.stuck_s
            )
            if working >= self.busy_limit:
                return False
            worker = _Worker()
            threading.Thread(
                target=self._work, args=(worker,), name=f"session-{next(self._names)}", daemon=True
            ).start()
        worker.step, worker.busy_since = self._runner(due), now
        self._busy.add(worker)
        worker.given.set()
        return True

    @staticmethod
    def _runner(due: _Due) -> Callable[[], None]:
        def run() -> None:
            due.owner.run(due.step)

        return run

    def _work(self, worker: _Worker) -> None:
        while True:
            if not worker.given.wait(IDLE_S):
                with self._cond:
                    if not worker.given.is_set():  # no step handed over meanwhile
                        self._idle.remove(worker)
                        return
            worker.given.clear()
            step, worker.step = worker.step, None
            if step is not None:
                step()
            with self._cond:
                worker.busy_since = None
                self._busy.discard(worker)
                self._idle.append(worker)
                self._cond.notify()


class Steps:
    """One device's steps: at most one waits for its time, and one runs at a time."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.pending: _Due | None = None
        self._running = 0
        """Steps of this device running now: 1, or 2 for the moment a step that scheduled the
        next one at once takes to return."""
        self._soon = False
        self._idle = threading.Event()
        self._idle.set()

    def run_at(self, delay: float, step: Callable[[], None]) -> None:
        """Run `step` in `delay` seconds (at once after `wake`), instead of what waited."""
        with self.workers._cond:
            if self._soon:
                self._soon, delay = False, 0.0
            self._put(delay, step)

    def _put(self, delay: float, step: Callable[[], None]) -> None:
        self._idle.clear()
        self.pending = _Due(time.monotonic() + delay, next(self.workers._seq), step, self)
        self.workers._add(self.pending)

    def wake(self) -> None:
        """The step that waits runs now; one that runs now is followed at once by the next."""
        with self.workers._cond:
            if self.pending is not None:
                self._put(0.0, self.pending.step)
            else:
                self._soon = self._running > 0

    def cancel(self) -> None:
        """Nothing more runs (a step running now ends as it does)."""
        with self.workers._cond:
            self.pending = None
            if not self._running:
                self._idle.set()

    def join(self, timeout: float | None) -> bool:
        """Wait until no step runs or waits; whether that came."""
        return self._idle.wait(timeout)

    def run(self, step: Callable[[], None]) -> None:
        with self.workers._cond:
            self._running += 1
        try:
            step()
        except Exception:
            log.exception("unexpected error in a device session's step")
        finally:
            with self.workers._cond:
                self._running -= 1
                if self.pending is None and not self._running:
                    self._idle.set()
