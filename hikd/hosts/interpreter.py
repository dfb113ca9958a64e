"""Interpreter settings of hikd's long-running processes: the supervisor and each device host.

Measured with `bench/bench_delivery.py --hops` and `bench/bench_host_path.py` (bench/README.md,
"Where an alarm waits"):

* **The switch interval.** A thread that wants the GIL while another runs Python code waits
  up to `sys.getswitchinterval()` (5 ms by default) before it asks for it. The supervisor
  shortens it (`set_up`): its wake thread and the sinks' workers trade the GIL with paho's
  thread. A device host keeps the default: with 0.5 ms its decoder gave the GIL up to one of
  the vendor library's callback threads (one per armed device) ten times as often, and on a
  busy machine it then waited for a thread the kernel had not scheduled yet (p50 to the
  outbox 1.1-1.3 ms with 5 ms, 1.4-8.8 ms with 0.5 ms, three rounds each, alternating).
* **The cyclic garbage collector.** A collection stops every thread of the process. What a
  process builds at its start (configuration, modules, the vendor library's declarations,
  sessions) lives as long as the process: frozen, it is never walked again (a device host's
  full collection of it took 16-118 ms under load, once every few seconds).
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_S = 0.0005
"""How long a thread of the supervisor that wants the GIL waits before it asks for it."""

SUPERVISOR_GC_THRESHOLDS = (700, 1000, 10)
"""The supervisor keeps the last second of events in memory (the outbox's recent events
until the watch acknowledges them, `hikd.observe.watch.HOLD_S`: ~30,000 objects at 1,000
alarms/s), and the collector's older generations walked them four times a second: 2-3 ms
each, and a full collection of 20-40 ms every few seconds. A young-generation collection
(every 700 new objects) stays as it is; the middle one runs a hundred times less often, and
so does the full one."""


def set_up() -> None:
    """At the supervisor's start, before its threads (not in a device host: see above)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def started(thresholds: tuple[int, int, int] | None = None) -> None:
    """Once what lives as long as the process is built: never walk it again; `thresholds`
    for the collector's generations, where given."""
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
