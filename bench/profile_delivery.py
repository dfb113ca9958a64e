"""Where hikd's CPU per alarm goes: per-thread CPU and py-spy samples of `hikd run` under
the load of bench_delivery.py (simulator -> hikd -> outbox -> MQTT -> subscriber).

    .venv/bin/python bench/profile_delivery.py [--devices 32] [--rate 1000] [--seconds 8]
        [--raw FILE]

Needs py-spy (``pip install py-spy``) and the right to trace the process (root, or
``kernel.yama.ptrace_scope = 0``). Prints:

1. CPU per alarm of each thread of every hikd process (``/proc/<pid>/task/*/stat``; the
   vendor library's own threads are named by the kernel, Python threads by py-spy);
2. µs per alarm per step of the alarm path: py-spy's samples of each Python thread
   (``--nonblocking``, so the process is never stopped) are attributed to the innermost
   frame of a known step and scaled to that thread's measured CPU.

Sampling is a statistical picture: a step that gets under ~2 % of samples is noise.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_delivery import (
    DiskReader,
    run_step,
    start_broker,
    start_hikd,
    stop,
)
from common import process_tree, start_simulator, thread_cpu
from mqtt_subscriber import RawSubscriber

# Step of the alarm path -> a pattern of a frame (function (file)) that belongs to it; the
# innermost match in a sample wins, so list the more specific first.
STEPS = [
    # py-spy counts a thread blocked here as active now and then: not CPU, left out.
    ("waiting", r"^(Condition\.wait|Event\.wait|Client\._loop \(paho/mqtt/client\.py:1667\))"),
    ("outbox: read rows", r"\(hikd/delivery/outbox[\w_]*\.py\).*\bread\b|_decode|from_stored"),
    ("outbox: ack", r"\back \(hikd/delivery/outbox"),
    ("outbox: append", r"\bappend \(hikd/delivery/outbox"),
    ("event JSON", r"to_json \(hikd/events\.py\)|orjson|msgspec"),
    ("MQTT: topics and retained state", r"\(hikd/sinks/mqtt/(topics|retained|state|facts)\.py\)"),
    ("MQTT: paho", r"\(paho/"),
    ("MQTT sink", r"\(hikd/sinks/mqtt/"),
    ("disk sink", r"\(hikd/sinks/disk/"),
    ("syslog sink", r"\(hikd/sinks/syslog/"),
    ("sink worker", r"\(hikd/delivery/sink_worker\.py\)"),
    ("bus", r"\(hikd/delivery/bus\.py\)"),
    ("device host: messages, publisher", r"\(hikd/hosts/|\(multiprocessing/"),
    ("decode", r"\(hikd/listeners/decode/"),
    ("alarm state", r"\(hikd/listeners/alarm_state\.py\)"),
    ("alarm pipeline", r"\(hikd/listeners/pipeline\.py\)"),
    ("SDK callback", r"\(hikd/sdk/"),
    ("logging", r"\((structlog|logging)/|\(hikd/logs\.py\)"),
    ("events", r"\(hikd/events\.py\)"),
]
STEP_RES = [(name, re.compile(pattern)) for name, pattern in STEPS]


def python_thread_names(pid: int) -> dict[int, str]:
    """tid -> Python thread name, from ``py-spy dump``."""
    out = subprocess.run(
        ["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    names = {}
    for m in re.finditer(r'Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): "([^"]*)"', out):
        names[int(m.group(1), 0)] = m.group(2)
    return names


def step_of(frames: list[str]) -> str:
    if frames and STEP_RES[0][1].search(frames[-1]):
        return "waiting"
    for frame in reversed(frames):  # innermost first
        for name, pattern in STEP_RES:
            if pattern.search(frame):
                return name
    return "other"


def read_samples(raw: Path) -> dict[int, collections.Counter[str]]:
    """tid -> Counter(step -> samples), from py-spy's raw (collapsed) output with
    ``--threads``: ``process 1:"..";thread (0x1A2B);frame;frame count``."""
    per_thread: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        tid = 0
        for i, frame in enumerate(frames):
            m = re.match(r"thread \((0x[0-9A-Fa-f]+|\d+)\)", frame)
            if m:
                tid = int(m.group(1), 0)
                frames = frames[i + 1 :]
                break
        per_thread[tid][step_of(frames)] += int(count)
    return per_thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw samples here")
    args = parser.parse_args()
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"

    sim, ports = start_simulator(args.devices)
    with tempfile.TemporaryDirectory(prefix="hikd-profile-") as tmp:
        work = Path(tmp)
        broker, broker_port = start_broker(work)
        sub = RawSubscriber(broker_port)
        hikd = start_hikd(work, ports, broker_port, None)
        try:
            deadline = time.monotonic() + 60
            while sum(1 for _, p in list(sub.received) if b'"type":"armed"' in p) < len(ports):
                if time.monotonic() > deadline or hikd.poll() is not None:
                    raise SystemExit("hikd did not arm every device")
                time.sleep(0.1)
            time.sleep(1.0)
            pids = process_tree(hikd.pid)
            names = {tid: n for pid in pids for tid, n in python_thread_names(pid).items()}
            raw = args.raw or work / "samples.txt"
            spy = subprocess.Popen(
                ["py-spy", "record", "--nonblocking", "--threads", "--subprocesses",
                 "--format", "raw", "--rate", "250", "--output", str(raw),
                 "--pid", str(hikd.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
            before = {pid: thread_cpu(pid) for pid in pids}
            disk = DiskReader(work / "state" / "events" / "events.jsonl")
            step = run_step(args.rate, args.seconds, ports, hikd, sub, disk, set(), {})
            after = {pid: thread_cpu(pid) for pid in pids}
            spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
            spy.wait(30)
        finally:
            stop(hikd)
            sub.close()
            stop(broker)
            stop(sim)
        samples = read_samples(raw)

    alarms = max(1, step.sent)
    print(
        f"{args.devices} devices, {args.rate} alarms/s for {args.seconds:g} s: {step.sent} "
        f"alarms, {step.missing} missing, {step.drain_s:.1f} s behind; hikd CPU "
        f"{step.cpu_s / alarms * 1e6:.0f} us/alarm"
    )
    print(f"\n{'thread':40} {'us/alarm':>9}")
    steps: collections.Counter[str] = collections.Counter()
    rows = []
    for pid in pids:
        for tid, (kname, cpu1) in after[pid].items():
            cpu0 = before[pid].get(tid, (kname, 0.0))[1]
            used = cpu1 - cpu0
            if used <= 0:
                continue
            label = names.get(tid, f"[{kname}]")
            rows.append((used, f"{'supervisor' if pid == hikd.pid else 'device host'}: {label}"))
            counts = samples.get(tid)
            if counts and tid in names:
                total = sum(n for name, n in counts.items() if name != "waiting")
                for name, n in counts.items():
                    if name != "waiting" and total:
                        steps[name] += used * n / total
            else:
                steps[f"native threads ({kname})" if tid not in names else "unsampled"] += used
    grouped: collections.Counter[str] = collections.Counter()
    for used, label in rows:
        grouped[re.sub(r"\d+$", "N", label)] += used
    for label, used in grouped.most_common():
        print(f"{label:40} {used / alarms * 1e6:>9.1f}")
    print(f"\n{'step':40} {'us/alarm':>9}")
    for name, used in steps.most_common():
        print(f"{name:40} {used / alarms * 1e6:>9.1f}")
    print(f"{'total':40} {sum(steps.values()) / alarms * 1e6:>9.1f}")


if __name__ == "__main__":
    main()
