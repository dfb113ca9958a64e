"""Pytest fixtures for the stand-in library, and the job helpers the recorder tests share.

Use them with ``pytest_plugins = ["tests.standin.fixtures"]`` in a test module.
``standin`` gives a freshly reset `StandIn`; ``standin_session`` a `DeviceSession` logged
in through it over the "private protocol". The library is built once per test session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hikd.config import DeviceConfig
from hikd.events import Event
from hikd.recorders.base import JobContext
from hikd.session import DeviceSession
from hikd.state import StateStore
from tests.standin import BuildError, StandIn, build


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


class Events(list[Event]):
    """A publish callback that keeps what it gets."""

    def __call__(self, event: Event) -> None:
        self.append(event)

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self if e.type == type_]


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


def job_context(
    session: DeviceSession,
    state: StateStore,
    output_dir: Path | None = None,
    job: str = "job",
    stop: threading.Event | None = None,
) -> tuple[JobContext, Events]:
    """A `JobContext` as the scheduler builds it, with a publish that keeps the events."""
    events = Events()
    ctx = JobContext(
        job=job,
        session=session,
        publish=events,
        state=state,
        stop=stop or threading.Event(),
        output_dir=output_dir,
    )
    return ctx, events


@pytest.fixture
def state_store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(tmp_path / "state" / "state.sqlite")
    try:
        yield store
    finally:
        store.close()
