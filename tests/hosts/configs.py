"""The configuration files of the `hikd run` tests under tests/hosts: what they all write."""

from __future__ import annotations

from pathlib import Path

from hikd.sim import Simulator


def daemon_lines(path: Path, device_hosts: int = 1) -> list[str]:
    """State and runtime directories beside the file `path`, JSON logs, the disk sink in
    ``state/events``; the caller appends its own tables and devices."""
    state = path.parent / "state"
    return [
        "[daemon]",
        f'state_dir = "{state}"',
        f'runtime_dir = "{path.parent / "run"}"',
        f"device_hosts = {device_hosts}",
        "[logging]",
        'format = "json"',
        "[sinks.disk]",
        f'path = "{state / "events"}"',
    ]


def device_lines(sim: Simulator, name: str, *, as_device: str | None = None) -> list[str]:
    """A `[[devices]]` entry named `name` for the simulated device `as_device` (`name`)."""
    device = sim.device(as_device or name)
    return ["[[devices]]", f'name = "{name}"', f'host = "{device.host}"', f"port = {device.port}"]


def pushing_device_config(path: Path, name: str, device_port: int, listen_port: int) -> str:
    """One unarmed device `name` whose alerts come in on `listen_port`; intrusion is a
    pulse; the disk sink in ``state/events`` beside `path`."""
    state = path.parent / "state"
    return (
        f'[daemon]\nstate_dir = "{state}"\n[logging]\nformat = "json"\n'
        '[alarms]\npulse_types = ["intrusion"]\n'
        f'[sinks.disk]\npath = "{state / "events"}"\n'
        f'[[devices]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {device_port}\n'
        f'arm = false\n[[listen]]\naddress = "127.0.0.1"\nport = {listen_port}\n'
    )


def armed_device_config(path: Path, name: str, device_port: int) -> str:
    """One armed device `name` that hikd reconnects to and re-arms quickly, alarms held
    for 600 s; the disk sink in ``state/events`` beside `path`."""
    state = path.parent / "state"
    return (
        f'[daemon]\nstate_dir = "{state}"\n[logging]\nformat = "json"\n'
        "[alarms.hold_s]\ndefault = 600\n"
        f'[sinks.disk]\npath = "{state / "events"}"\n'
        "[sdk]\nreconnect_interval_ms = 500\n[arming]\nretry_s = 1\n"
        f'[[devices]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {device_port}\n'
        "reconnect_min_s = 0.2\n"
    )
