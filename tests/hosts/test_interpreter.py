"""The interpreter settings of the supervisor and the device hosts (`hikd.hosts.interpreter`),
in a process of their own: they are process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import gc, json, sys
from hikd.hosts import interpreter
%s
kept = [object() for _ in range(10)]
interpreter.started(%s)
print(json.dumps([sys.getswitchinterval(), gc.get_freeze_count(), gc.get_threshold()]))
"""


def _settings(set_up: str, thresholds: str) -> list[object]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT % (set_up, thresholds)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout))


def test_a_device_host_freezes_what_it_built_and_keeps_the_rest() -> None:
    switch, frozen, thresholds = _settings("", "")  # child.main: `started()` only
    assert switch == 0.005  # CPython's own: see the module on why
    assert isinstance(frozen, int) and frozen > 1000  # modules, configuration, ...
    assert thresholds == [700, 10, 10]  # CPython's own


def test_the_supervisor_hands_the_gil_over_soon_and_walks_its_older_generations_seldom() -> None:
    from hikd.hosts.interpreter import SUPERVISOR_GC_THRESHOLDS

    switch, frozen, thresholds = _settings(
        "interpreter.set_up()", "interpreter.SUPERVISOR_GC_THRESHOLDS"
    )
    assert switch == 0.0005
    assert isinstance(frozen, int) and frozen > 1000
    assert thresholds == list(SUPERVISOR_GC_THRESHOLDS)
    assert thresholds[1] >= 100  # a hundred young collections before a middle one
