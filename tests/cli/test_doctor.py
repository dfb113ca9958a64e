"""``hikd doctor`` as a user runs it: exit codes, --json, --fix --yes, one-line mistakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.linkage_config import EventSetup
from tests.cli.test_cli import hikd, password_env, write_config
from tests.support import free_port


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
