"""Where an alarm waits between the simulator and the MQTT subscriber, hop by hop.

`bench_delivery.py --hops` runs `hikd run` with ``HIKD_HOPS`` set (`hikd.delivery.hops`):
each process notes the monotonic time at which each event passes each hop and writes them
when it exits. Joined here with what the simulator wrote into each alarm (its send time)
and the event's own receive time (the vendor library's callback, wall clock), and with the
subscriber's receipt:

    sent      the simulator writes the alarm to the device's alert stream
    callback  the vendor library calls hikd's callback (the event's `received`)
    dequeued  the decoder takes the message from its queue
    decoded   the decoder has the start/stop event
    storing   its batch goes to the outbox (after the rest of the messages decoded with it)
    committed the device host's outbox transaction has committed
    woken     the supervisor's wake thread reads the host's byte (the first read after
              the commit)
    read      the MQTT sink's worker has the event from the outbox, handing it to the sink
    written   the MQTT sink has published its batch: written to the socket, or handed to
              paho's network thread (TLS) (a sink with batches in flight only)
    received  the subscriber has it (from mosquitto)
    acked     the MQTT sink's send() returned (PUBACK), after the subscriber in most cases
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from common import pct

SINK_HOPS = {"read:mqtt": "read", "written:mqtt": "written", "sent:mqtt": "acked"}
"""The MQTT sink's hops by their names here."""

ORDER = (
    "sent",
    "callback",
    "dequeued",
    "decoded",
    "storing",
    "committed",
    "woken",
    "read",
    "written",
    "received",
)


@dataclass(frozen=True)
class Arrival:
    """A start alarm the subscriber received: its id and the times the bench knows."""

    id: str
    received_ns: int
    sent_ns: int
    callback_wall: str
    """The event's `received` (ISO 8601, wall clock)."""


def read_hops(
    directory: Path, pauses: dict[str, list[float]], window: tuple[int, int], supervisor: int
) -> tuple[dict[str, dict[str, int]], list[int]]:
    """{event id: {hop: ns}} (the first time an event passed a hop) and the wake-ups; the
    garbage collector's pauses (ms) within `window` go into `pauses` by process (the
    `supervisor`'s pid, or a device host) and generation."""
    by_id: dict[str, dict[str, int]] = defaultdict(dict)
    wakes: list[int] = []
    for path in directory.glob("hops-*.txt"):
        process = "supervisor" if path.stem == f"hops-{supervisor}" else "host"
        for line in path.read_text().splitlines():
            hop, ns, event_id = line.split(" ")
            if hop.startswith("gc"):
                if window[0] <= int(ns) <= window[1]:
                    pauses[f"{process} {hop}"].append(int(event_id) / 1e6)
            elif event_id == "-":
                wakes.append(int(ns))
            else:
                name = SINK_HOPS.get(hop, hop)
                by_id[event_id].setdefault(name, int(ns))
    wakes.sort()
    return by_id, wakes


def hop_table(
    arrivals: list[Arrival], directory: Path, wall_minus_mono_ns: int, supervisor: int
) -> dict[str, tuple[float, float]]:
    """{"a -> b": (p50 ms, p99 ms)} for each hop, and "sent -> received" in all; the
    garbage collector's pauses while these alarms were on their way."""
    pauses: dict[str, list[float]] = defaultdict(list)
    window = (
        min((a.sent_ns for a in arrivals), default=0),
        max((a.received_ns for a in arrivals), default=0),
    )
    by_id, wakes = read_hops(directory, pauses, window, supervisor)
    steps: dict[str, list[float]] = defaultdict(list)
    for a in arrivals:
        times = dict(by_id.get(a.id, {}))
        times["sent"], times["received"] = a.sent_ns, a.received_ns
        wall = datetime.fromisoformat(a.callback_wall).timestamp()
        times["callback"] = round(wall * 1e9) - wall_minus_mono_ns
        if "committed" in times and wakes:
            at = bisect.bisect_left(wakes, times["committed"])
            # A sink that was reading anyway may find the rows before the wake-up is read.
            if at < len(wakes) and wakes[at] <= times.get("read", wakes[at]):
                times["woken"] = wakes[at]
        present = [h for h in ORDER if h in times]
        for before, after in pairwise(present):
            steps[f"{before} -> {after}"].append((times[after] - times[before]) / 1e6)
        if "acked" in times and "read" in times:
            steps["read -> acked"].append((times["acked"] - times["read"]) / 1e6)
        steps["sent -> received (all)"].append((a.received_ns - a.sent_ns) / 1e6)
    table = {name: (pct(v, 0.5), pct(v, 0.99)) for name, v in steps.items()}
    for generation, lengths in sorted(pauses.items()):
        table[f"{generation} pause ({len(lengths)}x, max {max(lengths):.1f})"] = (
            pct(lengths, 0.5),
            pct(lengths, 0.99),
        )
    return table


def print_hops(table: dict[str, tuple[float, float]], count: int) -> None:
    print(f"\nHop by hop ({count} start alarms; ms between one hop and the next):")
    print(f"{'hop':34} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (p50, p99) in table.items():
        print(f"{name:34} {p50:>8.3f} {p99:>8.3f}")
