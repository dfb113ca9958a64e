"""How a device host hands its events on (`Publishing`): to the daemon's bus when the host
runs inside `hikd run`'s process, to its own outbox writer in a device host process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hikd.events import Event


@dataclass
class Publishing:
    """How a host hands its events on: `publish` each one; `subscribe` in-process consumers
    (they see every event before it is stored); `stored()` returns once all published so far
    are stored in the outbox (raises `UserError` when they cannot be)."""

    publish: Callable[[Event], None]
    subscribe: Callable[[Callable[[Event], None]], None]
    stored: Callable[[], None]
    queue: Callable[[Event], object] | None = None
    """For the alarm decoder's thread, where there is one: publish without waking another
    thread to store; the decoder calls `flush` after what it had to decode."""
    flush: Callable[[], None] | None = None
    subscribe_stored: Callable[[Callable[[Sequence[Event]], None]], None] | None = None
    """Where the host stores its events itself (a device host process): consumers of each
    batch once it is stored (`HostPublisher.subscribe_stored`)."""
