"""The contract between the scheduler and the jobs it runs: `Job` and `EventDrivenJob`.

A job kind is a subclass of `Job` with a pydantic ``Config`` model (its options in a
``[[jobs]]`` table) and a ``run(ctx)`` method, registered in the ``hikd.jobs`` entry-point
group. The scheduler builds one instance per configured job,
runs it on a worker thread (never overlapping with itself), once per device the job names,
and records the `JobResult` in the state database. A job reports what it produced as
events through ``ctx.publish`` (file events, health events, log entries): it never talks
to sinks.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from hikd.events import Event

if TYPE_CHECKING:
    from pathlib import Path

    from hikd.devices.session import DeviceSession
    from hikd.state import StateStore


@dataclass(frozen=True, slots=True)
class JobContext:
    job: str
    """The configured job name (``[[jobs]] name``)."""
    session: DeviceSession
    """The logged-in device session the run is for."""
    publish: Callable[[Event], None]
    state: StateStore
    """What earlier runs did (so a restart resumes and nothing is fetched twice)."""
    stop: threading.Event
    """Set when hikd shuts down: a long job checks it and returns early."""
    output_dir: Any = None
    """Where this job writes files (a Path), from the job's or the daemon's config."""


@dataclass(slots=True)
class JobResult:
    ok: bool
    summary: str
    """One line for `hikd jobs`: "3 recordings, 412 MB" / "disk 2 failed"."""
    details: dict[str, Any] = field(default_factory=dict)


class Job(ABC):
    """A job kind (mqtt-io's small base class): what a ``kind = "..."`` means.

    A subclass names its ``kind``, its pydantic ``Config`` model (the kind's own keys of a
    ``[[jobs]]`` table) and implements `run`; it is registered under its kind in the
    ``hikd.jobs`` entry-point group (pyproject.toml). The scheduler builds one instance per
    configured job as ``JobClass(config)`` with its validated ``Config`` and runs it on a
    worker thread, never overlapping with itself, once per device the job names."""

    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    event_driven: ClassVar[bool] = False
    """True for `EventDrivenJob`: the kind reacts to events and may have no schedule."""

    @abstractmethod
    def run(self, ctx: JobContext) -> JobResult:
        """One run for one device (``ctx.session``); returns what it did."""

    def close(self, timeout: float) -> None:  # noqa: B027 (optional, not abstract)
        """hikd stops: end what the job started within `timeout` seconds."""


@dataclass(frozen=True, slots=True)
class EventContext:
    """What an event-driven job gets when the daemon starts it."""

    job: str
    sessions: Callable[[], Mapping[str, DeviceSession]]
    """The logged-in device sessions by name, as they are now."""
    publish: Callable[[Event], None]
    state: StateStore
    output_dir: Path
    devices: list[str] | None
    """The job's devices; None = every device."""
    stop: threading.Event


class EventDrivenJob(Job):
    """A job that reacts to events (clips and snapshots on alarms). The daemon starts it
    once (`start`) and feeds it every event the bus carries (`on_event`, which must only
    enqueue and return); a schedule, if any, still calls `run`."""

    event_driven: ClassVar[bool] = True

    @abstractmethod
    def start(self, ctx: EventContext) -> None:
        """Start the job's own worker; called once before the first event."""

    @abstractmethod
    def on_event(self, event: Event) -> None:
        """One event from the bus: look, enqueue what to do, return at once."""
