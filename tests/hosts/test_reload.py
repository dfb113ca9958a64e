"""Reload without restart (README "Reloading the configuration"): `hikd run` with two device
hosts, the real vendor library in each and hikd.sim devices. ``hikd reload`` and SIGHUP make
the daemon read its file again: an added device logs in and arms, a removed one is logged
out and its open alarm closed (``ended_by: "device_removed"``), a changed one (a new
password) logs in again; the untouched device keeps its session (no new login on the
device) and its open alarm; a bad file changes nothing and says why in one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.sim import SimDeviceConfig, Simulator
from tests.delivery.test_delivery import (  # noqa: F401 - run_hikd is a fixture
    SECRET,
    START_TIMEOUT_S,
    HikdProcess,
    run_hikd,
    wait_until,
)
from tests.hosts.test_device_hosts import events_of, host_pids

NEW_SECRET = "Reload-Pass!w0rd2"
NAMES = ("keep", "gone", "moved", "new")


def write_config(path: Path, sim: Simulator, devices: dict[str, str]) -> None:
    """`devices`: name -> the password written into the file ("" for none: the test's
    environment gives it)."""
    state = path.parent / "state"
    lines = [
        "[daemon]",
        f'state_dir = "{state}"',
        f'runtime_dir = "{path.parent / "run"}"',
        "device_hosts = 2",
        "[logging]",
        'format = "json"',
        "[alarms.hold_s]",
        "default = 600",
        "[arming]",
        "retry_s = 1",
        "[sinks.disk]",
        f'path = "{state / "events"}"',
    ]
    for name, password in devices.items():
        lines += [
            "[[devices]]",
            f'name = "{name}"',
            'host = "127.0.0.1"',
            f"port = {sim.device(name).port}",
            "reconnect_min_s = 0.2",
            *([f'password = "{password}"'] if password else []),
        ]
    path.write_text("\n".join(lines) + "\n")


def hikd(command: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hikd", command, "--config", str(config), "--json"]
        if command == "status"
        else [sys.executable, "-m", "hikd", command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_reload_adds_removes_and_changes_devices_and_leaves_the_others_alone(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],  # noqa: F811
) -> None:
    sim = Simulator([SimDeviceConfig(name=name, password=SECRET) for name in NAMES]).start()
    try:
        config = tmp_path / "hikd.toml"
        state = tmp_path / "state"
        (tmp_path / "run").mkdir()
        write_config(config, sim, {"keep": "", "gone": "", "moved": SECRET})
        daemon = run_hikd(config, sim)

        def armed(name: str) -> int:
            return len(events_of(state, kind="health", type="armed", device=name))

        def alarm(name: str) -> dict[str, Any]:
            sim.device(name).trigger("VMD", channel=1)

            def started() -> list[dict[str, Any]]:
                return events_of(state, kind="alarm", device=name, state="start")

            wait_until(lambda: bool(started()), f"an alarm of {name} on disk", 30)
            return started()[0]

        def stops_of(start: dict[str, Any]) -> list[dict[str, Any]]:
            return [
                e
                for e in events_of(state, kind="alarm", state="stop")
                if e["attributes"].get("start_id") == start["id"]
            ]

        def reloads() -> list[dict[str, Any]]:
            return events_of(state, kind="health", type="reload")

        for name in ("keep", "gone", "moved"):
            wait_until(lambda n=name: armed(n) == 1, f"{name} armed", START_TIMEOUT_S)
        kept, removed = alarm("keep"), alarm("gone")
        logins = {name: sim.device(name).logins("admin") for name in NAMES}
        pids = host_pids(daemon)

        # Remove one, add one, change one's password (on the device and in the file).
        sim.device("moved").set_password(NEW_SECRET)
        write_config(config, sim, {"keep": "", "moved": NEW_SECRET, "new": ""})
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == (
            "reloaded: added new; removed gone; changed moved (password); 1 untouched"
        ), done.stdout
        assert NEW_SECRET not in done.stdout + daemon.log.read_text()

        wait_until(lambda: armed("new") == 1, "the added device armed", START_TIMEOUT_S)
        wait_until(lambda: armed("moved") == 2, "the changed device armed again", START_TIMEOUT_S)
        (stop,) = stops_of(removed)
        assert stop["attributes"]["ended_by"] == "device_removed"
        offline = events_of(state, kind="health", type="offline", device="gone")
        assert [e["attributes"]["reason"] for e in offline] == ["removed from the configuration"]
        assert sim.device("gone").stream_count == 0  # disarmed and logged out

        # The untouched device: the same session, the same alarm channel, its alarm open.
        assert sim.device("keep").logins("admin") == logins["keep"]
        assert armed("keep") == 1
        assert stops_of(kept) == []
        assert sim.device("moved").logins("admin") == logins["moved"] + 1
        (event,) = reloads()
        assert event["attributes"]["ok"] is True
        assert event["attributes"]["added"] == ["new"]
        assert event["attributes"]["removed"] == {"gone": "removed"}
        assert event["attributes"]["changed"] == {"moved": ["password"]}
        assert host_pids(daemon) == pids  # no device host was restarted
        assert not events_of(state, type="device_host_crashed")

        # A bad file: one line, and everything runs on as it was.
        good = config.read_text()
        config.write_text(good.replace("retry_s = 1", "retry_s = -1"))
        done = hikd("reload", config)
        assert done.returncode == 1, done.stdout
        assert done.stderr.splitlines() == [
            "hikd: configuration not reloaded, hikd runs on as before: arming.retry_s: "
            "must be greater than 0 (got -1)"
        ]
        wait_until(lambda: len(reloads()) == 2, "the refused reload's event", 30)
        assert reloads()[1]["attributes"]["ok"] is False
        # A file that is not TOML any more (here the command cannot even read where the
        # daemon's socket is: it says so in one line too).
        config.write_text(good + "[[devices]\n")
        done = hikd("reload", config)
        assert done.returncode == 1, done.stdout
        (line,) = done.stderr.splitlines()
        assert line.startswith("hikd: configuration not reloaded: config file "), line
        assert "line 29: expected ']]'" in line

        # SIGHUP: the new device goes again.
        write_config(config, sim, {"keep": "", "moved": NEW_SECRET})
        os.kill(daemon.process.pid, signal.SIGHUP)
        wait_until(lambda: len(reloads()) == 3, "the reload by SIGHUP", 60)
        assert reloads()[2]["attributes"]["removed"] == {"new": "removed"}

        def status() -> dict[str, dict[str, Any]]:
            done = hikd("status", config)
            assert done.returncode == 0, done.stderr
            return {d["name"]: d for d in json.loads(done.stdout)["devices"]}

        # `hikd status` forgets removed devices once it has seen the reload's event.
        wait_until(lambda: set(status()) == {"keep", "moved"}, "status without them", 30)
        devices = status()
        assert [(a["type"], a["channel"]) for a in devices["keep"]["alarms_open"]] == [
            ("motion", 1)
        ]
        assert sim.device("keep").logins("admin") == logins["keep"]
        assert stops_of(kept) == []
        assert daemon.process.poll() is None
    finally:
        sim.stop()
