"""The hop trace of `bench/bench_delivery.py --hops`: written only when asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
from hikd.delivery import hops
from hikd.events import DeviceRef, health
event = health(DeviceRef(name="cam"), "online")
if hops.ON:
    hops.note("committed", [event])
    hops.note("woken")
print(event.id)
"""


def _run(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_each_hop_is_written_with_its_events_when_the_process_exits(tmp_path: Path) -> None:
    event_id = _run({**os.environ, "HIKD_HOPS": str(tmp_path)})
    (written,) = tmp_path.glob("hops-*.txt")
    lines = [line.split(" ") for line in written.read_text().splitlines()]
    assert [(hop, ident) for hop, _, ident in lines] == [("committed", event_id), ("woken", "-")]
    assert int(lines[0][1]) <= int(lines[1][1])


def test_nothing_is_noted_without_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HIKD_HOPS"}
    _run({**env, "TMPDIR": str(tmp_path)})
    assert not list(tmp_path.iterdir())
