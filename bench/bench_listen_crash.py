"""Listen mode around a device host's crash (issue 11): what the listen front costs per push,
and what a SIGKILL of the host costs in pushed alarms.

    .venv/bin/python bench/bench_listen_crash.py [--pushes 2000] [--crash-pushes 600]
        [--against OTHER_TREE ...] [--rounds 2]

`hikd run` (one device host, the disk sink) with one device in listen mode; the simulator in
this process pushes to hikd's listen front from `--senders` threads, one connection per push
as devices do. Steady: `--pushes` pushes as fast as they are answered; CPU of hikd's
processes per push (`common.tree_cpu_s`) and the answer's latency. Crash: pushes go on at the
same pace while the host is killed (SIGKILL) after a third of `--crash-pushes`; counted: pushes
answered 200, answered otherwise, answered 200 but never on disk (lost), on disk twice
unmarked, marked ``resent``, and the seconds from the kill to the last accepted push on disk.
Daemon crash (`--daemon-pushes`): pushes go on while the host is killed and then, as soon as
`--daemon-kill-after` more are answered, `hikd run` itself (SIGKILL, its new host too); hikd
is started again on the same state directory: counted as above, the pushes answered 200 that
never reach the disk (the listen spool's case).

Before/after in one run: ``--against DIR`` (another checkout, e.g. ``git archive main | tar
-x -C DIR``) runs that tree's `hikd run` too, alternating ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import PASSWORD, ROOT, pct, stop_gently, tree_cpu_s

from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import SimAlert
from hikd.sim.device import SimDevice


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def on_disk(events: Path) -> Counter[int]:
    """Push number -> copies on disk not marked resent (a marked copy counts 0, but is a key).
    Copies are told apart by event id: after a crash of `hikd run` a sink gets the events of
    its last fraction of a second again (the outbox delivers at least once)."""
    found: Counter[int] = Counter()
    seen: set[str] = set()
    for path in events.glob("*.jsonl"):
        data = path.read_bytes()
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            event = json.loads(line)
            number = event.get("attributes", {}).get("push_no")
            if event["kind"] == "alarm" and number is not None and event["id"] not in seen:
                seen.add(event["id"])
                found[int(number)] += 0 if event["attributes"].get("resent") else 1
    return found


def resent(events: Path) -> int:
    count = 0
    for path in events.glob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            if b'"push_no"' in line and b'"resent": true' in line:
                count += 1
    return count


def wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def host_pid(log: Path) -> int:
    pid = 0
    for line in log.read_text(errors="replace").splitlines():
        if '"device host started"' in line:
            pid = int(json.loads(line)["pid"])
    return pid


class Pushes:
    """Numbered pushes from `senders` threads; their answers and latencies."""

    def __init__(self, device: SimDevice, port: int) -> None:
        self.device, self.port = device, port
        self.status: dict[int, int | None] = {}
        self.latency: list[float] = []
        self._lock = threading.Lock()

    def run(self, numbers: range, senders: int, pace_s: float = 0.0) -> None:
        """Push `numbers`; a sender stops at the first push that cannot be written (hikd is
        gone)."""
        todo = iter(numbers)

        def worker() -> None:
            while True:
                with self._lock:
                    number = next(todo, None)
                if number is None:
                    return
                alert = SimAlert(type="fielddetection", extra={"push_no": number})
                start = time.perf_counter()
                result = self.device.push_to("127.0.0.1", self.port, alert)
                with self._lock:
                    self.latency.append(time.perf_counter() - start)
                    self.status[number] = result.status
                if result.error:
                    return
                if pace_s:
                    time.sleep(pace_s)

        threads = [threading.Thread(target=worker) for _ in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def run(sim: Simulator, tree: Path, how: argparse.Namespace) -> dict[str, Any]:
    pushes, crash_pushes, senders = how.pushes, how.crash_pushes, how.senders
    device = sim.devices[0]
    port = free_port()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        events = tmp / "state" / "events"
        config = tmp / "hikd.toml"
        config.write_text(
            f'[daemon]\nstate_dir = "{tmp / "state"}"\n[logging]\nformat = "json"\n'
            '[alarms]\npulse_types = ["intrusion"]\n'
            f'[sinks.disk]\npath = "{events}"\n'
            f'[[devices]]\nname = "{device.name}"\nhost = "127.0.0.1"\nport = {device.port}\n'
            f'arm = false\n[[listen]]\naddress = "127.0.0.1"\nport = {port}\n'
        )
        log = tmp / "hikd.log"
        proc = start_hikd(tree, config, log)
        try:
            warm = Pushes(device, port)
            if not wait(lambda: (warm.run(range(0, 1), 1), warm.status[0] == 200)[1], 60):
                raise SystemExit(log.read_text(errors="replace")[-3000:])
            wait(lambda: 0 in on_disk(events), 30)
            result: dict[str, Any] = {}
            steady = Pushes(device, port)
            cpu0, t0 = tree_cpu_s(proc.pid), time.monotonic()
            steady.run(range(1, pushes + 1), senders)
            wait(lambda: len(on_disk(events)) >= pushes, 60)
            result["push_us_cpu"] = 1e6 * (tree_cpu_s(proc.pid) - cpu0) / pushes
            result["pushes_per_s"] = pushes / (time.monotonic() - t0)
            result["latency_p50_ms"] = 1e3 * pct(steady.latency, 0.5)
            result["latency_p99_ms"] = 1e3 * pct(steady.latency, 0.99)

            crash = Pushes(device, port)
            first = pushes + 1
            numbers = range(first, first + crash_pushes)
            pace = senders / max(1.0, result["pushes_per_s"])  # about the steady rate
            thread = threading.Thread(target=crash.run, args=(numbers, senders, pace))
            thread.start()
            wait(lambda: len(crash.status) >= crash_pushes // 3, 120)
            os.kill(host_pid(log), signal.SIGKILL)
            killed = time.monotonic()
            thread.join()
            accepted = {n for n, s in crash.status.items() if s == 200}
            wait(lambda: accepted <= set(on_disk(events)), 60)
            result["stored_s_after_kill"] = time.monotonic() - killed
            found = on_disk(events)
            result["crash_pushes"] = crash_pushes
            result["answered_200"] = len(accepted)
            result["answered_other"] = dict(
                Counter(str(s) for s in crash.status.values() if s != 200)
            )
            result["lost"] = sorted(accepted - set(found))
            result["twice_unmarked"] = sum(1 for n in accepted if found[n] > 1)
            result["marked_resent"] = resent(events)
            if how.daemon_pushes:
                first += crash_pushes
                numbers = range(first, first + how.daemon_pushes)
                paths = (tree, config, log)
                proc = daemon_crash(proc, device, port, numbers, how, pace, paths, result)
        finally:
            stop_gently(proc)
    return result


def start_hikd(tree: Path, config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(tree), "HIKD_PASSWORD_CAM_000": PASSWORD}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hikd", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tree,
            env=env,
        )


def daemon_crash(
    proc: subprocess.Popen[bytes],
    device: SimDevice,
    port: int,
    numbers: range,
    how: argparse.Namespace,
    pace: float,
    paths: tuple[Path, Path, Path],
    result: dict[str, Any],
) -> subprocess.Popen[bytes]:
    """Kill the host, then `proc` (`hikd run`, and its new host) once `how.daemon_kill_after`
    more pushes are answered; start hikd again on the same state; the new process."""
    tree, config, log = paths
    events = config.parent / "state" / "events"
    crash = Pushes(device, port)
    thread = threading.Thread(target=crash.run, args=(numbers, how.senders, pace))
    thread.start()

    def answered() -> int:
        return sum(1 for s in list(crash.status.values()) if s == 200)

    wait(lambda: len(crash.status) >= len(numbers) // 3, 120)
    host = host_pid(log)
    os.kill(host, signal.SIGKILL)
    before = answered()
    wait(lambda: answered() >= before + how.daemon_kill_after, 60)
    proc.kill()
    proc.wait()
    if host_pid(log) != host:  # the new host, orphaned
        with contextlib.suppress(ProcessLookupError):
            os.kill(host_pid(log), signal.SIGKILL)
    thread.join()
    accepted = {n for n, s in crash.status.items() if s == 200}
    result["daemon_pushes"] = len(numbers)
    result["daemon_answered_200"] = len(accepted)
    result["daemon_not_stored_at_kill"] = len(accepted - set(on_disk(events)))
    restarted = time.monotonic()
    proc = start_hikd(tree, config, log)
    wait(lambda: accepted <= set(on_disk(events)), 60)
    found = on_disk(events)
    result["daemon_lost"] = len(accepted - set(found))
    result["daemon_stored_s_after_restart"] = time.monotonic() - restarted
    result["daemon_twice_unmarked"] = sum(1 for n in accepted if found[n] > 1)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=2000)
    parser.add_argument("--crash-pushes", type=int, default=600)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--against", type=Path, action="append", default=[])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--daemon-pushes", type=int, default=300)
    parser.add_argument("--daemon-kill-after", type=int, default=20)
    args = parser.parse_args()
    trees = [ROOT, *(t.resolve() for t in args.against)]
    sim = Simulator([SimDeviceConfig(name="cam-000", password=PASSWORD)]).start()
    runs: dict[Path, list[dict[str, Any]]] = {}
    try:
        for _ in range(args.rounds):
            for tree in trees:
                result = run(sim, tree, args)
                runs.setdefault(tree, []).append(result)
                print(f"{tree}: {json.dumps(result)}", file=sys.stderr)
    finally:
        sim.stop()
    this = runs[ROOT]
    for tree in trees:
        name = "this tree" if tree == ROOT else str(tree)
        rs = runs[tree]
        cpu = sum(r["push_us_cpu"] for r in rs) / len(rs)
        ratio = cpu / (sum(r["push_us_cpu"] for r in this) / len(this))
        print(
            f"{name}: {cpu:.0f} µs CPU per push over hikd's processes ({ratio:.2f} x this "
            f"tree), p50 {sum(r['latency_p50_ms'] for r in rs) / len(rs):.1f} ms, "
            f"p99 {sum(r['latency_p99_ms'] for r in rs) / len(rs):.1f} ms"
        )
        for r in rs:
            print(
                f"  SIGKILL of the host, {r['crash_pushes']} pushes: {r['answered_200']} answered "
                f"200, others {r['answered_other']}, lost {r['lost']}, twice unmarked "
                f"{r['twice_unmarked']}, marked resent {r['marked_resent']}, last accepted on "
                f"disk {r['stored_s_after_kill']:.1f} s after the kill"
            )
            if "daemon_pushes" in r:
                print(
                    f"  SIGKILL of the host, then of hikd run, {r['daemon_pushes']} pushes: "
                    f"{r['daemon_answered_200']} answered 200, "
                    f"{r['daemon_not_stored_at_kill']} not on disk at the kill, lost after the "
                    f"restart {r['daemon_lost']}, twice unmarked {r['daemon_twice_unmarked']}, "
                    f"all on disk {r['daemon_stored_s_after_restart']:.1f} s after the restart"
                )


if __name__ == "__main__":
    main()
