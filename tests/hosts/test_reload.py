"""Reload without restart (README "Reloading the configuration"): `hikd run` with two device
hosts, the real vendor library in each and hikd.sim devices. ``hikd reload`` and SIGHUP make
the daemon read its file again: an added device logs in and arms, and its pushes reach its
host through the listen front; a removed one is logged out and its open alarm closed
(``ended_by: "device_removed"``); a changed one (a new password) logs in again; the
untouched devices keep their session (no new login on the device) and their open alarms,
on the host that reloaded and on the one that was not even told; a bad file changes nothing
and says why in one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hikd.hosts.placement import host_of
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import SimAlert
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess
from tests.hosts.test_device_hosts import events_of, host_pids
from tests.support import free_port, wait_until

NEW_SECRET = "Reload-Pass!w0rd2"
ALONE = "yard"  # host 0: untouched, and its host has nothing to reload
KEEP, GONE, MOVED, NEW = "door", "porch", "cellar", "shed"  # all on host 1
NAMES = (ALONE, KEEP, GONE, MOVED, NEW)
assert [host_of(name, 2) for name in NAMES] == [0, 1, 1, 1, 1]


def write_config(
    path: Path,
    sim: Simulator,
    devices: dict[str, str],
    listen: int,
    level: str = "info",
    dead: int | None = None,
) -> None:
    """`devices`: name -> the password written into the file ("" for none: the test's
    environment gives it); `listen`: the listen front's port; `dead`: the port of a device
    that does not answer (named "dead")."""
    state = path.parent / "state"
    lines = [
        "[daemon]",
        f'state_dir = "{state}"',
        f'runtime_dir = "{path.parent / "run"}"',
        "device_hosts = 2",
        "[logging]",
        'format = "json"',
        f'level = "{level}"',
        "[alarms.hold_s]",
        "default = 600",
        "[arming]",
        "retry_s = 1",
        "[sinks.disk]",
        f'path = "{state / "events"}"',
        "[[listen]]",
        'address = "127.0.0.1"',
        f"port = {listen}",
        'allowed = ["127.0.0.0/8"]',
    ]
    for name, password in devices.items():
        lines += [
            "[[devices]]",
            f'name = "{name}"',
            f'host = "{sim.device(name).host}"',
            f"port = {sim.device(name).port}",
            "reconnect_min_s = 0.2",
            *([f'password = "{password}"'] if password else []),
            # The simulator pushes from 127.0.0.1, not from the device's own address.
            *(['allowed_addresses = ["127.0.0.1"]'] if name == NEW else []),
        ]
    if dead is not None:
        lines += [
            "[[devices]]",
            'name = "dead"',
            'host = "127.0.0.1"',
            f"port = {dead}",
            'password = "unused"',
            "reconnect_min_s = 0.2",
            "reconnect_max_s = 0.5",
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
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator(
        [
            SimDeviceConfig(name=name, password=SECRET, host=f"127.0.0.{11 + i}")
            for i, name in enumerate(NAMES)
        ]
    ).start()
    try:
        config = tmp_path / "hikd.toml"
        state = tmp_path / "state"
        (tmp_path / "run").mkdir()
        port = free_port()
        write_config(config, sim, {ALONE: "", KEEP: "", GONE: "", MOVED: SECRET}, port)
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

        for name in (ALONE, KEEP, GONE, MOVED):
            wait_until(lambda n=name: armed(n) == 1, f"{name} armed", START_TIMEOUT_S)
        kept = [alarm(ALONE), alarm(KEEP)]
        removed = alarm(GONE)
        logins = {name: sim.device(name).logins("admin") for name in NAMES}
        pids = host_pids(daemon)

        # Remove one, add one, change one's password (on the device and in the file).
        sim.device(MOVED).set_password(NEW_SECRET)
        write_config(config, sim, {ALONE: "", KEEP: "", MOVED: NEW_SECRET, NEW: ""}, port)
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == (
            f"reloaded: added {NEW}; removed {GONE}; changed {MOVED} (password); 2 untouched"
        ), done.stdout
        assert NEW_SECRET not in done.stdout + daemon.log.read_text()

        wait_until(lambda: armed(NEW) == 1, "the added device armed", START_TIMEOUT_S)
        wait_until(lambda: armed(MOVED) == 2, "the changed device armed again", START_TIMEOUT_S)
        # The supervisor's `reload` event (its bus writer) and the removed device's stop and
        # offline (the host's decoder and session) are stored apart from the armed events.
        wait_until(
            lambda: bool(
                stops_of(removed)
                and events_of(state, kind="health", type="offline", device=GONE)
                and reloads()
                and '"devices reloaded"' in daemon.log.read_text()
            ),
            "the reload's events on disk",
            30,
        )
        (stop,) = stops_of(removed)
        assert stop["attributes"]["ended_by"] == "device_removed"
        offline = events_of(state, kind="health", type="offline", device=GONE)
        assert [e["attributes"]["reason"] for e in offline] == ["removed from the configuration"]
        assert sim.device(GONE).stream_count == 0  # disarmed and logged out

        # The untouched devices: the same session, the same alarm channel, the alarm open.
        for name, start in zip((ALONE, KEEP), kept, strict=True):
            assert sim.device(name).logins("admin") == logins[name], name
            assert armed(name) == 1, name
            assert stops_of(start) == [], name
        assert sim.device(MOVED).logins("admin") == logins[MOVED] + 1
        (event,) = reloads()
        assert event["attributes"]["ok"] is True
        assert event["attributes"]["added"] == [NEW]
        assert event["attributes"]["removed"] == {GONE: "removed"}
        assert event["attributes"]["changed"] == {MOVED: ["password"]}
        assert host_pids(daemon) == pids  # no device host was restarted
        assert not events_of(state, type="device_host_crashed")
        # Only the host of the devices that changed was told (host 0 logs no reload).
        told = [
            json.loads(line)["device_host"]
            for line in daemon.log.read_text().splitlines()
            if '"devices reloaded"' in line
        ]
        assert told == [1], told
        # The added device's pushes reach its own host through the listen front.
        pushed = sim.device(NEW).push_to("127.0.0.1", port, SimAlert(type="linedetection"))
        assert pushed.status == 200, pushed
        wait_until(
            lambda: bool(events_of(state, kind="alarm", type="line_crossing", device=NEW)),
            "the added device's push on disk",
            30,
        )

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
        assert "expected ']]'" in line

        # SIGHUP: the new device goes again, one that does not answer comes, and the log
        # level is debug from now on, in the device hosts too: its host says at each try
        # that it is still unreachable (a debug line).
        devices = {ALONE: "", KEEP: "", MOVED: NEW_SECRET}
        write_config(config, sim, devices, port, level="debug", dead=free_port())
        os.kill(daemon.process.pid, signal.SIGHUP)
        wait_until(lambda: len(reloads()) == 3, "the reload by SIGHUP", 60)
        assert reloads()[2]["attributes"]["removed"] == {NEW: "removed"}
        assert reloads()[2]["attributes"]["added"] == ["dead"]
        assert reloads()[2]["attributes"]["live"] == {"logging.level": "debug"}

        def debug_lines() -> list[dict[str, Any]]:
            return [
                json.loads(line)
                for line in daemon.log.read_text().splitlines()
                if '"still unreachable"' in line
            ]

        # (Sessions run in the device hosts only: the line is a host's.)
        wait_until(lambda: bool(debug_lines()), "a device host's debug line", 30)
        assert debug_lines()[0]["device"] == "dead"

        def status() -> dict[str, dict[str, Any]]:
            done = hikd("status", config)
            assert done.returncode == 0, done.stderr
            return {d["name"]: d for d in json.loads(done.stdout)["devices"]}

        # `hikd status` forgets removed devices once it has seen the reload's event.
        wanted = {ALONE, KEEP, MOVED, "dead"}
        wait_until(lambda: set(status()) == wanted, "status without them", 30)
        devices = status()
        for name, start in zip((ALONE, KEEP), kept, strict=True):
            assert [(a["type"], a["channel"]) for a in devices[name]["alarms_open"]] == [
                ("motion", 1)
            ]
            assert sim.device(name).logins("admin") == logins[name]
            assert stops_of(start) == []
        assert daemon.process.poll() is None
    finally:
        sim.stop()


def test_a_host_that_was_starting_at_the_reload_gets_it_once_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host had been sent the devices of before and was not ready yet to be told of the
    reload: the supervisor tells it as soon as it is ready."""
    from hikd.config import load_config
    from hikd.config.changes import applied
    from hikd.hosts.supervisor import HostSupervisor

    sim = Simulator([SimDeviceConfig(name=n, password=SECRET) for n in (KEEP, NEW)]).start()
    for name in (KEEP, NEW):
        monkeypatch.setenv(f"HIKD_PASSWORD_{name.upper()}", SECRET)

    def config(*names: str) -> Path:
        path = tmp_path / "hikd.toml"
        lines = [f'[daemon]\nstate_dir = "{tmp_path}"\ndevice_hosts = 2']
        lines += [
            f'[[devices]]\nname = "{n}"\nhost = "127.0.0.1"\nport = {sim.device(n).port}'
            for n in names
        ]
        path.write_text("\n".join(lines) + "\n")
        return path

    before = load_config(config(KEEP))
    supervisor = HostSupervisor(before, [].append, lambda: None)
    try:
        for handle in supervisor.handles:
            handle.start()  # not waiting for them to be ready, as `start()` would
        host = supervisor.handles[1]
        # Started with the devices of before; its interpreter and the vendor library take
        # a second or more to load: the reload finds it starting.
        wait_until(lambda: host.pid is not None, "the host's process", START_TIMEOUT_S)
        results = supervisor.reload(applied(before, load_config(config(KEEP, NEW))), 30)
        assert set(results) == {1}, results

        def armed() -> set[str]:
            return {d.name for d in supervisor.hosts()[1].devices if d.armed}

        wait_until(lambda: armed() == {KEEP, NEW}, "both devices armed", START_TIMEOUT_S)
        assert supervisor.hosts()[1].restarts == 0
        assert sim.device(KEEP).logins("admin") == 1
    finally:
        supervisor.stop(time.monotonic() + 15)
        sim.stop()
