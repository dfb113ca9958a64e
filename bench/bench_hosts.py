"""Device hosts (issue 11): memory of armed devices over all processes, and the time from a
host's crash to its devices armed again.

    .venv/bin/python bench/bench_hosts.py [--devices 256] [--hosts 1 2] [--crashes 3]
        [--against OTHER_TREE ...] [--rounds 2]

`hikd run` (the supervisor and its device hosts) against the simulator in its own process,
every device armed. Per number of hosts: RSS and PSS summed over hikd's processes
(`common.tree_rss_mb`), CPU of the whole tree while armed and idle (`common.tree_cpu_s`),
and per crash (SIGKILL of one host, taking turns; with one host the next crash waits a
minute, since a host that crashes again within a minute of its start is restarted with
backoff) the seconds until every device of that host is armed again (its ``armed`` health
event on disk). Reference, same run: the same devices in one process
(``Daemon(hosts="inline")``, as before the device hosts).
Targets: crash -> re-armed <= 6 s; RSS of 256 armed devices over all processes <= 160 MB.

Before/after in one run: ``--against DIR`` (a checkout of another commit, e.g. ``git worktree
add /tmp/old main``) runs that tree's `hikd run` too, alternating with this one ``--rounds``
times (same simulator, same interpreter and packages), and prints each tree's numbers and
their ratios to this tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from common import (
    PASSWORD,
    ROOT,
    pct,
    process_tree,
    start_simulator,
    stop_gently,
    tree_cpu_s,
    tree_rss_mb,
)

INLINE = """
import sys
from pathlib import Path
from hikd.config import load_config
from hikd.daemon import Daemon
from hikd.logs import setup_logging
config = load_config(Path(sys.argv[1]))
setup_logging("warning", "json")
daemon = Daemon(config, hosts="inline")
daemon.start()
try:
    daemon.run_forever()
finally:
    daemon.stop()
"""


def write_config(tmp: Path, ports: list[int], hosts: int) -> Path:
    lines = [
        "[daemon]",
        f'state_dir = "{tmp / "state"}"',
        f"device_hosts = {hosts}",
        "[logging]",
        'format = "json"',
        "[sinks.disk]",
        f'path = "{tmp / "events"}"',
    ]
    for i, port in enumerate(ports):
        lines += ["[[devices]]", f'name = "cam-{i:03d}"', 'host = "127.0.0.1"', f"port = {port}"]
    path = tmp / "hikd.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Armed:
    """Device -> ``armed`` events on disk so far, read on from where the last look ended
    (re-reading every file at each look competed with hikd for the CPU)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counts: dict[str, int] = {}
        self._read: dict[Path, int] = {}

    def __call__(self) -> dict[str, int]:
        for path in sorted(self.folder.glob("*.jsonl")):
            start = self._read.get(path, 0)
            with open(path, "rb") as file:
                file.seek(start)
                data = file.read()
            end = data.rfind(b"\n") + 1
            self._read[path] = start + end
            for line in data[:end].splitlines():
                if b'"armed"' in line:
                    event = json.loads(line)
                    if event["type"] == "armed":
                        name = event["device"]["name"]
                        self.counts[name] = self.counts.get(name, 0) + 1
        return dict(self.counts)


def wait(condition: Callable[..., bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def host_pids(log: Path) -> dict[int, tuple[int, list[str]]]:
    """Host index -> (pid, devices) of its latest start, from hikd's log."""
    found: dict[int, tuple[int, list[str]]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"device host started"' in line:
            entry = json.loads(line)
            found[int(entry["device_host"])] = (int(entry["pid"]), list(entry["devices"]))
    return found


def phases(log: Path, crashed_pid: int) -> dict[str, float]:
    """Seconds from the crash (the supervisor's log line) to the new host's start, its
    library ready, its first login, and its last ``armed``."""
    marks: dict[str, float] = {}
    t0 = None
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        when = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
        event = entry.get("event")
        if event == "device host crashed; starting it again" and entry.get("pid") == crashed_pid:
            t0 = when
        elif t0 is not None:
            name = {
                "device host started": "started",
                "vendor library ready": "library",
                "logged in": "first_login",
            }.get(str(event))
            if name and name not in marks:
                marks[name] = when - t0
            if event == "armed":
                marks["last_armed"] = when - t0
    return {k: round(v, 2) for k, v in marks.items()}


def run(
    ports: list[int], hosts: int, crashes: int, inline: bool, tree: Path = ROOT
) -> dict[str, Any]:
    env = {
        **os.environ,
        **{f"HIKD_PASSWORD_CAM_{i:03d}": PASSWORD for i in range(len(ports))},
        "PYTHONPATH": str(tree),  # that tree's hikd, in `hikd run` and in its hosts
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        config = write_config(tmp, ports, hosts)
        log = tmp / "hikd.log"
        armed = Armed(tmp / "events")
        command = (
            [sys.executable, "-c", INLINE, str(config)]
            if inline
            else [sys.executable, "-m", "hikd", "run", "--config", str(config)]
        )
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=tree, env=env
            )
        try:
            start = time.monotonic()
            try:
                wait(lambda: len(armed()) == len(ports), 180, "every device armed")
            except SystemExit:
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            result: dict[str, Any] = {"armed_s": time.monotonic() - start}
            time.sleep(2.0)  # settle: the last sessions' facts, the outbox's first writes
            result["rss_mb"], result["pss_mb"] = tree_rss_mb(proc.pid)
            result["supervisor_rss_mb"] = tree_rss_mb(proc.pid, children=False)[0]
            result["processes"] = len(process_tree(proc.pid))
            cpu0, t0 = tree_cpu_s(proc.pid), time.monotonic()
            time.sleep(5.0)
            result["idle_cpu_pct"] = 100 * (tree_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0)
            # Again once idle (threads that only served the start, such as session workers
            # with nothing left to do, have ended), and how many threads all processes run.
            result["idle_rss_mb"] = tree_rss_mb(proc.pid)[0]
            result["threads"] = sum(
                len(os.listdir(f"/proc/{p}/task")) for p in process_tree(proc.pid)
            )
            times: list[float] = []
            for n in range(0 if inline else crashes):
                index = n % hosts
                pid, devices = host_pids(log)[index]
                before = armed()
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                wait(
                    lambda b=before, ds=devices: all(armed().get(d, 0) > b.get(d, 0) for d in ds),
                    120,
                    "the crashed host's devices armed again",
                )
                times.append(time.monotonic() - killed)
                marks = phases(log, pid)
                # CPU the new host used from its start to its devices armed again: what the
                # time to re-armed is made of on a busy machine, and steady across loads.
                marks["host_cpu_s"] = round(tree_cpu_s(host_pids(log)[index][0]), 2)
                result.setdefault("phases", []).append(marks)
                if hosts == 1 and n + 1 < crashes:
                    time.sleep(61)  # past STABLE_S: the next crash restarts at once too
            result["rearmed_s"] = times
        finally:
            stop_gently(proc)
    return result


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The rounds of one tree and host count, averaged; re-armed times: the worst."""
    log_rearmed = [p.get("last_armed", float("nan")) for r in runs for p in r.get("phases", [])]
    disk_rearmed = [t for r in runs for t in r["rearmed_s"]]
    return {
        "armed_s": mean([r["armed_s"] for r in runs]),
        "rss_mb": mean([r["rss_mb"] for r in runs]),
        "pss_mb": mean([r["pss_mb"] for r in runs]),
        "supervisor_rss_mb": mean([r["supervisor_rss_mb"] for r in runs]),
        "idle_rss_mb": mean([r["idle_rss_mb"] for r in runs]),
        "threads": mean([r["threads"] for r in runs]),
        "idle_cpu_pct": mean([r["idle_cpu_pct"] for r in runs]),
        "rearmed_log_p50_s": pct(log_rearmed, 0.5),
        "rearmed_log_max_s": max(log_rearmed, default=float("nan")),
        "rearmed_disk_p50_s": pct(disk_rearmed, 0.5),
        "rearmed_disk_max_s": max(disk_rearmed, default=float("nan")),
        "rearm_host_cpu_s": mean([p["host_cpu_s"] for r in runs for p in r.get("phases", [])]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=256)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--crashes", type=int, default=2)
    parser.add_argument(
        "--against",
        type=Path,
        action="append",
        default=[],
        help="another source tree of hikd to measure in the same run (before/after)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each tree, alternating")
    args = parser.parse_args()
    trees = [ROOT, *(t.resolve() for t in args.against)]
    for tree in trees:
        # Bytecode compiled, as an installed hikd has it: a host that compiles its modules
        # at every start (PYTHONDONTWRITEBYTECODE, a tree never imported) is slower to arm.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "hikd")], check=True)
    runs: dict[tuple[Path, int], list[dict[str, Any]]] = {}
    sim, ports = start_simulator(args.devices)
    try:
        reference = run(ports, 1, 0, inline=True)
        for _ in range(args.rounds):
            for tree in trees:
                for hosts in args.hosts:
                    result = run(ports, hosts, args.crashes, inline=False, tree=tree)
                    runs.setdefault((tree, hosts), []).append(result)
                    print(f"{tree} {hosts} host(s): {json.dumps(result)}", file=sys.stderr)
    finally:
        sim.terminate()
        sim.wait()
    print(f"{args.devices} armed devices; simulator in its own process")
    print(
        f"  one process (reference): armed in {reference['armed_s']:.1f} s, "
        f"RSS {reference['rss_mb']:.0f} MB, PSS {reference['pss_mb']:.0f} MB, "
        f"idle CPU {reference['idle_cpu_pct']:.1f} %"
    )
    for hosts in args.hosts:
        this = summary(runs[(ROOT, hosts)])
        for tree in trees:
            r = summary(runs[(tree, hosts)])
            name = "this tree" if tree == ROOT else str(tree)
            print(
                f"  hikd run ({name}), {hosts} device host(s), {args.rounds} round(s): armed in "
                f"{r['armed_s']:.1f} s, RSS {r['rss_mb']:.0f} MB (target <= 160), "
                f"PSS {r['pss_mb']:.0f} MB (supervisor RSS {r['supervisor_rss_mb']:.0f} MB), "
                f"idle CPU {r['idle_cpu_pct']:.1f} %; RSS once idle {r['idle_rss_mb']:.0f} MB, "
                f"{r['threads']:.0f} threads"
            )
            if args.crashes:
                print(
                    f"    SIGKILL of a host -> its {args.devices // hosts}-ish devices armed "
                    f"again (target <= 6 s): the host's last 'armed' log line p50 "
                    f"{r['rearmed_log_p50_s']:.2f} s, max {r['rearmed_log_max_s']:.2f} s; "
                    f"their armed events on disk p50 {r['rearmed_disk_p50_s']:.2f} s, "
                    f"max {r['rearmed_disk_max_s']:.2f} s; CPU of the new host until then "
                    f"{r['rearm_host_cpu_s']:.2f} s"
                )
                for result in runs[(tree, hosts)]:
                    print(f"    phases after the crash (s): {result['phases']}")
            print(
                f"    RSS vs one process: {r['rss_mb'] / reference['rss_mb']:.2f}x, "
                f"PSS {r['pss_mb'] / reference['pss_mb']:.2f}x"
            )
            if tree != ROOT:
                ratios = {k: round(this[k] / r[k], 2) for k in this if r[k]}
                print(f"    this tree / {tree}: {ratios}")


if __name__ == "__main__":
    main()
