"""The systemd unit: what a packager relies on, and that systemd itself accepts it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import SimAlert
from tests.cli.test_cli import SECRET, password_env, write_config
from tests.end_to_end import disk_events
from tests.support import free_port, wait_for

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "hikd.service"


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_is_a_hardened_notify_service_with_a_watchdog() -> None:
    d = directives()
    assert d["Type"] == ["notify"]
    assert d["Restart"] == ["on-failure"]
    assert d["WatchdogSec"] and d["User"] == ["hikd"]
    assert d["StateDirectory"] == ["hikd"] and d["LogsDirectory"] == ["hikd"]
    # The control socket of `hikd status` (hikd/observe/control.py): only user and group.
    assert d["RuntimeDirectory"] == ["hikd"] and d["RuntimeDirectoryMode"] == ["0750"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictNamespaces": "yes",
    }.items():
        assert d[key] == [value], key
    assert d["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert d["CapabilityBoundingSet"] == [""]
    # `systemctl reload`: waits for the daemon's answer and fails when it refused the file.
    assert d["ExecReload"] == ["/opt/hikd/bin/hikd reload --config /etc/hikd/hikd.toml"]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # The unit names the installed binary; point it at one that exists here.
    unit = tmp_path / "hikd.service"
    unit.write_text(UNIT.read_text().replace("/opt/hikd/bin/hikd", sys.executable))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "hikd.service" in line and "mosquitto.service" not in line
    ]
    assert not problems, problems


def test_the_unit_keeps_an_exposure_of_two_or_less() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for hikd\.service: ([\d.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match[1]) <= 2.0, result.stdout


# -- the unit's seccomp rules, applied without systemd --------------------------------------
SANDBOX = Path(__file__).resolve().parent / "unit_sandbox.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def require_sandbox() -> None:
    """systemd cannot run as PID 1 here: tests/unit_sandbox.py applies the unit's filters with
    Debian's python3-seccomp (which `make test` installs)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: run `make test`, which installs it")
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.fail("python3-seccomp is missing: run `make test`, which installs it")


def sandboxed_hikd(
    unit: Path, config: Path, env: dict[str, str], log: Path, command: str = "run"
) -> subprocess.Popen[bytes]:
    hikd = [sys.executable, "-m", "hikd", command, "--config", str(config)]
    with open(log, "wb") as out:
        return subprocess.Popen(
            [SYSTEM_PYTHON, str(SANDBOX), str(unit), "--", *hikd],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
        )


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def test_hikd_runs_under_the_units_own_system_call_filter(
    tmp_path: Path, start_sim: Callable[..., Simulator]
) -> None:
    """The library loads, a simulated device is armed, its alarms reach the disk sink over
    its alert stream and through the listen front, and `hikd reload` (ExecReload=) is
    answered, with the unit's SystemCallFilter=, RestrictAddressFamilies= and
    RestrictRealtime=."""
    require_sandbox()
    sim = start_sim(SimDeviceConfig(name="nvr", password=SECRET, ip_channels=2))
    state = tmp_path / "state"
    port = free_port()
    listen = f'[[listen]]\naddress = "127.0.0.1"\nport = {port}\n'
    config = write_config(tmp_path / "hikd.toml", sim, state, extra=listen)
    log = tmp_path / "hikd.log"
    env = {**password_env(sim, SECRET), "HIKD_DAEMON__RUNTIME_DIR": str(tmp_path / "run")}
    process = sandboxed_hikd(UNIT, config, env, log)
    try:
        armed = wait_for(
            lambda: (
                process.poll() is not None or any(e["type"] == "armed" for e in disk_events(state))
            ),
            timeout=60,
        )
        assert armed and process.poll() is None, log.read_text(errors="replace")[-3000:]
        sim.devices[0].trigger(type="VMD", channel=2)
        assert wait_for(
            lambda: any(e["type"] == "motion" for e in disk_events(state)), timeout=30
        ), log.read_text(errors="replace")[-3000:]
        # Listen mode: the front relays from a loopback address of the sender's own. The
        # front opens once the device host is ready, which may come after the first `armed`.
        assert wait_for(
            lambda: "listening for pushed alarms" in log.read_text(errors="replace"), timeout=30
        ), log.read_text(errors="replace")[-3000:]
        pushed = sim.devices[0].push_to("127.0.0.1", port, SimAlert(type="linedetection"))
        assert pushed.status == 200, pushed
        assert wait_for(
            lambda: any(e["type"] == "line_crossing" for e in disk_events(state)), timeout=30
        ), log.read_text(errors="replace")[-3000:]
        reload_log = tmp_path / "reload.log"
        reload = sandboxed_hikd(UNIT, config, env, reload_log, command="reload")
        assert reload.wait(timeout=120) == 0, reload_log.read_text(errors="replace")
        assert reload_log.read_text() == "reloaded: no device changed\n"
    finally:
        code = stop(process)
    assert code == 0, log.read_text(errors="replace")[-3000:]


def test_the_sandbox_kills_hikd_as_systemd_would_without_an_error_number(tmp_path: Path) -> None:
    """The check above proves something: without SystemCallErrorNumber= (the unit before
    this fix) the vendor library's first sched_setscheduler ends hikd with SIGSYS."""
    require_sandbox()
    unit = tmp_path / "hikd.service"
    unit.write_text(
        "".join(
            line
            for line in UNIT.read_text().splitlines(keepends=True)
            if not line.startswith("SystemCallErrorNumber=")
        )
    )
    state = tmp_path / "state"
    config = tmp_path / "hikd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n[sinks.disk]\npath = "{state}/events"\n')
    log = tmp_path / "hikd.log"
    process = sandboxed_hikd(unit, config, {}, log)
    try:
        process.wait(timeout=60)
    finally:
        code = stop(process)
    assert code == -signal.SIGSYS, log.read_text(errors="replace")[-3000:]
    assert "vendor library ready" not in log.read_text(errors="replace")
