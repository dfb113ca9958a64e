"""The supervisor's delivery side alone: outbox -> sinks (MQTT, disk, the watch) -> subscriber.

    .venv/bin/python bench/bench_supervisor.py [--rate 1000] [--seconds 8] [--rounds 2]
        [--tree DIR ...] [--profile]

A feeder process stores alarms into the outbox at a fixed rate the way a device host does
(`OutboxAppender`, one INSERT per batch of whatever is due, then one byte on a wake pipe; each
alarm is a start and a stop, as with ``[alarms.hold_s] default = 0``); the supervisor's
delivery side runs in a process of its own (the daemon's bus, its MQTT and disk sinks and the
watch, built by `Daemon._build_bus`; a thread relays the wake pipe to
`EventBus.others_stored`, as a device host's handle does); mosquitto and a QoS 1 subscriber
of ``hikd/+/events`` run beside it. No vendor library, no simulator: the numbers do not
move with the device host's cost.

Each `--tree` is a checkout of hikd (default: this one); the runs alternate between them,
`--rounds` times each, so that a comparison is made on the same machine at the same time.
Prints per run: the supervisor's CPU per alarm (all its threads, and per thread), the
latency from the event's ``received`` time to the subscriber (p50, p99), and loss (events
missing at the subscriber or in the disk sink's file). With `--profile`, py-spy's samples
split each thread's CPU into the steps of `profile_delivery.py`. Asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_delivery import start_broker, stop
from common import ROOT, pct, thread_cpu

DRAIN_S = 20.0
"""How long a run waits for the last events after the load."""


# -- the parts that run in other processes (``--part``) ----------------------------------
def supervisor_part(config: Path, wake_fd: int) -> None:
    """The delivery side of `hikd run`, without device hosts."""
    import gc

    from hikd.config import load_config
    from hikd.daemon import Daemon
    from hikd.logs import setup_logging

    cfg = load_config(config)
    setup_logging(cfg.logging.level, cfg.logging.format)
    daemon = Daemon(cfg, hosts="processes")
    sys.setswitchinterval(0.0005)  # as Daemon.start
    Path(cfg.daemon.state_dir).mkdir(parents=True, exist_ok=True)
    bus = daemon._build_bus(Path(cfg.daemon.state_dir))
    sends: collections.Counter[str] = collections.Counter()  # per sink: sends, events sent
    for worker in bus._workers:
        worker.sink.send = _counted(worker.name, worker.sink.send, sends)  # type: ignore[method-assign]
        if hasattr(worker.sink, "send_ahead"):  # a windowed sink's batches (MQTT)
            worker.sink.send_ahead = _counted(worker.name, worker.sink.send_ahead, sends)
    bus.start()
    daemon.observation.start(bus.stats)
    gc.freeze()

    stopping = threading.Event()

    def relay() -> None:  # what `hikd.hosts.handle` does with a host's wake pipe
        with os.fdopen(wake_fd, "rb", buffering=0) as pipe:
            while pipe.read(4096):
                bus.others_stored()
        # The feeder has closed its end; this thread does the MQTT sink's work on each
        # wake-up (`deliver_now`): it stays until the stop, so its CPU time is still read.
        stopping.wait()

    threading.Thread(target=relay, name="hikd-host-0-wake", daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "threads":
            names = {t.native_id: t.name for t in threading.enumerate()}
            print(json.dumps({"names": names, "sends": sends}), flush=True)
        elif line.strip() == "stop":
            break
    stopping.set()
    daemon.observation.stop()
    bus.stop()


def _counted(name: str, send: Any, sends: collections.Counter[str]) -> Any:
    """`send`, counting its calls and events: a run that falls behind sends larger batches,
    and the CPU per alarm falls with it; the CPU per send says what a batch costs."""

    def counted(batch: Any, *args: Any, **kwargs: Any) -> Any:
        sends[name] += 1
        sends[name + " events"] += len(batch)
        return send(batch, *args, **kwargs)

    return counted


def feeder_part(state_dir: Path, rate: int, seconds: float, devices: int, wake_fd: int) -> None:
    """Store `rate` alarms a second (a start and a stop each) for `seconds`."""
    from hikd.delivery.outbox_append import OutboxAppender
    from hikd.events import DeviceRef, Event

    names = [DeviceRef(f"cam{i:02d}", serial=f"DS-2CD2{i:04d}", address="127.0.0.1")
             for i in range(devices)]  # fmt: skip
    wake = os.fdopen(wake_fd, "wb", buffering=0)
    appender = OutboxAppender(state_dir, [], on_commit=lambda: wake.write(b"!"))
    total = int(rate * seconds)
    sent = 0
    took: list[float] = []  # seconds per append (a commit that checkpoints the WAL fsyncs)
    start = time.monotonic()
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        batch = []
        for n in range(sent, due):
            device = names[n % devices]
            attributes = {"event_type": "VMD", "description": "Motion alarm",
                          "active_post_count": 1, "channel_name": f"Camera {n % 4 + 1}",
                          "target": {"x": 0.25, "y": 0.5, "width": 0.1, "height": 0.2}}  # fmt: skip
            for state in ("start", "stop"):
                batch.append(Event("alarm", "motion", state, device, channel=n % 4 + 1,  # type: ignore[arg-type]
                                   attributes=attributes, raw={"command": "0x4993"}))  # fmt: skip
        if batch:
            began = time.monotonic()
            appender.append(batch)
            took.append(time.monotonic() - began)
            sent = due
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    appender.close()
    print(sent, pct(took, 0.99) * 1e3, max(took) * 1e3, flush=True)


# -- the orchestra -------------------------------------------------------------------------
class Subscriber:
    """QoS 1 on ``hikd/+/events``: the wall-clock time of every message."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.received: list[tuple[float, bytes]] = []
        subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
        self._client.on_message = lambda c, u, m: self.received.append((time.time(), m.payload))
        self._client.on_subscribe = lambda *a: subscribed.set()
        self._client.connect("127.0.0.1", port, keepalive=60)
        self._client.loop_start()
        self._client.subscribe("hikd/+/events", qos=1)
        if not subscribed.wait(10):
            raise SystemExit("the MQTT subscriber got no SUBACK")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def run_once(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory(prefix="hikd-bench-supervisor-") as tmp:
        work = Path(tmp)
        broker, broker_port = start_broker(work)
        state = work / "state"
        config = work / "hikd.toml"
        config.write_text("\n".join([
            "[daemon]", f'state_dir = "{state}"', f'runtime_dir = "{work / "run"}"',
            "[logging]", 'level = "warning"', 'format = "json"',
            "[sinks.disk]", f'path = "{state / "events"}"', "max_bytes = 4000000000",
            "[sinks.mqtt]", 'host = "127.0.0.1"', f"port = {broker_port}",
            'client_id = "hikd-bench"', "discovery = false",
        ]) + "\n")  # fmt: skip
        sub = Subscriber(broker_port)
        read_fd, write_fd = os.pipe()
        me = str(Path(__file__).resolve())
        supervisor = subprocess.Popen(
            [sys.executable, me, "--part", "supervisor", "--config", str(config),
             "--wake-fd", str(read_fd)],
            pass_fds=(read_fd,), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=tree, env=env,
        )  # fmt: skip
        os.close(read_fd)
        spy: subprocess.Popen[bytes] | None = None
        try:
            assert supervisor.stdin is not None and supervisor.stdout is not None
            if supervisor.stdout.readline().strip() != "ready":
                raise SystemExit("the supervisor did not start")
            time.sleep(2.0)  # the MQTT sink connects
            raw = work / "samples.txt"
            if args.profile:
                spy = subprocess.Popen(
                    ["py-spy", "record", "--nonblocking", "--threads", "--format", "raw",
                     "--rate", "250", "--output", str(raw), "--pid", str(supervisor.pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(1.0)
            sub.received.clear()
            before = {t: cpu for t, (_, cpu) in thread_cpu(supervisor.pid).items()}
            feeder = subprocess.Popen(
                [sys.executable, me, "--part", "feeder", "--state", str(state),
                 "--rate", str(args.rate), "--seconds", str(args.seconds),
                 "--devices", str(args.devices), "--wake-fd", str(write_fd)],
                pass_fds=(write_fd,), stdout=subprocess.PIPE, text=True, cwd=tree, env=env,
            )  # fmt: skip
            os.close(write_fd)
            out, _ = feeder.communicate()
            numbers = [float(v) for v in out.split()]
            sent, append_p99, append_max = int(numbers[0]), numbers[1], numbers[2]
            events = 2 * sent
            deadline = time.monotonic() + DRAIN_S
            while len(sub.received) < events and time.monotonic() < deadline:
                time.sleep(0.02)
            after = {t: cpu for t, (_, cpu) in thread_cpu(supervisor.pid).items()}
            supervisor.stdin.write("threads\n")
            supervisor.stdin.flush()
            answer = json.loads(supervisor.stdout.readline())
            names = {int(k): v for k, v in answer["names"].items()}
            sends = answer["sends"]
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
                if args.raw is not None:
                    shutil.copy(raw, args.raw)
            supervisor.stdin.write("stop\n")
            supervisor.stdin.flush()
            supervisor.wait(30)
        finally:
            if spy is not None:
                stop(spy)
            stop(supervisor)
            sub.close()
            stop(broker)
        latencies = []
        ids = set()
        for at, payload in sub.received:
            event = json.loads(payload)
            ids.add(event["id"])
            latencies.append((at - datetime.fromisoformat(event["received"]).timestamp()) * 1e3)
        disk = {line[7:43] for line in (state / "events" / "events.jsonl").read_bytes().splitlines()
                if b'"kind":"alarm"' in line}  # fmt: skip
        per_thread: collections.Counter[str] = collections.Counter()
        for tid, cpu in after.items():
            used = cpu - before.get(tid, 0.0)
            if used > 0:
                per_thread[names.get(tid, "(ended or native)")] += used
        steps: collections.Counter[str] = collections.Counter()
        if args.profile:
            from profile_delivery import read_samples

            samples = read_samples(raw)
            for tid, cpu in after.items():
                used = cpu - before.get(tid, 0.0)
                counts = samples.get(tid)
                total = sum(n for s, n in counts.items() if s != "waiting") if counts else 0
                if used <= 0 or not total or counts is None:
                    continue
                for step, n in counts.items():
                    if step != "waiting":
                        steps[step] += used * n / total
        alarms = max(1, sent)
        return {
            "alarms": sent,
            "missing_mqtt": events - len(ids),
            "missing_disk": events - len(disk),
            "cpu_us": sum(per_thread.values()) / alarms * 1e6,
            "threads": {k: v / alarms * 1e6 for k, v in per_thread.items()},
            "steps": {k: v / alarms * 1e6 for k, v in steps.items()},
            "p50_ms": pct(latencies, 0.5),
            "p99_ms": pct(latencies, 0.99),
            "mqtt_batch": sends.get("mqtt events", 0) / max(1, sends.get("mqtt", 0)),
            "disk_batch": sends.get("disk events", 0) / max(1, sends.get("disk", 0)),
            "mqtt_us_per_send": per_thread["hikd-sink-mqtt"] / max(1, sends.get("mqtt", 0)) * 1e6,
            "append_p99_ms": append_p99,
            "append_max_ms": append_max,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="alarms per second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tree", type=Path, action="append", help="a hikd checkout")
    parser.add_argument("--profile", action="store_true", help="py-spy: CPU per step")
    parser.add_argument("--raw", type=Path, help="with --profile: keep py-spy's samples here")
    parser.add_argument("--part", choices=["supervisor", "feeder"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part == "supervisor":
        supervisor_part(args.config, args.wake_fd)
        return
    if args.part == "feeder":
        feeder_part(args.state, args.rate, args.seconds, args.devices, args.wake_fd)
        return
    if args.profile:
        os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
        if shutil.which("py-spy") is None:
            raise SystemExit("py-spy is not installed: pip install py-spy")
    trees = [t.resolve() for t in args.tree or [ROOT]]
    results: dict[Path, list[dict[str, Any]]] = {t: [] for t in trees}
    for round_ in range(args.rounds):
        for tree in trees:
            r = run_once(tree, args)
            results[tree].append(r)
            print(
                f"round {round_ + 1} {tree.name}: {r['alarms']} alarms, missing "
                f"{r['missing_mqtt']} mqtt / {r['missing_disk']} disk; supervisor "
                f"{r['cpu_us']:.0f} us/alarm ({r['mqtt_batch']:.1f} events per MQTT send); "
                f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} "
                f"ms; feeder's appends p99 {r['append_p99_ms']:.1f} ms, "
                f"max {r['append_max_ms']:.0f} ms",
                flush=True,
            )
    print(f"\n{args.rate} alarms/s for {args.seconds:g} s, mean of {args.rounds} rounds")
    keys = sorted({k for rs in results.values() for r in rs for k in r["threads"]})
    steps = sorted({k for rs in results.values() for r in rs for k in r["steps"]})
    print(f"{'':32}" + "".join(f"{t.name[:14]:>16}" for t in trees))

    def row(label: str, values: list[float], fmt: str = "{:.1f}") -> None:
        print(f"{label[:32]:32}" + "".join(f"{fmt.format(v):>16}" for v in values))

    def mean(tree: Path, get: Any) -> float:
        return sum(get(r) for r in results[tree]) / len(results[tree])

    row("supervisor us/alarm", [mean(t, lambda r: r["cpu_us"]) for t in trees])
    row("p50 ms", [mean(t, lambda r: r["p50_ms"]) for t in trees], "{:.2f}")
    row("p99 ms", [mean(t, lambda r: r["p99_ms"]) for t in trees], "{:.2f}")
    row("events per send: mqtt", [mean(t, lambda r: r["mqtt_batch"]) for t in trees])
    row("events per send: disk", [mean(t, lambda r: r["disk_batch"]) for t in trees])
    row("hikd-sink-mqtt us per send", [mean(t, lambda r: r["mqtt_us_per_send"]) for t in trees])
    row("missing (mqtt+disk)", [mean(t, lambda r: r["missing_mqtt"] + r["missing_disk"])
                                for t in trees], "{:.0f}")  # fmt: skip
    print("threads, us/alarm")
    for k in keys:
        row("  " + k, [mean(t, lambda r, k=k: r["threads"].get(k, 0.0)) for t in trees])
    if steps:
        print("steps, us/alarm")
        for k in steps:
            row("  " + k, [mean(t, lambda r, k=k: r["steps"].get(k, 0.0)) for t in trees])


if __name__ == "__main__":
    main()
