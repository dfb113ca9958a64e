"""What the benchmarks share: the repository root, the simulator's password, starting the
simulator in its own process, percentiles. Each script runs as ``python bench/<name>.py``,
so this folder is on ``sys.path`` and ``from common import ...`` finds this module."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSWORD = "bench-Passw0rd"


def pct(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def start_simulator(devices: int) -> tuple[subprocess.Popen[str], list[int]]:
    """``hikd.sim`` with `devices` devices on free ports, in its own process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hikd.sim", "--devices", str(devices), "--port", "0",
         "--password", PASSWORD],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    ports: list[int] = []
    while len(ports) < devices:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the simulator did not start")
        ports.append(int(line.split()[2]))
    return proc, ports
