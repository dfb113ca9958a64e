"""The device host's part of the alarm path alone: simulator -> device host -> outbox.

    .venv/bin/python bench/bench_host_path.py [--devices 32] [--rate 1000] [--seconds 8]
        [--tree DIR ...] [--rounds 2]

One device host process (`hikd.hosts.handle.HostHandle`, as `hikd run` starts it, with the
real vendor library) on the simulator's devices; no supervisor delivery, no sinks: this
process plays the supervisor and, on each wake-up from the host (one byte per commit),
reads the new outbox rows. Latency is the time that read sees a start minus the
``hikd_sim_sent_ns`` the simulator wrote into the alarm (CLOCK_MONOTONIC is system-wide):
what the host adds before delivery can begin. CPU is the host process's, per thread
(``/proc/<pid>/task/*/stat``), over the paced load.

``--tree`` runs the host of another checkout of hikd (its files, this bench), once per tree
and round, alternating: before/after ratios from one run on a shared machine. ``--routes
c,python`` does the same with the alarm callback's two routes (``HIKD_PY_CALLBACK``) in
each tree.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import thread_cpu

TREE = Path(__file__).resolve().parent.parent
SENT_NS = re.compile(rb'"hikd_sim_sent_ns":\s*"?(\d+)')


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    """In a child process whose sys.path and cwd are `args.tree`."""
    from common import PASSWORD, pct, start_simulator
    from profile_delivery import python_thread_names

    sys.path.insert(0, os.getcwd())  # the tree's hikd (`common` put this bench's first)

    from hikd.config.loader import load_config
    from hikd.hosts.handle import HostHandle, Shared

    sim, ports = start_simulator(args.devices)
    with tempfile.TemporaryDirectory(prefix="hikd-hostpath-") as tmp:
        work = Path(tmp)
        lines = [
            "[daemon]", f'state_dir = "{work}"',
            "[logging]", 'level = "warning"', 'format = "json"',
            "[alarms.hold_s]", "default = 0",
        ]  # fmt: skip
        for i, port in enumerate(ports):
            lines += ["[[devices]]", f'name = "cam{i:02d}"', 'host = "127.0.0.1"',
                      f"port = {port}", f'password = "{PASSWORD}"']  # fmt: skip
        (work / "hikd.toml").write_text("\n".join(lines) + "\n")
        config = load_config(work / "hikd.toml")

        arrived: list[tuple[int, bytes]] = []
        reader: list[sqlite3.Connection] = []
        last = [0]

        def on_stored() -> None:
            if not reader:
                reader.append(sqlite3.connect(work / "outbox.sqlite", check_same_thread=False))
            now = time.monotonic_ns()
            rows = (
                reader[0]
                .execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq", (last[0],))
                .fetchall()
            )
            if rows:
                last[0] = rows[-1][0]
                arrived.extend((now, bytes(body)) for _, body in rows)

        shared = Shared(config, lambda _event: None, on_stored)
        handle = HostHandle(shared, 0, list(config.devices))
        handle.start()
        try:
            deadline = time.monotonic() + 120
            while sum(1 for _, b in list(arrived) if b'"type":"armed"' in b) < len(ports):
                if time.monotonic() > deadline:
                    raise SystemExit("the host did not arm every device")
                time.sleep(0.1)
            time.sleep(1.0)
            pid = handle.pid
            assert pid is not None
            first = len(arrived)
            names = python_thread_names(pid)
            before = thread_cpu(pid)
            out = subprocess.run(
                [sys.executable, "-m", "hikd.sim", "scenario", "--port", str(ports[0]),
                 "--rate", str(args.rate), "--devices", str(len(ports)), "--duration",
                 str(args.seconds), "--types", "VMD,linedetection,fielddetection,tamperdetection"],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            sent = int(json.loads(out.stdout)["sent"])
            ended = time.monotonic()
            starts = 0
            while time.monotonic() - ended < 30:
                starts = sum(1 for _, b in arrived[first:] if b'"state":"start"' in b[:200])
                if starts >= sent:
                    break
                time.sleep(0.05)
            behind_s = time.monotonic() - ended
            after = thread_cpu(pid)
        finally:
            shared.stopping.set()
            handle.join(30)
            handle.kill()
            sim.terminate()
            sim.wait(30)
    latencies = []
    for now, body in arrived[first:]:
        if b'"state":"start"' in body[:200] and (m := SENT_NS.search(body)):
            latencies.append((now - int(m.group(1))) / 1e6)
    threads: collections.Counter[str] = collections.Counter()
    for tid, (name, cpu) in after.items():
        used = cpu - before.get(tid, (name, 0.0))[1]
        if used > 0:
            threads[re.sub(r"\d+$", "N", names.get(tid, f"[{name}]"))] += used
    alarms = max(1, sent)
    return {
        "sent": sent,
        "stored_starts": starts,
        "behind_s": round(behind_s, 2),
        "p50_ms": pct(latencies, 0.5),
        "p90_ms": pct(latencies, 0.9),
        "p99_ms": pct(latencies, 0.99),
        "cpu_us": sum(threads.values()) / alarms * 1e6,
        "threads_us": {k: v / alarms * 1e6 for k, v in threads.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tree", type=Path, action="append", help="a checkout of hikd")
    parser.add_argument(
        "--routes", default="", help="c,python: alternate the alarm callback's routes"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args)))
        return
    routes = [r for r in args.routes.split(",") if r] or [""]
    runs = [(tree, route) for tree in args.tree or [TREE] for route in routes]
    results: dict[tuple[Path, str], list[dict[str, Any]]] = {run: [] for run in runs}
    for _ in range(args.rounds):
        for tree, route in runs:
            env = {
                **os.environ,
                "PYTHONPATH": f"{tree}:{Path(__file__).parent}",
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            }  # py-spy
            env.pop("HIKD_PY_CALLBACK", None)
            if route == "python":
                env["HIKD_PY_CALLBACK"] = "1"
            out = subprocess.run(
                [sys.executable, __file__, "--one", "--devices", str(args.devices),
                 "--rate", str(args.rate), "--seconds", str(args.seconds)],
                cwd=tree, env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results[(tree, route)].append(result)
            print(
                f"{tree} {route}: {result['sent']} alarms, "
                f"{result['stored_starts']} starts stored, "
                f"p50 {result['p50_ms']:.2f} ms, p90 {result['p90_ms']:.2f}, "
                f"p99 {result['p99_ms']:.2f}, host CPU {result['cpu_us']:.0f} us/alarm "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    names = sorted({n for rs in results.values() for r in rs for n in r["threads_us"]})
    heads = "".join(f"{(t.name[:12] + ' ' + r).strip()[:13]:>14}" for t, r in runs)
    print(f"\n{'us/alarm':28}" + heads)
    for name in [*names, "total"]:
        cells = []
        for run in runs:
            values = [r["cpu_us"] if name == "total" else r["threads_us"].get(name, 0.0)
                      for r in results[run]]  # fmt: skip
            cells.append("/".join(f"{v:.0f}" for v in values))
        print(f"{name[:28]:28}" + "".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    main()
