"""The configuration files of the `hikd run` tests under tests/hosts: what they all write."""

from __future__ import annotations

from pathlib import Path

from hikd.sim import Simulator


def daemon_lines(path: Path) -> list[str]:
    """State and runtime directories beside the file `path`, JSON logs, the disk sink in
    ``state/events``; the caller appends its own tables and devices."""
    state = path.parent / "state"
    return [
        "[daemon]",
        f'state_dir = "{state}"',
        f'runtime_dir = "{path.parent / "run"}"',
        "[logging]",
        'format = "json"',
        "[sinks.disk]",
        f'path = "{state / "events"}"',
    ]


def device_lines(sim: Simulator, name: str, *, as_device: str | None = None) -> list[str]:
    """A `[[devices]]` entry named `name` for the simulated device `as_device` (`name`)."""
    device = sim.device(as_device or name)
    return ["[[devices]]", f'name = "{name}"', f'host = "{device.host}"', f"port = {device.port}"]
