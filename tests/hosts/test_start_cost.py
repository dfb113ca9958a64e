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


TO_HOST = """
import pickle, sys
from pathlib import Path
from hikd.config import load_config
from hikd.hosts.messages import Start
from hikd.plain_config import plain
Path(sys.argv[2]).write_bytes(pickle.dumps(Start(plain(load_config(Path(sys.argv[1]))), 0, [])))
"""

IN_HOST = """
import json, pickle, sys
from datetime import datetime
from pathlib import Path
import hikd.hosts.child
config = pickle.loads(Path(sys.argv[1]).read_bytes()).config
cam = config.device("cam")
Path(sys.argv[2]).write_text(json.dumps({
    "modules": sorted(sys.modules),
    "password": cam.password.get_secret_value(),
    "shown": repr(config),
    "offset": datetime(2026, 1, 1, tzinfo=cam.tzinfo()).isoformat(),
    "hold": [config.alarms.hold_for("motion"), config.alarms.hold_for("io")],
    "allowed": cam.allowed_addresses,
    "state_dir": str(config.daemon.state_dir),
}))
"""


HEAVY = {"asyncio", "ssl", "_ssl", "hashlib", "_hashlib", "secrets", "statistics"}


def test_a_device_host_gets_its_configuration_without_pydantic(tmp_path: Path) -> None:
    """The supervisor has checked the configuration; a host unpickles it (`Start`) as plain
    objects, and loads neither pydantic nor pydantic-settings (~13 MB of each host's memory),
    with the same values and methods, and the password still masked when shown. Nor what
    only other processes use (asyncio and OpenSSL: ~6 MB)."""
    config = tmp_path / "hikd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}"\n[alarms]\nhold_s = {{ io = 3.0 }}\n'
        '[[devices]]\nname = "cam"\nhost = "127.0.0.9"\npassword = "Sekret-99"\n'
        'timezone = "-03:30"\n'
    )
    start, found = tmp_path / "start.pickle", tmp_path / "found.json"
    for script, args in ((TO_HOST, (config, start)), (IN_HOST, (start, found))):
        out = subprocess.run(
            [sys.executable, "-c", script, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(found.read_text())
    assert [m for m in seen["modules"] if m.startswith(("pydantic", "hikd.config"))] == []
    # Nor asyncio, ssl or hashlib (OpenSSL): structlog's asyncio is deferred, the listen front
    # (asyncio) runs in the supervisor.
    assert [m for m in seen["modules"] if m in HEAVY] == []
    assert seen["password"] == "Sekret-99"
    assert "Sekret-99" not in seen["shown"]
    assert seen["offset"] == "2026-01-01T00:00:00-03:30"
    assert seen["hold"] == [10.0, 3.0]
    assert seen["allowed"] == ["127.0.0.9"]
    assert seen["state_dir"] == str(tmp_path)
