"""The `Sink` protocol: the small contract every sink (built-in or plugin) keeps.

A sink is a class registered under the entry-point group ``hikd.sinks``::

    [project.entry-points."hikd.sinks"]
    mysink = "mypackage.sink:MySink"

The daemon finds it by the name of its config section (``[sinks.mysink]``, or the
section's ``type`` key, so one sink can be configured twice), validates that section with
``MySink.Config`` (a pydantic model; the registry's own keys ``type`` and ``enabled`` are
removed first) and builds ``MySink(config, context)``. A sink knows events and nothing of
the SDK.

Each sink runs on its own worker thread, fed from the durable outbox with its own cursor:

* ``open()`` is called once on that worker before the first batch. It may fail
  (raise `SinkUnavailable`); the worker retries with backoff.
* ``send(batch)`` delivers events in order and returns how many of them, counted from the
  start of the batch, are delivered for good (written and fsynced, PUBACKed, ...). The
  outbox acknowledges exactly that many; the rest are sent again later, so delivery is
  at-least-once and consumers de-duplicate on ``event.id``. A temporary failure raises
  `SinkUnavailable` (nothing from this call counts as delivered unless returned before).
* ``close()`` is called once at shutdown, on the same worker, if ``open()`` succeeded;
  it must not block for long. A sink stuck inside ``send()`` at shutdown is left
  behind (its thread is a daemon thread) and its unacknowledged events are sent again
  at the next start.

A slow or failing sink only delays itself: every sink has its own cursor and worker.

A sink whose acknowledgements come back over a network (MQTT's PUBACK) may keep several
batches in flight instead of waiting for each before the next: it implements `WindowedSink`
too, and its worker then sends ahead while the window has room and acknowledges in the outbox
only what the sink says is delivered, counted from the oldest event in flight (so order and
at-least-once hold as with ``send()``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from hikd.events import Event


class SinkUnavailable(Exception):
    """The sink cannot deliver right now (broker down, disk full, ...); retry later."""


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What the daemon gives a sink besides its own config."""

    name: str
    """The sink's config section name (``mqtt``, ``disk``, ``myplugin``)."""
    state_dir: Path
    """A directory the sink may use for its own state (created by the daemon)."""
    extra: dict[str, Any]
    """Daemon-wide facts a sink may use (e.g. ``{"version": "0.1.0"}``). `hikd run` gives
    ``version``; ``backlog`` (sink name -> events waiting for it), ``submit_command`` (a
    user's command, `hikd.commands`) and ``devices`` (-> the names of the devices configured
    now, after each reload too) are callables."""


@runtime_checkable
class Sink(Protocol):
    Config: ClassVar[type[BaseModel]]

    def open(self) -> None: ...

    def send(self, batch: Sequence[Event]) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class WindowedSink(Sink, Protocol):
    """A sink with several batches in flight (see the module). The worker calls these on its
    own thread; ``send()`` is still used for events it sends alone."""

    acknowledged_at: float | None
    """When the sink last learnt that events in flight were delivered (epoch seconds), for
    the latency of those the worker takes later; None before."""

    def watch(self, progress: Callable[[], None]) -> None:
        """Call `progress` (from any thread, cheap) when the worker must call `delivered()`:
        events in flight can no longer be delivered, or some were and the window fills up.
        The worker also calls it at each batch it sends and at least once a second."""
        ...

    def has_room(self) -> bool:
        """True when another batch may be sent ahead (always with nothing in flight)."""
        ...

    def send_ahead(self, batch: Sequence[Event], wait: bool = True) -> None:
        """Start delivering `batch` after the batches in flight, without waiting for it to be
        delivered (nor, unless `wait`, for a connection). Raises `SinkUnavailable` when it
        cannot start (nothing of it is in flight then)."""
        ...

    def delivered(self) -> int:
        """How many more events in flight, counted from the oldest, are delivered for good
        (each counted once). Raises `SinkUnavailable` when the oldest can no longer be
        delivered (connection lost, no acknowledgement in time): every event in flight is
        forgotten then, and the worker sends it again."""
        ...
