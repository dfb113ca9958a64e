"""Helpers the recorder tests share: a `JobContext` as the scheduler builds it, and a
publish callback that keeps the events."""

from __future__ import annotations

import threading
from pathlib import Path

from hikd.devices.session import DeviceSession
from hikd.events import Event
from hikd.jobs.base import JobContext
from hikd.state import StateStore


class Events(list[Event]):
    """A publish callback that keeps what it gets."""

    def __call__(self, event: Event) -> None:
        self.append(event)

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self if e.type == type_]


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
