"""What the benchmarks share: the repository root, the simulator's password, starting the
simulator in its own process, percentiles, CPU per thread, stopping a process. Each script
runs as ``python bench/<name>.py``, so this folder is on ``sys.path`` and
``from common import ...`` finds this module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Last, not first: a bench's `--tree` runs its parts with ``PYTHONPATH=<tree>``, and that
# tree's hikd must be the one imported (first here, every part ran this checkout's hikd).
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

PASSWORD = "bench-Passw0rd"


def pct(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def start_simulator(
    devices: int, tree: Path | None = None
) -> tuple[subprocess.Popen[str], list[int]]:
    """``hikd.sim`` with `devices` devices on free ports, in its own process; with `tree`,
    that checkout's simulator (``-m`` runs the package of the working directory)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hikd.sim", "--devices", str(devices), "--port", "0",
         "--password", PASSWORD],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tree or ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    ports: list[int] = []
    while len(ports) < devices:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the simulator did not start")
        ports.append(int(line.split()[2]))
    return proc, ports


# -- a process and its children ---------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its living descendants (``hikd run`` and its device hosts)."""
    found = [pid]
    for parent in found:  # grows while walked
        try:
            for task in Path(f"/proc/{parent}/task").iterdir():
                found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:  # ended meanwhile
            continue
    return found


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid`, its living descendants and the
    children it has already reaped (a device host that crashed and was restarted)."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = _stat(member)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if member == pid:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
    return total / _TICK


def tree_rss_mb(pid: int, children: bool = True) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over `pid` and its descendants (or `pid` alone). RSS counts
    the pages the processes share (the interpreter, libraries) once per process; PSS splits
    them."""
    rss = pss = 0
    for member in process_tree(pid) if children else [pid]:
        try:
            rss += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * _PAGE
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss / 2**20, pss / 2**20


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (kernel name, utime + stime seconds) of every thread of `pid`."""
    ticks = os.sysconf("SC_CLK_TCK")
    result: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rpartition(")")[2].split()
        result[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return result


def stop_gently(proc: subprocess.Popen[str] | subprocess.Popen[bytes], wait_s: float = 60) -> None:
    """SIGTERM, and SIGKILL if it has not ended within `wait_s`."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
