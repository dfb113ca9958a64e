"""Idle cost: `hikd run` with 256 armed, silent devices next to the bare vendor library
arming the same devices (issue 12: hikd's idle must not exceed the library's own).

    .venv/bin/python bench/bench_idle.py [--devices 256] [--seconds 20] [--rounds 2]

The simulator runs in its own process; its devices send only their heartbeat. Each round
measures hikd (every process of `hikd run`: supervisor and device hosts) and then the bare
library (a process that logs in, arms every device with a callback that only copies, and
sleeps), each for `--seconds` after arming settled, in % of one core. Rounds alternate so
that the machine's other load falls on both alike; the spread between rounds says how noisy
it was. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PASSWORD, ROOT, start_simulator, tree_cpu_s


def measure(pid: int, seconds: float) -> float:
    """% of one core `pid` (and its children) used over `seconds`."""
    cpu0, t0 = tree_cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (tree_cpu_s(pid) - cpu0) / (time.monotonic() - t0) * 100


def bare(ports: list[int]) -> None:
    """The reference process: arm every device with a copy-only callback, say ready, sleep."""
    from hikd.sdk.ffi import ffi
    from hikd.sdk.library import Library

    sdk = Library.open()
    kept: list[bytes] = []

    def on_message(command: int, alarmer: Any, info: Any, length: int, user: Any) -> None:
        data = ffi.cast("NET_DVR_ALARM_ISAPI_INFO *", info)
        kept.append(ffi.buffer(data.pAlarmData, data.dwAlarmDataLen)[:])
        del kept[:-10]

    signature = "void(int, NET_DVR_ALARMER *, char *, unsigned int, void *)"
    callback = ffi.callback(signature, on_message)
    sdk.lib.NET_DVR_SetDVRMessageCallBack_V30(callback, ffi.NULL)
    armed = 0
    for port in ports:
        info = ffi.new("NET_DVR_USER_LOGIN_INFO *")
        info.sDeviceAddress, info.wPort = b"127.0.0.1", port
        info.sUserName, info.sPassword, info.byLoginMode = b"admin", PASSWORD.encode(), 1
        user = sdk.lib.NET_DVR_Login_V40(info, ffi.new("NET_DVR_DEVICEINFO_V40 *"))
        param = ffi.new("NET_DVR_SETUPALARM_PARAM *")
        param.dwSize = ffi.sizeof(param[0])
        armed += sdk.lib.NET_DVR_SetupAlarmChan_V41(user, param) >= 0
    print(f"ready {armed}", flush=True)
    sys.stdin.readline()  # until told to stop
    os._exit(0)  # the library's threads need no goodbye here


def start_hikd(workdir: Path, ports: list[int]) -> subprocess.Popen[bytes]:
    lines = [
        "[daemon]", f'state_dir = "{workdir / "state"}"',
        "[logging]", 'level = "warning"', 'format = "json"',
        "[sinks.disk]", f'path = "{workdir / "events"}"',
    ]  # fmt: skip
    for i, port in enumerate(ports):
        lines += ["[[devices]]", f'name = "cam{i:03d}"', 'host = "127.0.0.1"', f"port = {port}",
                  f'password = "{PASSWORD}"']  # fmt: skip
    config = workdir / "hikd.toml"
    config.write_text("\n".join(lines) + "\n")
    log = open(workdir / "hikd.log", "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "-m", "hikd", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def armed_count(events: Path) -> int:
    try:
        text = (events / "events.jsonl").read_bytes()
    except OSError:
        return 0
    return text.count(b'"type":"armed"')


def hikd_round(ports: list[int], seconds: float) -> float:
    with tempfile.TemporaryDirectory(prefix="hikd-idle-") as tmp:
        work = Path(tmp)
        hikd = start_hikd(work, ports)
        try:
            deadline = time.monotonic() + 120
            while armed_count(work / "events") < len(ports):
                if time.monotonic() > deadline or hikd.poll() is not None:
                    tail = (work / "hikd.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"hikd did not arm every device:\n{tail}")
                time.sleep(0.2)
            time.sleep(5.0)  # the start-up burst (health, discovery) settles
            return measure(hikd.pid, seconds)
        finally:
            hikd.terminate()
            try:
                hikd.wait(30)
            except subprocess.TimeoutExpired:
                hikd.kill()
                hikd.wait()


def bare_round(ports: list[int], seconds: float) -> tuple[float, int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--part", "bare", "--ports", ",".join(map(str, ports))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the library's own start-up line
        text=True,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise SystemExit("the bare library did not arm")
        time.sleep(5.0)
        return measure(proc.pid, seconds), int(line[1])
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--part", choices=["bare"], help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        bare([int(p) for p in args.ports.split(",")])
        return
    sim, ports = start_simulator(args.devices)
    hikd: list[float] = []
    library: list[float] = []
    try:
        for _ in range(args.rounds):
            hikd.append(hikd_round(ports, args.seconds))
            cpu, armed = bare_round(ports, args.seconds)
            library.append(cpu)
    finally:
        sim.terminate()
        sim.wait(30)
    print(
        f"Idle: {args.devices} armed, silent devices, {args.seconds:g} s per measurement, "
        f"{args.rounds} rounds alternating (% of one core; the bare library armed {armed})"
    )
    print(f"{'':28} {'rounds':>24} {'mean':>7}")
    for label, values in (("hikd run (all processes)", hikd), ("bare vendor library", library)):
        rounds = " ".join(f"{v:6.1f}" for v in values)
        print(f"{label:28} {rounds:>24} {sum(values) / len(values):>7.1f}")
    h, b = sum(hikd) / len(hikd), sum(library) / len(library)
    print(f"  hikd / bare library: {h / b:.2f}x (target <= 1.0)" if b else "")


if __name__ == "__main__":
    main()
