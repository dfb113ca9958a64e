"""Pytest fixtures for the stand-in library and the recorder tests.

Use them with ``pytest_plugins = ["tests.standin.fixtures"]`` in a test module.
``standin`` gives a freshly reset `StandIn`; ``standin_session`` a `DeviceSession` logged
in through it over the "private protocol". The library is built once per test session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hikd.config import DeviceConfig
from hikd.devices.session import DeviceSession
from hikd.state import StateStore
from tests.standin import BuildError, StandIn, build
from tests.standin.jobs import Events


@pytest.fixture(scope="session")
def standin_library(tmp_path_factory: pytest.TempPathFactory) -> StandIn:
    folder: Path = tmp_path_factory.mktemp("standin")
    try:
        path = build(folder)
    except BuildError as exc:
        pytest.skip(str(exc))
    return StandIn.load(path)


@pytest.fixture
def standin(standin_library: StandIn) -> Iterator[StandIn]:
    standin_library.reset()
    try:
        yield standin_library
    finally:
        standin_library.reset()


@pytest.fixture
def standin_session(standin: StandIn) -> Iterator[DeviceSession]:
    config = DeviceConfig.model_validate(
        {"name": "dvr", "host": "127.0.0.1", "login_mode": "private", "password": "secret1"}
    )
    session = DeviceSession(standin.sdk, config, Events())
    session.login_once()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def state_store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(tmp_path / "state" / "state.sqlite")
    try:
        yield store
    finally:
        store.close()
