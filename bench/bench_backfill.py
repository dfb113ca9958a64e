"""Fault run for backfill (issue 9): alarms lost while no alert stream was open, without and
with backfill, in the same run.

    .venv/bin/python bench/bench_backfill.py [--alarms 36000] [--rate 600] [--outage 5]

Simulated devices (hikd.sim, in this process, loopback) raise `--alarms` alarms at `--rate`
per second, each on its own (type, channel); meanwhile the link breaks three times for
`--outage` seconds: the alert streams are cut and refused, the device restarts (sessions
forgotten, streams cut), and hikd itself is stopped and started again. The real vendor
library and the daemon do the rest. Run twice, `backfill = false` then `true`; for each run:
alarms raised while no stream was open (the simulator knows), how many of those reached the
sinks afterwards (matched by device, kind, channel and device second, one to one), and
backfilled events that match no missed alarm (published twice). Bounded: the whole run ends
within about 2 x (alarms / rate + 3 x outage + 60) seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-Passw0rd"
KINDS = {"VMD": "motion", "tamperdetection": "tamper", "linedetection": "smart"}
SMART = {"smart_detection", "line_crossing"}


def _class(event_type: str) -> str:
    return "smart" if event_type in SMART else event_type


def run(sdk: Any, backfill: bool, args: argparse.Namespace) -> dict[str, Any]:
    from hikd.config import load_config
    from hikd.daemon import Daemon
    from hikd.hosts.device_host import DeviceHost
    from hikd.sim import SimDeviceConfig, Simulator

    sim = Simulator(
        [
            SimDeviceConfig(
                name=f"nvr{i}",
                password=PASSWORD,
                ip_channels=args.channels,
                log_entries=0,
                utc_offset_minutes=60,
                heartbeat_s=5,
            )
            for i in range(args.devices)
        ]
    )
    sim.start()
    ledger = Ledger()

    class WatchedHost(DeviceHost):
        """The device host, with the ledger watching the decoder before any session starts."""

        def _start_backfill(self, state_dir: Path) -> None:
            assert self.pipeline is not None
            self.pipeline.watchers.append(ledger.watch)
            super()._start_backfill(state_dir)

    class Watched(Daemon):
        host_class = WatchedHost

    def start_daemon() -> Daemon:
        daemon = Watched(config, observers=[ledger.observe], sdk=sdk)
        daemon.start()
        return daemon

    with tempfile.TemporaryDirectory() as tmp:
        lines = [
            "[sdk]",
            "reconnect_interval_ms = 1000",
            "[arming]",
            "retry_s = 1",
            "[daemon]",
            f'state_dir = "{tmp}/state"',
            "[sinks.disk]",
            f'path = "{tmp}/events"',
        ]
        for dev in sim.devices:
            os.environ[f"HIKD_PASSWORD_{dev.name.upper()}"] = PASSWORD
            lines += [
                "[[devices]]",
                f'name = "{dev.name}"',
                'host = "127.0.0.1"',
                f"port = {dev.port}",
                "reconnect_min_s = 0.2",
                f"backfill = {'true' if backfill else 'false'}",
            ]
        path = Path(tmp) / "hikd.toml"
        path.write_text("\n".join(lines) + "\n")
        config = load_config(path)
        daemon = start_daemon()
        try:
            _wait(lambda: all(d.stream_count for d in sim.devices), 30)
            daemon = _drive(sim, daemon, start_daemon, args)
            _wait(lambda: _quiet(ledger, 5.0), 90)
        finally:
            daemon.stop()
            sim.stop()
    return _count(sim, ledger)


def _drive(sim: Any, daemon: Any, start_daemon: Any, args: argparse.Namespace) -> Any:
    """Raise the alarms at the rate, with the three faults at 20 %, 50 % and 80 %."""

    faults = {
        int(args.alarms * f): name for f, name in ((0.2, "cut"), (0.5, "restart"), (0.8, "hikd"))
    }
    kinds = list(KINDS)
    devices = sim.devices
    started = time.monotonic()
    outage_end: float | None = None
    restore: Any = None
    for i in range(args.alarms):
        fault = faults.get(i)
        if outage_end is not None and (fault or time.monotonic() >= outage_end):
            restore()  # an outage ends before the next begins
            outage_end = None
        if fault in ("cut", "restart"):
            for device in devices:
                device.alert_stream_status = 500
                if fault == "restart":
                    device.forget_sessions()
                device.close_streams()
            outage_end = time.monotonic() + args.outage

            def restore_streams() -> None:
                for device in devices:
                    device.alert_stream_status = 200

            restore = restore_streams
        elif fault == "hikd":
            daemon.stop()
            outage_end = time.monotonic() + args.outage

            def restart_hikd() -> None:
                nonlocal daemon
                daemon = start_daemon()

            restore = restart_hikd
        device = devices[i % len(devices)]
        rest = i // len(devices)
        kind = kinds[rest % len(kinds)]
        channel = 1 + (rest // len(kinds)) % args.channels
        device.trigger(kind, channel=channel, push=False)
        delay = started + (i + 1) / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    if outage_end is not None:
        time.sleep(max(0.0, outage_end - time.monotonic()))
        restore()
    return daemon


class Ledger:
    """What reached hikd: every decoded live alarm (the pipeline's watchers, as backfill
    sees them) and every published event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: Counter[tuple[str, str, int, int]] = Counter()
        self.published: list[Any] = []

    def watch(self, event: Any) -> None:
        if event.kind == "alarm" and event.state != "stop" and not event.attributes.get("resent"):
            with self.lock:
                self.live[_key(event)] += 1

    def observe(self, event: Any) -> None:
        if event.kind in ("alarm", "health"):
            with self.lock:
                self.published.append(event)


def _key(event: Any) -> tuple[str, str, int, int]:
    where = event.attributes.get("alarm_input") if event.type == "io" else event.channel
    return (event.device.name, _class(event.type), where or 0, int(event.time.timestamp()))


def _count(sim: Any, ledger: Ledger) -> dict[str, Any]:
    raised: Counter[tuple[str, str, int, int]] = Counter()
    unarmed: Counter[tuple[str, str, int, int]] = Counter()
    for device in sim.devices:
        for sent in device.sent:
            second = int(datetime.fromisoformat(sent.date_time).timestamp())
            key = (device.name, KINDS[sent.type], sent.channel, second)
            raised[key] += 1
            if sent.streams == 0:
                unarmed[key] += 1
    recovered: Counter[tuple[str, str, int, int]] = Counter()
    for event in ledger.published:
        marked = event.attributes.get("backfilled") or event.attributes.get("resent")
        if event.kind == "alarm" and marked and event.state != "stop":
            recovered[_key(event)] += 1
    reached = ledger.live + recovered
    # The log and the alert read the device clock apart: allow one second either way.
    lost = raised - reached
    extra = reached - raised
    for key in list(lost):
        for near in (key[3] - 1, key[3] + 1):
            other = (*key[:3], near)
            paired = min(lost[key], extra[other])
            if paired:
                lost[key] -= paired
                extra[other] -= paired
    reports = [e for e in ledger.published if e.kind == "health" and e.type == "backfill"]
    lost_unarmed = sum(min(unarmed[k], lost[k]) for k in unarmed)
    return {
        "raised": sum(raised.values()),
        "raised_while_unarmed": sum(unarmed.values()),
        "lost": sum(lost.values()),
        "lost_while_unarmed": lost_unarmed,
        "published_twice": sum(extra.values()),
        "gaps": len(reports),
        "backfilled": sum(int(r.attributes.get("backfilled", 0)) for r in reports),
    }


def _quiet(ledger: Ledger, seconds: float) -> bool:
    with ledger.lock:
        last = ledger.published[-1].received.timestamp() if ledger.published else 0.0
    return time.time() - last >= seconds


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=36_000)
    parser.add_argument("--rate", type=float, default=600.0)
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--channels", type=int, default=32)
    args = parser.parse_args()
    from hikd.sdk.library import Library, SdkSettings

    # One library for both runs and hikd's restart inside them, as the tests do.
    sdk = Library.open(None, SdkSettings(reconnect_interval_ms=1000))
    try:
        for backfill in (False, True):
            _report(backfill, run(sdk, backfill, args))
    finally:
        sdk.cleanup()
    return 0


def _report(backfill: bool, result: dict[str, Any]) -> None:
    label = "with backfill   " if backfill else "without backfill"
    print(
        f"{label}: {result['raised']} alarms raised, {result['raised_while_unarmed']} while "
        f"no stream was open; lost: {result['lost']} in all, {result['lost_while_unarmed']} "
        f"of those raised while no stream was open; {result['published_twice']} published "
        f"twice; {result['gaps']} gaps reported, {result['backfilled']} alarms backfilled",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
