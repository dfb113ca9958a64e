"""`hikd status` asks a running daemon (real vendor library, hikd.sim) over its socket."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.sim import Simulator
from tests.observe.conftest import Watched, nvr
from tests.support import free_port, wait_for


def hikd_status(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hikd", "status", "--config", str(config), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )


def status_json(config: Path) -> dict[str, Any]:
    done = hikd_status(config, "--json")
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_status_shows_devices_sinks_and_jobs_of_the_running_daemon(
    start_sim: Callable[..., Simulator], watched_daemon: Callable[..., Watched]
) -> None:
    sim = start_sim(nvr(), nvr("locked"))
    device = sim.devices[0]
    dead_port = free_port()  # nothing listens there: the sink cannot deliver
    extra = (
        "[alarms.hold_s]\ndefault = 600\n"
        f'[sinks.syslog]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {dead_port}\n'
        '[[jobs]]\nname = "poll"\nkind = "status"\ndevices = ["nvr"]\ninterval_s = 3600\n'
    )
    watched = watched_daemon(sim, extra, passwords={"locked": "not-the-password"})
    assert device.wait_for_streams(1, timeout=15), "the daemon did not arm the device"
    socket_path = watched.config.parent / "run" / "hikd.sock"
    assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o660

    device.trigger(type="VMD", channel=2, state="active")
    host = watched.daemon.host
    assert host is not None and host.scheduler is not None
    host.scheduler.run_now("poll")

    def devices() -> dict[str, dict[str, Any]]:
        return {d["name"]: d for d in status_json(watched.config)["devices"]}

    assert wait_for(
        lambda: devices()["nvr"]["alarms_open"] and devices()["locked"]["online"] is False
    ), devices()
    answer = status_json(watched.config)
    assert answer["pid"] == os.getpid()  # the daemon of this test answered
    nvr_state = {d["name"]: d for d in answer["devices"]}["nvr"]
    assert nvr_state["online"] is True and nvr_state["armed"] is True
    assert nvr_state["protocol"] == "isapi"
    assert [(a["type"], a["channel"]) for a in nvr_state["alarms_open"]] == [("motion", 2)]
    assert nvr_state["last_event"]["type"] in ("motion", "status")
    locked = {d["name"]: d for d in answer["devices"]}["locked"]
    assert locked["armed"] is False and locked["health"]["state"] == "problem"

    sinks = {s["name"]: s for s in answer["sinks"]}
    assert set(sinks) == {"disk", "syslog"}  # the watch is no sink of the user's
    assert sinks["disk"]["up"] is True and sinks["disk"]["last_delivery"] is not None
    assert sinks["syslog"]["up"] is False and sinks["syslog"]["backlog"] > 0
    assert sinks["syslog"]["oldest_pending_age_s"] is not None
    (job,) = answer["jobs"]
    assert job["name"] == "poll" and job["next_run"] is not None and job["last_ok"] is True
    assert answer["hosts"] is None  # devices run in the daemon's own process

    text = hikd_status(watched.config)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(line.split()[:4] == ["nvr", "yes", "yes", "isapi"] for line in lines), text.stdout
    assert any("1 (motion ch 2)" in line for line in lines), text.stdout
    assert any(line.split()[:2] == ["locked", "no"] for line in lines), text.stdout
    assert any(line.startswith("syslog") and "failing" in line for line in lines), text.stdout
    assert any(line.startswith("poll") for line in lines), text.stdout

    watched.stop()
    assert not socket_path.exists()
    gone = hikd_status(watched.config)
    assert gone.returncode == 3
    assert "no hikd daemon is running" in gone.stderr and "Traceback" not in gone.stderr


def test_status_of_a_killed_daemons_socket_says_none_runs(tmp_path: Path) -> None:
    """A socket file left behind (the daemon was killed) answers nobody."""
    import socket

    run = tmp_path / "run"
    run.mkdir()
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(run / "hikd.sock"))
    left.close()  # bound, never listening: what a killed daemon leaves
    config = tmp_path / "hikd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\nruntime_dir = "{run}"\n')
    done = hikd_status(config)
    assert done.returncode == 3 and "no hikd daemon is running" in done.stderr


def test_status_without_a_runtime_directory_says_where_it_looked(tmp_path: Path) -> None:
    config = tmp_path / "hikd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\nruntime_dir = "{tmp_path / "no"}"\n')
    done = hikd_status(config)
    assert done.returncode == 3
    assert "no hikd daemon is running" in done.stderr and "runtime_dir" in done.stderr
