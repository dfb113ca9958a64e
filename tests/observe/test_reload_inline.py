"""`hikd reload` with the devices in the daemon's own process (``hikd demo``, benches): a
device set to ``enabled = false`` is logged out and its open alarm closed (``ended_by:
"device_disabled"``); the other keeps its session and its open alarm; `hikd status` forgets
the disabled one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hikd.config import load_config
from hikd.daemon import Daemon
from hikd.sdk.library import Library
from hikd.sim import Simulator
from hikd.sim.alerts import SimAlert
from tests.observe.conftest import PASSWORD, Watched, nvr
from tests.support import free_port, wait_for


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


def test_the_listen_front_in_the_daemons_own_process_follows_a_reload(
    start_sim: Callable[..., Simulator],
    sdk: Library,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The listen front runs in the daemon's process here: its allow-list (the devices'
    addresses, no ``allowed`` of its own) follows the reload too."""
    sim = start_sim(nvr("cam1"), nvr("cam2"))
    port = free_port()
    source = {"cam1": "127.0.0.51", "cam2": "127.0.0.52"}
    events_dir = tmp_path / "events"

    def write(names: list[str]) -> Path:
        lines = [
            "[daemon]",
            f'state_dir = "{tmp_path / "state"}"',
            f'runtime_dir = "{tmp_path / "run"}"',
            "[sinks.disk]",
            f'path = "{events_dir}"',
            "[[listen]]",
            'address = "127.0.0.1"',
            f"port = {port}",
        ]
        for name in names:
            monkeypatch.setenv(f"HIKD_PASSWORD_{name.upper()}", PASSWORD)
            lines += [
                "[[devices]]",
                f'name = "{name}"',
                'host = "127.0.0.1"',
                f"port = {sim.device(name).port}",
                "arm = false",
                f'allowed_addresses = ["{source[name]}"]',
            ]
        path = tmp_path / "hikd.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    config = write(["cam1", "cam2"])
    daemon = Daemon(load_config(config), sdk=sdk, config_path=config)
    daemon.start()
    try:

        def push(name: str) -> int | None:
            alert = SimAlert(type="linedetection")
            return sim.device(name).push_to("127.0.0.1", port, alert, source=source[name]).status

        def delivered(name: str) -> list[dict[str, Any]]:
            found = []
            for path in sorted(events_dir.glob("*.jsonl")):
                found += [json.loads(line) for line in path.read_text().splitlines() if line]
            return [e for e in found if e["device"]["name"] == name and e["kind"] == "alarm"]

        assert push("cam2") == 200
        assert wait_for(lambda: bool(delivered("cam2")))
        write(["cam1"])
        answer = daemon.reload()
        assert answer["ok"] and answer["line"] == "removed cam2; 1 untouched", answer
        assert push("cam2") != 200
        assert push("cam1") == 200
        assert wait_for(lambda: bool(delivered("cam1")))
        # Its one alarm, and its stop at the removal: nothing of the refused push.
        assert [e["state"] for e in delivered("cam2")] == ["start", "stop"]
    finally:
        daemon.stop()
