"""Log in to (and optionally arm) 256 simulated devices; report time, RSS and shutdown.

    .venv/bin/python bench/bench_login.py [--devices 256] [--arm]

The simulator runs in its own process (one process, one port per device), so the RSS is
hikd's alone. Reference, measured in the same run in a fresh process: the bare library
logging in to the same devices in a plain sequential loop (no hikd code).
Targets (issue 2/3): all logged in <= 2 s, RSS <= 80 MB (armed: <= 2 s, <= 150 MB),
shutdown of all sessions <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import PASSWORD, ROOT, start_simulator


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0



def bare_library(ports: list[int]) -> dict[str, float]:
    """The reference: the vendor library alone, a sequential Login_V40 loop through cffi."""
    from hikd.sdk.ffi import ffi
    from hikd.sdk.library import Library

    sdk = Library.open()
    base = rss_mb()
    start = time.perf_counter()
    users = []
    for port in ports:
        info = ffi.new("NET_DVR_USER_LOGIN_INFO *")
        info.sDeviceAddress = b"127.0.0.1"
        info.wPort = port
        info.sUserName = b"admin"
        info.sPassword = PASSWORD.encode()
        info.byLoginMode = 1
        out = ffi.new("NET_DVR_DEVICEINFO_V40 *")
        user = sdk.lib.NET_DVR_Login_V40(info, out)
        assert user >= 0, sdk.last_error()
        users.append(user)
    login_s = time.perf_counter() - start
    rss = rss_mb()
    start = time.perf_counter()
    for user in users:
        sdk.lib.NET_DVR_Logout(user)
    logout_s = time.perf_counter() - start
    return {"login_s": login_s, "rss_mb": rss, "rss_after_init_mb": base, "logout_s": logout_s}


def hikd_sessions(ports: list[int], arm: bool) -> dict[str, float]:
    import queue

    from hikd.config import DeviceConfig
    from hikd.devices.closing import close_sessions
    from hikd.devices.session import DeviceSession, SessionHooks
    from hikd.sdk.alarms import (
        ArmingOptions,
        MessageCallback,
        set_message_callback,
        setup_alarm_channel,
    )
    from hikd.sdk.library import Library
    from hikd.sdk.raw import RawAlarm

    sdk = Library.open()
    base = rss_mb()
    inbox: queue.SimpleQueue[RawAlarm] = queue.SimpleQueue()
    callback = MessageCallback(inbox.put)
    set_message_callback(sdk, callback)
    handles: dict[str, int] = {}

    def arm_hook(session: DeviceSession) -> None:
        assert session.user_id is not None
        handles[session.name] = setup_alarm_channel(sdk, session.user_id, ArmingOptions())

    def disarm_hook(session: DeviceSession) -> None:
        handle = handles.pop(session.name, None)
        if handle is not None:
            sdk.lib.NET_DVR_CloseAlarmChan_V30(handle)

    sessions = []
    for i, port in enumerate(ports):
        hooks = SessionHooks(
            on_login=[arm_hook] if arm else [], before_logout=[disarm_hook] if arm else []
        )
        config = DeviceConfig(name=f"cam-{i:03d}", host="127.0.0.1", port=port, password=PASSWORD)
        sessions.append(DeviceSession(sdk, config, lambda _e: None, hooks))
    start = time.perf_counter()
    for session in sessions:
        session.start()
    for session in sessions:
        assert session.wait_online(30), session.last_error
    if arm:
        deadline = time.monotonic() + 30
        while len(handles) < len(sessions) and time.monotonic() < deadline:
            time.sleep(0.005)
    ready_s = time.perf_counter() - start
    rss = rss_mb()
    threads = len(os.listdir("/proc/self/task"))
    start = time.perf_counter()
    late = close_sessions(sessions, timeout_s=5.0)
    shutdown_s = time.perf_counter() - start
    return {
        "ready_s": ready_s,
        "rss_mb": rss,
        "rss_after_init_mb": base,
        "shutdown_s": shutdown_s,
        "late": late,
        "threads": threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=256)
    parser.add_argument("--arm", action="store_true")
    parser.add_argument("--part", choices=["bare", "hikd"], help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        ports = [int(p) for p in args.ports.split(",")]
        from hikd.sdk.library import Library

        try:
            result = bare_library(ports) if args.part == "bare" else hikd_sessions(ports, args.arm)
        finally:
            # A process that exits with the library's threads still running can crash in
            # the interpreter's teardown: always clean up.
            Library.open().cleanup()
        print(json.dumps(result))
        return

    sim, ports = start_simulator(args.devices)
    try:
        results = {}
        for part in ("bare", "hikd"):
            cmd = [sys.executable, __file__, "--part", part, "--ports", ",".join(map(str, ports))]
            if args.arm:
                cmd.append("--arm")
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                raise SystemExit(f"{part} failed:\n{out.stderr[-3000:]}")
            results[part] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        sim.terminate()
        sim.wait(10)
    bare, ours = results["bare"], results["hikd"]
    what = "logged in and armed" if args.arm else "logged in"
    print(f"{args.devices} devices {what}")
    print(
        f"  hikd:          {ours['ready_s']:.2f} s, RSS {ours['rss_mb']:.0f} MB "
        f"({ours['rss_after_init_mb']:.0f} MB after init), {ours['threads']:.0f} threads"
    )
    print(f"  bare library:  {bare['login_s']:.2f} s sequential login, RSS {bare['rss_mb']:.0f} MB")
    print(
        f"  ratio time hikd/bare: {ours['ready_s'] / bare['login_s']:.2f}x, "
        f"RSS hikd/bare: {ours['rss_mb'] / bare['rss_mb']:.2f}x"
    )
    print(
        f"  shutdown (close + logout, bounded at 5 s): hikd {ours['shutdown_s']:.2f} s, "
        f"bare sequential logout {bare['logout_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
