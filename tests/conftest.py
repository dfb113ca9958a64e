"""Shared fixtures: the real vendor library, the simulator, free ports.

The vendor library is process-wide (``NET_DVR_Init`` once), so one `Library` serves the
whole test session; it is cleaned up at the end whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hikd.sdk.library import Library, SdkSettings
from hikd.sim import SimDeviceConfig, Simulator

# The tests that load the vendor library run in a child process (a crash fails one test);
# the end-to-end tests share a broker, a subscriber and `hikd run` (tests/end_to_end.py).
pytest_plugins = ("tests.vendor_child", "tests.end_to_end")


@pytest.fixture(scope="session")
def sdk() -> Iterator[Library]:
    library = Library.open(
        None, SdkSettings(connect_timeout_ms=1000, recv_timeout_ms=3000, reconnect_interval_ms=1000)
    )
    try:
        yield library
    finally:
        library.cleanup()


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Simulator]]:
    """start_sim(SimDeviceConfig(...), ...) -> a running Simulator, stopped after the test."""
    started: list[Simulator] = []

    def start(*configs: SimDeviceConfig) -> Simulator:
        sim = Simulator(list(configs) or [SimDeviceConfig()])
        started.append(sim)
        sim.start()
        return sim

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()
