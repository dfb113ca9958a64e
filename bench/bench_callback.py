"""The vendor library and hikd's alarm callback alone: the C callback against the Python one.

    .venv/bin/python bench/bench_callback.py [--devices 32] [--rate 1000] [--seconds 8]
        [--rounds 2] [--decode-us 0,300]

The real vendor library arms the simulator's devices with hikd's own callback (the route
``HIKD_PY_CALLBACK`` picks, `hikd.listeners.intake.AlarmIntake`), and one thread takes the
copied alarms as the device host's decoder does. ``--decode-us N`` makes that thread hold
the interpreter's lock for N µs of Python per alarm (the decoder's work in a device host is
~300-400 µs per alarm, bench/README): the contention the C callback is there to avoid.
Each route and decoder load runs in its own process, alternating, `--rounds` times.

Per run: the process's CPU per alarm (all its threads) and the vendor library's threads'
alone; sent -> callback (the simulator's send time to the callback's receive stamp) and
sent -> taken (to the decoder thread having it), p50 / p99. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any

from common import PASSWORD, pct, start_simulator, thread_cpu

SENT_NS = re.compile(rb'hikdSimSentNs(?:>|":\s*"?)(\d+)')
TYPES = "VMD,linedetection,fielddetection,tamperdetection"


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    import queue

    from hikd.listeners.intake import AlarmIntake
    from hikd.sdk.alarms import set_message_callback
    from hikd.sdk.ffi import ffi
    from hikd.sdk.library import Library

    sim, ports = start_simulator(args.devices)
    try:
        sdk = Library.open()
        intake: AlarmIntake[None] = AlarmIntake()
        set_message_callback(sdk, intake.message_callback("arming"))
        for port in ports:
            info = ffi.new("NET_DVR_USER_LOGIN_INFO *")
            info.sDeviceAddress, info.wPort = b"127.0.0.1", port
            info.sUserName, info.sPassword, info.byLoginMode = b"admin", PASSWORD.encode(), 1
            user = sdk.lib.NET_DVR_Login_V40(info, ffi.new("NET_DVR_DEVICEINFO_V40 *"))
            param = ffi.new("NET_DVR_SETUPALARM_PARAM *")
            param.dwSize = ffi.sizeof(param[0])
            if sdk.lib.NET_DVR_SetupAlarmChan_V41(user, param) < 0:
                raise SystemExit(f"could not arm the device on port {port}")
        # realtime - monotonic: the callback stamps CLOCK_REALTIME, the simulator MONOTONIC.
        offset = time.time_ns() - time.monotonic_ns()
        taken: list[tuple[int, int, int]] = []  # (sent, callback, taken), monotonic ns
        done = threading.Event()
        spin_s = args.decode_us / 1e6

        def decoder() -> None:
            while not done.is_set():
                try:
                    raw = intake.get(0.25)
                except queue.Empty:
                    continue
                now = time.monotonic_ns()
                match = SENT_NS.search(raw.payload)
                if match:
                    taken.append((int(match.group(1)), raw.received_ns - offset, now))
                end = time.perf_counter() + spin_s
                while time.perf_counter() < end:  # the decoder's Python, holding the lock
                    pass

        thread = threading.Thread(target=decoder, name="alarm-decoder", daemon=True)
        thread.start()
        time.sleep(2.0)
        taken.clear()
        pid = os.getpid()
        before = thread_cpu(pid)
        out = subprocess.run(
            [sys.executable, "-m", "hikd.sim", "scenario", "--port", str(ports[0]),
             "--rate", str(args.rate), "--devices", str(len(ports)), "--duration",
             str(args.seconds), "--types", TYPES],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        sent = int(json.loads(out.stdout)["sent"])
        ended = time.monotonic()
        while len(taken) < sent and time.monotonic() - ended < 30:
            time.sleep(0.05)
        behind_s = time.monotonic() - ended
        after = thread_cpu(pid)
        done.set()
    finally:
        sim.terminate()
        sim.wait(30)
    # Python threads: this one (asleep) and the decoder; every other thread is the library's.
    natives = {t.native_id for t in threading.enumerate()} | {thread.native_id}
    library = decoding = 0.0
    for tid, (name, cpu) in after.items():
        used = cpu - before.get(tid, (name, 0.0))[1]
        if tid == thread.native_id:
            decoding += used
        elif tid not in natives:
            library += used
    alarms = max(1, sent)
    to_callback = [(c - s) / 1e6 for s, c, _ in taken]
    to_taken = [(t - s) / 1e6 for s, _, t in taken]
    return {
        "sent": sent,
        "taken": len(taken),
        "behind_s": round(behind_s, 2),
        "cpu_us": sum(c - before.get(t, (n, 0.0))[1] for t, (n, c) in after.items()) / alarms * 1e6,
        "library_us": library / alarms * 1e6,
        "decoder_us": decoding / alarms * 1e6,
        "callback_p50": pct(to_callback, 0.5),
        "callback_p99": pct(to_callback, 0.99),
        "taken_p50": pct(to_taken, 0.5),
        "taken_p99": pct(to_taken, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--decode-us", default="0,300", help="decoder loads to run, in µs")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.decode_us = float(args.decode_us)
        print(json.dumps(one_run(args)))
        return
    print(
        f"{args.devices} devices, {args.rate} alarms/s for {args.seconds} s; "
        "µs of CPU per alarm, ms from the simulator's send"
    )
    print(
        f"{'route':7}{'decode µs':>10}{'taken':>7}{'CPU':>7}{'library':>9}{'decoder':>9}"
        f"{'->callback p50/p99':>21}{'->taken p50/p99':>18}{'load':>6}"
    )
    for _ in range(args.rounds):
        for decode_us in [d for d in args.decode_us.split(",") if d]:
            for route in ("c", "python"):
                env = {k: v for k, v in os.environ.items() if k != "HIKD_PY_CALLBACK"}
                if route == "python":
                    env["HIKD_PY_CALLBACK"] = "1"
                out = subprocess.run(
                    [sys.executable, __file__, "--one", "--devices", str(args.devices),
                     "--rate", str(args.rate), "--seconds", str(args.seconds),
                     "--decode-us", decode_us],
                    env=env, check=True, capture_output=True, text=True,
                )  # fmt: skip
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(
                    f"{route:7}{decode_us:>10}{r['taken']:>7}{r['cpu_us']:>7.0f}"
                    f"{r['library_us']:>9.0f}{r['decoder_us']:>9.0f}"
                    f"{r['callback_p50']:>12.2f} /{r['callback_p99']:>7.2f}"
                    f"{r['taken_p50']:>9.2f} /{r['taken_p99']:>7.2f}"
                    f"{os.getloadavg()[0]:>6.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
