"""Events per second through bus + outbox + disk sink, against writing the file directly.

Run: ``.venv/bin/python bench/bench_pipeline.py [--events N]``

* pipeline: `EventBus.publish()` of N prepared events until the disk sink has acknowledged
  all of them (stored in the SQLite outbox first, JSON lines written and fsynced per batch).
* reference, same run and same disk: the same events serialised and written straight to
  a file with one fsync per 500 events, no outbox, no threads.
* latency: events published one at a time (the next after the previous was sent), time
  from `publish()` to the disk sink's `send()` receiving the event; p50 and p99.

Targets: >= 20,000 events/s and p50 <= 1 ms. The printed ratio is pipeline/reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import Outbox
from hikd.events import DeviceRef, Event
from hikd.logs import setup_logging
from hikd.sinks.base import SinkContext
from hikd.sinks.disk.sink import DiskSink, DiskSinkConfig

BATCH = 500


def make_events(n: int) -> list[Event]:
    device = DeviceRef("nvr-1", "DS-7608NI-K2/8P0820190101CCRRC12345678WCVU", "192.0.2.10:8000")
    return [
        Event(
            kind="alarm",
            type="motion",
            state="start" if i % 2 == 0 else "stop",
            device=device,
            channel=1 + i % 8,
            attributes={"input": i % 4, "n": i},
        )
        for i in range(n)
    ]


class TimedDiskSink(DiskSink):
    """The disk sink, noting when each event reaches send()."""

    def __init__(self, config: DiskSinkConfig, context: SinkContext) -> None:
        super().__init__(config, context)
        self.seen: dict[str, int] = {}
        self.count = 0
        self.done = threading.Condition()

    def send(self, batch: Sequence[Event]) -> int:
        now = time.perf_counter_ns()
        for event in batch:
            self.seen.setdefault(event.id, now)
        sent = super().send(batch)
        with self.done:
            self.count += sent
            self.done.notify_all()
        return sent

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        with self.done:
            if not self.done.wait_for(lambda: self.count >= count, timeout):
                raise SystemExit(f"only {self.count} of {count} events delivered in {timeout} s")


def run_pipeline(directory: Path, events: list[Event]) -> float:
    outbox = Outbox(directory / "outbox.sqlite")
    sink = TimedDiskSink(
        DiskSinkConfig(path=directory / "disk"), SinkContext("disk", directory, {})
    )
    bus = EventBus(outbox, [("disk", sink)], max_queued=len(events) + 1)
    bus.start()
    try:
        start = time.perf_counter()
        for event in events:
            bus.publish(event)
        sink.wait_for(len(events))
        elapsed = time.perf_counter() - start
    finally:
        bus.stop()
        outbox.close()
    return len(events) / elapsed


def run_reference(directory: Path, events: list[Event]) -> float:
    start = time.perf_counter()
    fd = os.open(directory / "reference.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for i in range(0, len(events), BATCH):
            data = b"".join((e.to_json() + "\n").encode() for e in events[i : i + BATCH])
            os.write(fd, data)
            os.fsync(fd)
    finally:
        os.close(fd)
    return len(events) / (time.perf_counter() - start)


def run_latency(directory: Path, events: list[Event]) -> list[float]:
    outbox = Outbox(directory / "outbox-latency.sqlite")
    sink = TimedDiskSink(
        DiskSinkConfig(path=directory / "disk-latency"), SinkContext("disk", directory, {})
    )
    bus = EventBus(outbox, [("disk", sink)])
    bus.start()
    latencies: list[float] = []
    try:
        for n, event in enumerate(events, 1):
            published = time.perf_counter_ns()
            bus.publish(event)
            sink.wait_for(n)
            latencies.append((sink.seen[event.id] - published) / 1e6)
    finally:
        bus.stop()
        outbox.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--latency-events", type=int, default=2_000)
    args = parser.parse_args()
    setup_logging("warning", "console")  # keep the outbox's info lines out of the results
    with tempfile.TemporaryDirectory(prefix="hikd-bench-") as tmp:
        directory = Path(tmp)
        reference = run_reference(directory, make_events(args.events))
        pipeline = run_pipeline(directory, make_events(args.events))
        latencies = run_latency(directory, make_events(args.latency_events))
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"events:     {args.events}")
    print(
        f"reference:  {reference:10,.0f} events/s  (JSON lines straight to a file, "
        f"fsync per {BATCH})"
    )
    print(f"pipeline:   {pipeline:10,.0f} events/s  (bus + SQLite outbox + disk sink)")
    print(f"ratio:      {pipeline / reference:10.2f}  (pipeline / reference)")
    print(
        f"latency:    p50 {p50:.3f} ms, p99 {p99:.3f} ms  (publish -> send, "
        f"{len(latencies)} events one at a time)"
    )
    ok = pipeline >= 20_000 and p50 <= 1.0
    print(f"targets (>= 20,000 events/s, p50 <= 1 ms): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
