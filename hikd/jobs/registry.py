"""Job kinds by name: what ``kind = "download"`` in a ``[[jobs]]`` table means.

Every kind, built-in or third-party, registers itself in the entry-point group
``hikd.jobs`` (pyproject.toml), as sinks do in ``hikd.sinks``: the core never names one.
A kind is imported only when a job of that kind is configured, so a kind whose module is
missing or broken only fails the jobs that use it. `register()` adds a kind at run time
(tests, embedding programs).

A kind is a `hikd.jobs.base.Job` subclass with ``kind``, a pydantic ``Config`` and
``run(ctx)``; the scheduler builds it as ``JobClass(config)`` with its validated ``Config``.
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points

from hikd.errors import UserError
from hikd.jobs.base import Job

GROUP = "hikd.jobs"

_lock = threading.Lock()
_KINDS: dict[str, type[Job]] = {}
"""Kinds registered at run time, and entry points already loaded."""


class UnknownKind(UserError):
    """A job names a kind that is not registered or cannot be loaded."""


def register(kind: str, target: type[Job]) -> None:
    """Make `kind` mean the job class `target` (beside the entry points)."""
    with _lock:
        _KINDS[kind] = target


def kinds() -> list[str]:
    with _lock:
        loaded = set(_KINDS)
    return sorted(loaded | {ep.name for ep in entry_points(group=GROUP)})


def job_class(kind: str) -> type[Job]:
    """The class of `kind`, importing it on first use. Raises `UnknownKind`."""
    with _lock:
        cls = _KINDS.get(kind)
    if cls is not None:
        return cls
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    entry = found.get(kind)
    if entry is None:
        raise UnknownKind(f"unknown kind {kind!r}; known kinds: {', '.join(kinds())}")
    try:
        loaded = entry.load()
    except (ImportError, AttributeError) as exc:
        raise UnknownKind(f"kind {kind!r} is not available in this installation ({exc})") from None
    if not (isinstance(loaded, type) and issubclass(loaded, Job)):
        raise UnknownKind(f"kind {kind!r}: {entry.value} is not a hikd job (a hikd.jobs.base.Job)")
    with _lock:
        _KINDS[kind] = loaded
    return loaded
