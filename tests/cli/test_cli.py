"""The ``hikd`` command line as a user runs it: real processes, the real library, hikd.sim."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hikd import __version__
from hikd.sdk.library import Library, LibraryNotFound
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.variants import DocumentVariants
from tests.support import devices_toml

SECRET = "S3cret-Pass!word"


def hikd(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hikd", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def write_config(path: Path, sim: Simulator, state: Path, extra: str = "") -> Path:
    lines = ["[daemon]", f'state_dir = "{state}"', "", "[logging]", 'format = "json"', ""]
    lines += devices_toml(sim, "")
    lines += ["[sinks.disk]", f'path = "{state / "events"}"', "", extra]
    path.write_text("\n".join(lines))
    return path


def password_env(sim: Simulator, password: str) -> dict[str, str]:
    return {f"HIKD_PASSWORD_{d.name.upper().replace('-', '_')}": password for d in sim.devices}


def test_version() -> None:
    result = hikd("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"hikd {__version__}"


def test_check_config_names_the_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "hikd.toml"
    bad.write_text('[[devices]]\nname = "nvr"\nhost = "127.0.0.1"\nport = 70000\npassword = "x"\n')
    result = hikd("check-config", "--config", str(bad))
    assert result.returncode != 0
    assert "devices.0.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_devices_prints_a_table_and_the_error_per_device(
    tmp_path: Path, start_sim: Callable[..., Simulator]
) -> None:
    sim = start_sim(
        SimDeviceConfig(
            name="nvr-a",
            ip_channels=8,
            alarm_inputs=4,
            variants=DocumentVariants(ip_channel_first_id=33),
        ),
        SimDeviceConfig(
            name="cam-b",
            device_type="IPCamera",
            analog_channels=1,
            ip_channels=0,
            password="other-password",
        ),
    )
    config = write_config(tmp_path / "hikd.toml", sim, tmp_path / "state")
    env = {"HIKD_PASSWORD_NVR_A": "hikdsim123", "HIKD_PASSWORD_CAM_B": "wrong-password"}
    result = hikd("devices", "--config", str(config), env=env)
    assert result.returncode == 1, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split()[:4] == ["name", "address", "protocol", "serial"]
    assert row.split()[0] == "nvr-a" and "isapi" in row
    assert sim.devices[0].config.serial_number in row
    assert "8 IP from 1" in row
    # The channel map: hikd's number, name, and what each place of the device calls it.
    lines = result.stdout.splitlines()
    at = lines.index("nvr-a channels:")
    assert lines[at + 1].split()[:2] == ["channel", "name"]
    assert lines[at + 2].split() == [
        "1",
        "IPCamera",
        "01",
        "ip",
        "33",
        "33",
        "33",
        "192.168.254.2:8000",
    ]
    assert lines[at + 9].split()[0] == "8"
    assert "cam-b" in result.stderr and "password" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    # One login try per device: `hikd devices` must never push a device towards a lock.
    assert sim.devices[1].bad_tries("admin") == 1


def test_missing_library_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "hikd.toml"
    config.write_text(f'[sdk]\nlibrary_dir = "{tmp_path}"\n')
    result = hikd("devices", "--config", str(config))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "libhcnetsdk.so" in result.stderr and "Traceback" not in result.stderr


def test_library_not_on_the_loader_path_says_how_to_install() -> None:
    # The real loader, asked for a library it does not have.
    with pytest.raises(LibraryNotFound) as info:
        Library._dlopen(None)
    assert "pip install 'hikd[sdk]'" in str(info.value)
    assert "HIKD_SDK_DIR" in str(info.value)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    try:
        yield sock, path
    finally:
        sock.close()


def read_notifications(sock: socket.socket, until: str, timeout: float = 30) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.extend(sock.recv(4096).decode().splitlines())
        except TimeoutError:
            continue
        if any(line.startswith(until) for line in seen):
            break
    return seen


def test_run_tells_systemd_and_stops_in_order_on_sigterm(
    tmp_path: Path,
    start_sim: Callable[..., Simulator],
    notify_socket: tuple[socket.socket, str],
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", password=SECRET, ip_channels=2))
    config = write_config(tmp_path / "hikd.toml", sim, tmp_path / "state")
    sock, path = notify_socket
    env = {
        **os.environ,
        **password_env(sim, SECRET),
        "NOTIFY_SOCKET": path,
        "WATCHDOG_USEC": "2000000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "hikd", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        seen = read_notifications(sock, "READY=1")
        assert "READY=1" in seen
        # The status line reaches systemd once the device is in and armed.
        seen += read_notifications(sock, "STATUS=1/1 devices online, 1 armed")
        assert "STATUS=1/1 devices online, 1 armed" in seen
        seen += read_notifications(sock, "WATCHDOG=1")
        assert "WATCHDOG=1" in seen
        # SIGHUP reloads the configuration; systemd is told when it begins and ends.
        proc.send_signal(signal.SIGHUP)
        reload = read_notifications(sock, "RELOADING=1")
        reload += read_notifications(sock, "READY=1")
        begun = reload.index("RELOADING=1")
        assert reload[begun + 1].startswith("MONOTONIC_USEC="), reload
        assert "READY=1" in reload[begun:], reload
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    seen += read_notifications(sock, "STOPPING=1", timeout=1)
    assert "STOPPING=1" in seen
    # Alarm channel closed and session logged out before the process ended.
    assert sim.devices[0].count("/ISAPI/Security/sessionLogout") >= 1
    # The password never reaches a log line, whatever the output format.
    assert SECRET not in out and SECRET not in err
    # A JSON log stays JSON: the vendor library's own stderr line (at init, about the
    # adapter listing it could not make: hikd/sdk/no_netlink.py) is one of its events.
    logged = [json.loads(line) for line in err.splitlines() if line.strip()]
    vendor = [e for e in logged if e["logger"] == "hikd.vendor"]
    assert any("AdapterInfo" in e["output"] for e in vendor), err[-3000:]
    events = list((tmp_path / "state" / "events").rglob("*.jsonl"))
    assert events, "the disk sink wrote nothing: the check below would prove nothing"
    assert all(SECRET not in p.read_text() for p in events)


def test_check_config_lists_every_problem_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "hikd.toml"
    bad.write_text(
        '[[devices]]\nname = "a b"\nhost = "127.0.0.1"\npassword = "x"\n'
        '[sinks.mqtt]\nport = "abc"\n[sinks.nosuch]\nx = 1\n'
    )
    result = hikd("check-config", "--config", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("devices.0.name:") for line in lines)
    assert any(line.startswith("sinks.mqtt.port:") for line in lines)
    assert any(line.startswith("sinks.nosuch:") for line in lines)
    assert "Traceback" not in result.stderr


def test_a_state_dir_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    """`hikd run` printed a traceback (from mkdir) and `check-config` said ok."""
    (tmp_path / "afile").write_text("")
    config = tmp_path / "hikd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "afile" / "state"}"\n'
        f'[[jobs]]\nname = "d"\nkind = "download"\ninterval_s = 60\n'
        f'output_dir = "{tmp_path / "afile" / "videos"}"\n'
        f'[sinks.archive]\ntype = "disk"\npath = "{tmp_path / "afile" / "events"}"\n'
    )
    checked = hikd("check-config", "--config", str(config))
    assert checked.returncode == 1, checked.stdout
    assert f"daemon.state_dir: {tmp_path / 'afile' / 'state'} cannot be made" in checked.stderr
    assert "jobs.0.output_dir" in checked.stderr
    assert "sinks.archive.path" in checked.stderr
    ran = hikd("run", "--config", str(config))
    assert ran.returncode == 1
    assert "Traceback" not in ran.stderr, ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("hikd: daemon.state_dir: cannot create or write"), ran.stderr
    assert "choose another directory" in last
