"""`hikd sim`: run simulated devices until Ctrl-C / SIGTERM, or drive running ones.

    hikd sim [--port 8080] [--devices N] [--https] [--username admin] [--password ...]
             [--serial ...] [--analog N] [--ip-channels N] [--config sim.toml]
    hikd sim trigger --port P --type VMD --channel 2 [--state active] [--pictures 1] [--json]
    hikd sim scenario --port P --rate 1000 --devices 32 --types VMD,linedetection --duration 10
    hikd sim status --port P

Running devices prints one line per device: `name host port scheme serial`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from hikd.errors import UserError
from hikd.sim import remote
from hikd.sim.config import SimDeviceConfig, load_sim_config, numbered, validate_device
from hikd.sim.simulator import Simulator

SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "trigger": remote.trigger_main,
    "scenario": remote.scenario_main,
    "status": remote.status_main,
}
"""`hikd sim <word> ...`: commands that drive a simulator already running."""


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hikd sim",
        description="Run simulated Hikvision devices (ISAPI over HTTP/HTTPS) until stopped.",
    )
    p.add_argument("--config", type=Path, help="TOML file describing the devices")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port of the first device (default 8080; 0 = free)")
    p.add_argument("--devices", type=int, default=None, help="number of devices (default 1)")
    p.add_argument("--https", action="store_true", default=None, help="serve HTTPS")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--serial", dest="serial_number", help="serial number (suffixed per device)")
    p.add_argument("--name", help="device name (suffixed -01, -02.. with --devices)")
    p.add_argument("--type", dest="device_type", choices=["IPCamera", "IPDome", "DVR", "NVR"])
    p.add_argument("--analog", dest="analog_channels", type=int, help="analog channels")
    p.add_argument("--ip-channels", type=int, help="IP channels")
    p.add_argument("--alarm-inputs", type=int)
    p.add_argument("--alarm-outputs", type=int)
    p.add_argument("--lock-after", type=int, help="wrong passwords before the user is locked")
    p.add_argument("--lock-seconds", type=int)
    p.add_argument("--session-id-version", choices=["2", "2.1", "3"])
    p.add_argument("--heartbeat", dest="heartbeat_s", type=float, help="alert stream heartbeat, s")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p


def configs_from_args(args: argparse.Namespace) -> list[SimDeviceConfig]:
    keys = (
        "host", "port", "https", "username", "password", "serial_number", "name",
        "device_type", "analog_channels", "ip_channels", "alarm_inputs", "alarm_outputs",
        "lock_after", "lock_seconds", "session_id_version", "heartbeat_s",
    )  # fmt: skip
    overrides: dict[str, Any] = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.config is not None:
        configs = load_sim_config(args.config, overrides)
        if args.devices is not None and len(configs) == 1:
            configs = [numbered(configs[0], i, args.devices) for i in range(args.devices)]
        return configs
    overrides.setdefault("port", 8080)
    base = validate_device(overrides, "")
    count = 1 if args.devices is None else args.devices
    if count < 1:
        raise UserError("--devices must be at least 1")
    return [numbered(base, i, count) for i in range(count)]


def run(argv: list[str]) -> int:
    args = run_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    sim = Simulator(configs_from_args(args))
    try:
        sim.start()
        for dev in sim.devices:
            print(f"{dev.name} {dev.host} {dev.port} {dev.scheme} {dev.config.serial_number}")
        sys.stdout.flush()
        print(f"hikd sim: {len(sim.devices)} device(s) ready; Ctrl-C to stop", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: list[str]) -> int:
    """Entry point of `hikd sim ...` and `python -m hikd.sim ...`; returns the exit code."""
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]](argv[1:])
        return run(argv)
    except UserError as exc:
        print(f"hikd sim: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
