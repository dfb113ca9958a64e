"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import errno
import os
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hikd.config import DeviceConfig
from hikd.events import Event
from hikd.sim import Simulator

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession
    from hikd.sdk.library import Library

_PORTS_GIVEN: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port that stays free until the test binds it. ``bind(0)`` hands out a port
    of the kernel's ephemeral range, which any outgoing connection on the machine (another
    test run's) may take before the test binds it ("address already in use"); so a random
    port below that range, bindable now, and never the same twice in one run."""
    low = _ephemeral_low()
    for _ in range(500):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
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


def devices_toml(sim: Simulator, *extra: str) -> list[str]:
    """The ``[[devices]]`` tables of a config file, one per simulated device (passwords come
    from ``HIKD_PASSWORD_<NAME>`` or the default); `extra` lines go into each table."""
    lines: list[str] = []
    for dev in sim.devices:
        lines += [
            "[[devices]]",
            f'name = "{dev.name}"',
            'host = "127.0.0.1"',
            f"port = {dev.port}",
            "reconnect_min_s = 0.2",
            *extra,
        ]
    return lines


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds; fail the test saying `what` was awaited if it never
    does (never assert on durations)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll a condition until it holds or the deadline passes (never assert on durations)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Collector:
    """A `publish` callable that keeps every event, for any thread."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def types(self) -> list[str]:
        with self._lock:
            return [e.type for e in self.events]

    def matching(self, kind: str, type_: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.kind == kind and e.type == type_]


@contextmanager
def logged_in(
    sdk: Library, config: DeviceConfig, publish: Callable[[Event], None] = lambda _e: None
) -> Iterator[DeviceSession]:
    """A session logged in to the device of `config` (`login_once`), closed afterwards."""
    from hikd.devices.session import DeviceSession  # here: most users of this module need none

    session = DeviceSession(sdk, config, publish)
    try:
        session.login_once()
        yield session
    finally:
        session.close()


@contextmanager
def small_filesystem(where: Path, size_kib: int = 2048) -> Iterator[Path]:
    """A real file system of `size_kib` mounted at `where` (tmpfs), unmounted afterwards.
    Mounting needs root (the suite and CI run as root here); elsewhere the test is skipped."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {done.stderr.strip()}"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=False)


def fill(filesystem: Path) -> Path:
    """Fill `filesystem` to the last byte with one file; delete it to give the space back."""
    filler = filesystem / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler
