"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from hikd.config import DeviceConfig
from hikd.sim import Simulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def device_config(sim: Simulator, index: int = 0, **overrides: Any) -> DeviceConfig:
    """A hikd device entry pointing at one simulated device."""
    dev = sim.devices[index]
    values: dict[str, Any] = {
        "name": dev.name,
        "host": "127.0.0.1",
        "port": dev.port,
        "username": dev.config.username,
        "password": dev.config.password,
        "https": dev.config.https,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
    }
    values.update(overrides)
    return DeviceConfig.model_validate(values)


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll a condition until it holds or the deadline passes (never assert on durations)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
