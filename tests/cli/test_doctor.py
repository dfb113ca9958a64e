"""``hikd doctor`` as a user runs it: exit codes, --json, --fix --yes, one-line mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.linkage_config import EventSetup
from tests.cli.test_cli import hikd, password_env, write_config
from tests.support import free_port, wait_for


def test_doctor_reports_fixes_and_says_mistakes_in_one_line(
    tmp_path: Path, start_sim: Callable[..., Simulator]
) -> None:
    events = EventSetup(notify_center=False, alarm_host="10.9.9.9:8123")
    sim = start_sim(SimDeviceConfig(name="nvr", ip_channels=2, alarm_inputs=1, events=events))
    port = free_port()
    config = write_config(
        tmp_path / "hikd.toml",
        sim,
        tmp_path / "state",
        f'[[listen]]\naddress = "127.0.0.1"\nport = {port}\n',
    )
    env = password_env(sim, "hikdsim123")

    result = hikd("doctor", "--config", str(config), "--json", env=env)
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is False
    (report,) = data["devices"]
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["motion linkage"]["status"] == "problem"
    assert "Linkage Method" in checks["motion linkage"]["where"]
    assert checks["alarm host"]["status"] == "problem"
    assert checks[f"listen port {port}"]["status"] == "warning"  # hikd is not running
    assert report["changes"] == []

    result = hikd("doctor", "--config", str(config), "--fix", "--yes", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changes made (configuration saved first to" in result.stdout
    assert "[FAILED" not in result.stdout
    assert sim.devices[0].linkage.alarm_hosts() == [("127.0.0.1", port)]

    result = hikd("doctor", "--config", str(config), "--fix", "--device", "nvr", env=env)
    assert result.returncode == 0
    assert "nothing to change" in result.stdout
    assert "problem" not in result.stdout

    result = hikd("doctor", "--config", str(config), "--device", "garage", env=env)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "hikd: no device named 'garage' in the configuration (devices: nvr)"
    )
    result = hikd("doctor", "--config", str(config), "--yes", env=env)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sim.devices[0].bad_tries("admin") == 0


def _events(state: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((state / "events").glob("*.jsonl")):
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        found += [json.loads(line) for line in complete.splitlines() if line.strip()]
    return found


def test_no_events_until_doctor_fixes_the_device_then_they_arrive(
    tmp_path: Path, start_sim: Callable[..., Simulator]
) -> None:
    """Listen mode end to end: a device whose linkage lacks the center and whose alarm
    host points elsewhere sends hikd nothing; after ``hikd doctor --fix --yes`` it does."""
    events = EventSetup(notify_center=False, alarm_host="10.9.9.9:8123")
    sim = start_sim(SimDeviceConfig(name="nvr", ip_channels=2, events=events))
    device = sim.devices[0]
    port, state = free_port(), tmp_path / "state"
    listen = f'[[listen]]\naddress = "127.0.0.1"\nport = {port}\n'
    config = write_config(tmp_path / "hikd.toml", sim, state, listen)
    config.write_text(config.read_text().replace("port = ", "arm = false\nport = ", 1))
    env = password_env(sim, "hikdsim123")
    log = tmp_path / "hikd.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "hikd", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
    try:
        assert wait_for(
            lambda: "listening for pushed alarms" in log.read_text() or daemon.poll() is not None,
            timeout=60,
        ), log.read_text()[-2000:]
        assert device.trigger("VMD", channel=1).pushes == 0  # the device sends nothing

        result = hikd("doctor", "--config", str(config), "--fix", "--yes", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok       listen port" in result.stdout  # the running hikd holds it

        assert device.trigger("VMD", channel=1).pushes == 1
        assert wait_for(
            lambda: any(
                e["kind"] == "alarm" and e["type"] == "motion" and e["state"] == "start"
                for e in _events(state)
            ),
            timeout=30,
        ), log.read_text()[-3000:]
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def test_doctor_counts_devices_by_status(
    tmp_path: Path, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(
        SimDeviceConfig(name="nvr-a"),
        SimDeviceConfig(name="nvr-b", events=EventSetup(schedule="empty")),
    )
    config = write_config(tmp_path / "hikd.toml", sim, tmp_path / "state")
    result = hikd("doctor", "--config", str(config), env=password_env(sim, "hikdsim123"))
    assert result.returncode == 1
    assert result.stdout.rstrip().endswith("2 devices: 1 problem, 1 ok")
