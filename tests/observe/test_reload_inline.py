"""`hikd reload` with the devices in the daemon's own process (``hikd demo``, benches): a
device set to ``enabled = false`` is logged out and its open alarm closed (``ended_by:
"device_disabled"``); the other keeps its session and its open alarm; `hikd status` forgets
the disabled one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from hikd.sim import Simulator
from tests.observe.conftest import Watched, nvr
from tests.support import wait_for


def test_reload_in_the_daemons_own_process(
    start_sim: Callable[..., Simulator], watched_daemon: Callable[..., Watched]
) -> None:
    sim = start_sim(nvr("cam1"), nvr("cam2"))
    watched = watched_daemon(sim, "[alarms.hold_s]\ndefault = 600\n")
    watched.daemon.config_path = watched.config
    cam1, cam2 = sim.devices
    assert cam1.wait_for_streams(1, timeout=15) and cam2.wait_for_streams(1, timeout=15)
    for device in (cam1, cam2):
        device.trigger(type="VMD", channel=1)

    def starts() -> dict[str, dict[str, Any]]:
        return {
            e["device"]["name"]: e
            for e in watched.delivered()
            if e["kind"] == "alarm" and e["state"] == "start"
        }

    assert wait_for(lambda: len(starts()) == 2), watched.delivered()
    logins = cam1.logins("admin")
    text = watched.config.read_text()
    watched.config.write_text(text.replace('name = "cam2"', 'name = "cam2"\nenabled = false'))

    done = subprocess.run(
        [sys.executable, "-m", "hikd", "reload", "--config", str(watched.config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "reloaded: removed cam2; 1 untouched\n"
    stops = [e for e in watched.delivered() if e["kind"] == "alarm" and e["state"] == "stop"]
    assert [(s["device"]["name"], s["attributes"]["ended_by"]) for s in stops] == [
        ("cam2", "device_disabled")
    ]
    assert stops[0]["attributes"]["start_id"] == starts()["cam2"]["id"]
    assert cam2.stream_count == 0 and cam1.stream_count == 1
    assert cam1.logins("admin") == logins
    board = watched.daemon.observation.board
    assert wait_for(lambda: set(board.devices) == {"cam1"}), board.devices
    assert list(board.devices["cam1"].open_alarms) == [starts()["cam1"]["id"]]
    assert [s.name for s in watched.daemon.sessions] == ["cam1"]
