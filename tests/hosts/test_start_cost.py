"""What the supervisor loads at start (issue 11: the memory of every process of `hikd run`),
in a fresh interpreter, as `hikd run` starts it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SUPERVISOR = """
import json, sys
from pathlib import Path
from hikd.config import load_config
from hikd.daemon import Daemon
daemon = Daemon(load_config(Path(sys.argv[1])), hosts="processes")
daemon.start()
try:
    Path(sys.argv[2]).write_text(json.dumps(sorted(sys.modules)))
finally:
    daemon.stop()
"""

DEVICE_SIDE = (
    "cffi",
    "_cffi_backend",
    "pycparser",
    "apscheduler",
    "hikd.sdk",
    "hikd.devices",
    "hikd.listeners.decode",
    "hikd.listeners.front",
    "hikd.listeners.pipeline",
    "hikd.jobs.scheduler",
    "hikd.recorders",
    "hikd.sim",
)
"""Modules only device hosts (or some commands) use; the listen front's only with [[listen]]."""


def test_the_supervisor_loads_nothing_of_the_device_side(tmp_path: Path) -> None:
    """`hikd run` without [[listen]]: no vendor-library module, decoder, scheduler or listen
    front in the supervisor (each costs memory in a process that never uses it)."""
    config = tmp_path / "hikd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n')
    out = subprocess.run(
        [sys.executable, "-c", SUPERVISOR, str(config), str(tmp_path / "modules.json")],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    modules = json.loads((tmp_path / "modules.json").read_text())
    loaded = [m for m in modules if m.startswith(DEVICE_SIDE)]
    assert not loaded, loaded

