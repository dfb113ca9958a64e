"""Alarm path benchmark (issue 3): callback cost, in-process throughput, end-to-end latency.

    .venv/bin/python bench/bench_alarms.py [--rate 1000] [--devices 32] [--seconds 5]

Prints, from one run:
1. in-process events/s through decode + start/stop + outbox + disk sink (target >= 20,000),
   next to the same events only JSON-encoded and written with an fsync per batch;
2. end-to-end latency simulator-write -> disk sink written (fsync) at `--rate` over
   `--devices` armed devices (hikd.sim in its own process, the real library), next to the
   library's own floor measured in the same run: a copy-only callback in a bare process
   (reference p99 0.28 ms in sdk-over-isapi.md);
3. how long hikd's message callback takes per message (target: median <= 20 us).
For 256 armed devices (time to arm, RSS) run `bench/bench_login.py --arm`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import PASSWORD, ROOT, pct, start_simulator


# -- 1. in-process throughput ----------------------------------------------------------
def throughput(count: int) -> dict[str, float]:
    from hikd.delivery.bus import EventBus
    from hikd.delivery.outbox import Outbox
    from hikd.events import DeviceRef
    from hikd.listeners.alarm_state import AlarmStateTracker
    from hikd.listeners.decode import DecodeContext
    from hikd.listeners.pipeline import AlarmPipeline, DeviceDirectory
    from hikd.sdk.raw import NO_ALARMER, RawAlarm
    from hikd.sim.alerts import SimAlert, Stamp, render
    from hikd.sim.config import SimDeviceConfig
    from hikd.sinks.base import SinkContext
    from hikd.sinks.disk.sink import DiskSink

    cfg = SimDeviceConfig(name="nvr")
    now = datetime.now(UTC)
    kinds = ["VMD", "linedetection", "fielddetection", "tamperdetection"]
    raws = []
    for i in range(count):
        # Every alarm is a new (channel, type) start followed by its stop, so nothing is
        # swallowed as a repeat: every message becomes one event.
        alert = SimAlert(
            type=kinds[i % 4],
            channel=1 + (i // 8) % 64,
            state="active" if i % 8 < 4 else "inactive",
        )
        stamp = Stamp(i, time.monotonic_ns(), now.isoformat(timespec="seconds"), 80)
        _ctype, body = render(alert, cfg, stamp)
        raws.append(RawAlarm(0x6009, NO_ALARMER, body + b"\r\n", time.time_ns(), data_type=1))

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        sink = DiskSink(
            DiskSink.Config(path=state / "events"), SinkContext("disk", state, {})
        )
        bus = EventBus(Outbox(state / "outbox.sqlite"), [("disk", sink)])
        directory = DeviceDirectory()
        context = DecodeContext(device=DeviceRef("nvr"))
        directory.add("nvr", context, ["127.0.0.1"])
        tracker = AlarmStateTracker({"default": 3600.0})
        pipeline = AlarmPipeline(directory, tracker, bus.publish)
        pipeline._context_for = lambda raw: context  # type: ignore[method-assign]
        bus.start()
        start = time.perf_counter()
        for raw in raws:
            pipeline.handle(raw)
        deadline = time.monotonic() + 120
        while bus.stats()["sinks"]["disk"]["delivered"] < count and time.monotonic() < deadline:
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        delivered = bus.stats()["sinks"]["disk"]["delivered"]
        bus.stop()

        # Reference: the same number of events, JSON-encoded and fsynced per 500.
        from hikd.events import health

        events = [health(DeviceRef("nvr"), "reference") for _ in range(count)]
        start = time.perf_counter()
        with open(state / "reference.jsonl", "w") as out:
            for i in range(0, count, 500):
                out.write("".join(e.to_json() + "\n" for e in events[i : i + 500]))
                out.flush()
                import os

                os.fsync(out.fileno())
        reference = time.perf_counter() - start
    return {
        "events": delivered,
        "per_s": delivered / elapsed,
        "reference_per_s": count / reference,
    }


# -- 2/3. end-to-end latency -----------------------------------------------------------

def scenario(port: int, rate: int, devices: int, seconds: float) -> None:
    subprocess.run(
        [sys.executable, "-m", "hikd.sim", "scenario", "--port", str(port), "--rate", str(rate),
         "--devices", str(devices), "--duration", str(seconds), "--types",
         "VMD,linedetection,fielddetection,tamperdetection"],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def floor_run(ports: list[int], rate: int, seconds: float) -> dict[str, Any]:
    """The bare library with a callback that only copies the payload (in its own process)."""
    import re

    from hikd.sdk.ffi import ffi
    from hikd.sdk.library import Library

    sdk = Library.open()
    arrivals: list[tuple[int, bytes]] = []

    def on_message(command: int, alarmer: Any, info: Any, length: int, user: Any) -> None:
        now = time.monotonic_ns()
        data = ffi.cast("NET_DVR_ALARM_ISAPI_INFO *", info)
        arrivals.append((now, ffi.buffer(data.pAlarmData, data.dwAlarmDataLen)[:]))

    signature = "void(int, NET_DVR_ALARMER *, char *, unsigned int, void *)"
    callback = ffi.callback(signature, on_message)
    sdk.lib.NET_DVR_SetDVRMessageCallBack_V30(callback, ffi.NULL)
    users, handles = [], []
    for port in ports:
        info = ffi.new("NET_DVR_USER_LOGIN_INFO *")
        info.sDeviceAddress, info.wPort = b"127.0.0.1", port
        info.sUserName, info.sPassword, info.byLoginMode = b"admin", PASSWORD.encode(), 1
        user = sdk.lib.NET_DVR_Login_V40(info, ffi.new("NET_DVR_DEVICEINFO_V40 *"))
        param = ffi.new("NET_DVR_SETUPALARM_PARAM *")
        param.dwSize = ffi.sizeof(param[0])
        users.append(user)
        handles.append(sdk.lib.NET_DVR_SetupAlarmChan_V41(user, param))
    time.sleep(0.5)
    scenario(ports[0], rate, len(ports), seconds)
    time.sleep(1.0)
    for handle in handles:
        sdk.lib.NET_DVR_CloseAlarmChan_V30(handle)
    sdk.cleanup()
    pattern = re.compile(rb"hikdSimSentNs>(\d+)<")
    latencies = []
    for now, body in arrivals:
        match = pattern.search(body)
        if match:
            latencies.append((now - int(match.group(1))) / 1e6)
    return {"count": len(latencies), "latencies_ms": latencies}


def hikd_run(ports: list[int], rate: int, seconds: float) -> dict[str, Any]:
    from hikd.config import load_config
    from hikd.daemon import Daemon
    from hikd.events import Event
    from hikd.sdk.alarms import MessageCallback
    from hikd.sinks.disk.sink import DiskSink

    callback_ns: list[int] = []
    original = MessageCallback._on_message

    def timed(self: MessageCallback, *args: Any) -> None:
        start = time.perf_counter_ns()
        original(self, *args)
        callback_ns.append(time.perf_counter_ns() - start)

    MessageCallback._on_message = timed  # type: ignore[method-assign]

    written: list[tuple[int, Event]] = []

    real_send = DiskSink.send

    def probe_send(self: DiskSink, batch: Sequence[Event]) -> int:
        """The disk sink's send, noting when each event was written and fsynced."""
        done = real_send(self, batch)
        now = time.monotonic_ns()
        written.extend((now, e) for e in batch[:done])
        return done

    DiskSink.send = probe_send  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        lines = ["[daemon]", f'state_dir = "{tmp}"', "[logging]", 'level = "warning"',
                 "[alarms.hold_s]", "default = 0.5", "[sinks.disk]", f'path = "{tmp}/events"']
        for i, port in enumerate(ports):
            lines += ["[[devices]]", f'name = "cam{i}"', 'host = "127.0.0.1"', f"port = {port}",
                      f'password = "{PASSWORD}"']
        path = Path(tmp) / "hikd.toml"
        path.write_text("\n".join(lines) + "\n")
        daemon = Daemon(load_config(path))
        daemon.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            daemon.arming and daemon.arming.is_armed(s.name) for s in daemon.sessions
        ):
            time.sleep(0.01)
        time.sleep(0.5)
        scenario(ports[0], rate, len(ports), seconds)
        time.sleep(2.0)
        daemon.stop()
    latencies = [
        (now - int(e.attributes["hikd_sim_sent_ns"])) / 1e6
        for now, e in written
        if e.kind == "alarm" and "hikd_sim_sent_ns" in e.attributes and e.state == "start"
    ]
    return {
        "count": len(latencies),
        "latencies_ms": latencies,
        "callback_us": [ns / 1000 for ns in callback_ns],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--part", choices=["floor", "hikd"], help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        ports = [int(p) for p in args.ports.split(",")]
        run = floor_run if args.part == "floor" else hikd_run
        print(json.dumps(run(ports, args.rate, args.seconds)))
        return

    tp = throughput(args.events)
    print(f"1. in-process decode + start/stop + outbox + disk sink: {tp['per_s']:,.0f} events/s "
          f"({tp['events']:,} events); reference (JSON + fsync per 500, no outbox): "
          f"{tp['reference_per_s']:,.0f} events/s; ratio {tp['per_s'] / tp['reference_per_s']:.2f}")

    results = {}
    for part in ("floor", "hikd"):
        sim, ports = start_simulator(args.devices)
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--part", part, "--ports", ",".join(map(str, ports)),
                 "--rate", str(args.rate), "--seconds", str(args.seconds)],
                capture_output=True, text=True, cwd=ROOT,
            )
            if out.returncode != 0:
                raise SystemExit(f"{part} failed:\n{out.stderr[-3000:]}")
            results[part] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            sim.terminate()
            sim.wait(10)
    floor, ours = results["floor"], results["hikd"]
    sent = int(args.rate * args.seconds)
    f_lat, h_lat = floor["latencies_ms"], ours["latencies_ms"]
    print(f"2. end to end at {args.rate} ev/s over {args.devices} devices ({sent} alarms sent):")
    print(f"   library floor (copy-only callback): {floor['count']} received, "
          f"p50 {pct(f_lat, 0.5):.2f} ms, p99 {pct(f_lat, 0.99):.2f} ms")
    print(f"   hikd sim-write -> disk sink fsynced: {ours['count']} starts written, "
          f"p50 {pct(h_lat, 0.5):.2f} ms, p99 {pct(h_lat, 0.99):.2f} ms "
          f"(p50 ratio {pct(h_lat, 0.5) / pct(f_lat, 0.5):.1f}x the floor)")
    cb = ours["callback_us"]
    print(f"3. hikd message callback: {len(cb)} calls, median {statistics.median(cb):.1f} us, "
          f"p99 {pct(cb, 0.99):.1f} us, max {max(cb):.1f} us")


if __name__ == "__main__":
    main()
