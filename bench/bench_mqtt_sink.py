"""The MQTT sink alone: CPU per alarm of `MqttSink.send` with batches of one alarm.

    .venv/bin/python bench/bench_mqtt_sink.py [--alarms 3000] [--rounds 3] [--tree DIR ...]

Each round sends `--alarms` batches of one alarm (a start and a stop: four messages with their
retained states) to a mosquitto of its own, one after the other, each acknowledged before the
next (what the sink's worker does at 1,000 alarms/s, where every batch is an alarm or two).
Prints the CPU per alarm of the sending thread, of the whole process (with paho's network
thread), and the time per alarm. Batches of a fixed size make the CPU comparable between
runs on a loaded machine, which `bench_supervisor.py`'s cannot be: there a run that falls
behind gets larger batches. Each `--tree` (default: this checkout) runs in turn, `--rounds`
times; the least and the median of the rounds are printed. Asserts nothing.

With `--window` a tree whose sink keeps several batches in flight (`send_ahead`, as its worker
does) gets the batches as fast as it takes them, the way the outbox worker feeds it when
alarms come faster than the broker's round trip; a tree without sends one after the other as
before. The time per alarm is then the highest rate the sink keeps up with.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_delivery import start_broker, stop
from common import ROOT, pct


def sink_part(port: int, alarms: int, window: bool = False) -> None:
    from hikd.events import DeviceRef, Event
    from hikd.sinks.base import SinkContext
    from hikd.sinks.mqtt.config import MqttConfig
    from hikd.sinks.mqtt.sink import MqttSink

    with tempfile.TemporaryDirectory(prefix="hikd-bench-mqtt-") as tmp:
        config = MqttConfig(host="127.0.0.1", port=port, client_id="bench", discovery=False)
        sink = MqttSink(config, SinkContext("mqtt", Path(tmp), {}))
        sink.open()
        devices = [DeviceRef(f"cam{i:02d}", "DS-2CD2043G2", "127.0.0.1") for i in range(32)]
        attributes = {"event_type": "VMD", "description": "Motion alarm", "active_post_count": 1}
        batches = [
            [Event("alarm", "motion", state, devices[n % 32], channel=n % 4 + 1,  # type: ignore[arg-type]
                   attributes=attributes) for state in ("start", "stop")]
            for n in range(alarms + 200)
        ]  # fmt: skip
        for batch in batches:
            for event in batch:
                event.to_json_bytes()  # stored rows come with their JSON
        for batch in batches[:200]:  # warm up
            sink.send(batch)
        thread0, process0, wall0 = time.thread_time(), _process_cpu(), time.monotonic()
        if window and hasattr(sink, "send_ahead"):
            _send_windowed(sink, batches[200:])
        else:
            for batch in batches[200:]:
                sink.send(batch)
        thread1, process1, wall1 = time.thread_time(), _process_cpu(), time.monotonic()
        sink.close()
    print(
        f"{(thread1 - thread0) / alarms * 1e6:.1f} {(process1 - process0) / alarms * 1e6:.1f} "
        f"{(wall1 - wall0) / alarms * 1e6:.1f}"
    )


def _send_windowed(sink: Any, batches: list[Any]) -> None:
    """What `WindowedSinkWorker` does with a sink that always has another batch waiting."""
    woken = threading.Event()
    sink.watch(woken.set)
    left = sum(len(b) for b in batches)
    queue = iter(batches)
    more = True
    while left:
        woken.clear()
        left -= sink.delivered()
        while more and sink.has_room():
            batch = next(queue, None)
            if batch is None:
                more = False
            else:
                sink.send_ahead(batch)
        if left:
            woken.wait(0.05)


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", type=Path, action="append", help="a hikd checkout")
    parser.add_argument("--window", action="store_true", help="batches sent ahead, see above")
    parser.add_argument("--part-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part_port:
        sink_part(args.part_port, args.alarms, args.window)
        return
    trees = [t.resolve() for t in args.tree or [ROOT]]
    results: dict[Path, list[list[float]]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory(prefix="hikd-bench-mqtt-") as tmp:
        broker, port = start_broker(Path(tmp))
        try:
            for round_ in range(args.rounds):
                for tree in trees:
                    out = subprocess.run(
                        [sys.executable, str(Path(__file__).resolve()), "--part-port",
                         str(port), "--alarms", str(args.alarms),
                         *(["--window"] if args.window else [])],
                        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                        capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
                    numbers = [float(v) for v in out.split()[-3:]]
                    results[tree].append(numbers)
                    print(f"round {round_ + 1} {tree.name}: sink thread {numbers[0]:.1f}, "
                          f"process {numbers[1]:.1f} us CPU per alarm; {numbers[2]:.0f} us "
                          "per alarm", flush=True)  # fmt: skip
        finally:
            stop(broker)
    # The least a round took says most about the code: the other engineers' load only adds.
    print(f"\n{'us per alarm: min, median':28}" + "".join(f"{t.name[:14]:>18}" for t in trees))
    for i, label in enumerate(["sink thread CPU", "process CPU", "time"]):
        values = [sorted(r[i] for r in results[t]) for t in trees]
        print(f"{label:28}" + "".join(f"{v[0]:>9.1f}{pct(v, 0.5):>9.1f}" for v in values))


if __name__ == "__main__":
    main()
