"""A running daemon (in this process, the real vendor library) with its watch switched on:
metrics on a free port, the control socket in the test's own runtime directory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hikd.config import load_config
from hikd.daemon import Daemon
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from tests.support import devices_toml, free_port

PASSWORD = "Watch-Test-1"


def nvr(name: str = "nvr", **overrides: Any) -> SimDeviceConfig:
    values: dict[str, Any] = {"name": name, "password": PASSWORD, "ip_channels": 4}
    values.update(overrides)
    return SimDeviceConfig(**values)


@dataclass
class Watched:
    daemon: Daemon
    config: Path
    events_dir: Path
    metrics_port: int
    stopped: bool = False

    def stop(self) -> None:
        """Stop the daemon now; the fixture then leaves it (a daemon stops once)."""
        if not self.stopped:
            self.stopped = True
            self.daemon.stop()

    def delivered(self) -> list[dict[str, Any]]:
        """What the disk sink wrote, in order."""
        found: list[dict[str, Any]] = []
        for path in sorted(self.events_dir.glob("*.jsonl")):
            found += [json.loads(line) for line in path.read_text().splitlines() if line]
        return found


@pytest.fixture
def watched_daemon(
    sdk: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Watched]]:
    started: list[Watched] = []

    def start(sim: Simulator, extra: str = "", passwords: dict[str, str] | None = None) -> Watched:
        port = free_port()
        events_dir = tmp_path / "events"
        lines = [
            "[daemon]",
            f'state_dir = "{tmp_path / "state"}"',
            f'runtime_dir = "{tmp_path / "run"}"',
            "[metrics]",
            "enabled = true",
            f"port = {port}",
            "[sinks.disk]",
            f'path = "{events_dir}"',
            extra,
        ]
        for dev in sim.devices:
            password = (passwords or {}).get(dev.name, PASSWORD)
            monkeypatch.setenv(f"HIKD_PASSWORD_{dev.name.upper()}", password)
        lines += devices_toml(sim)
        config = tmp_path / "hikd.toml"
        config.write_text("\n".join(lines) + "\n")
        watched = Watched(Daemon(load_config(config), sdk=sdk), config, events_dir, port)
        started.append(watched)
        watched.daemon.start()
        return watched

    try:
        yield start
    finally:
        for watched in started:
            watched.stop()
