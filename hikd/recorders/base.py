"""The contract between the scheduler and the jobs it runs.

A job kind is a class with a pydantic ``Config`` model (its options in a ``[[jobs]]``
table) and a ``run(ctx)`` method. The scheduler builds one instance per configured job,
runs it on a worker thread (never overlapping with itself), once per device the job names,
and records the `JobResult` in the state database. A job reports what it produced as
events through ``ctx.publish`` (file events, health events, log entries): it never talks
to sinks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from hikd.events import Event

if TYPE_CHECKING:
    from hikd.session import DeviceSession
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


class Job(Protocol):
    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def run(self, ctx: JobContext) -> JobResult: ...
