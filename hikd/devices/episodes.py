"""A session's health episodes: each ``start`` gets exactly one ``stop``.

Devices and the library repeat the codes of one outage (an exception every few seconds,
a check that keeps failing); an episode turns them into one ``start`` and one ``stop``,
and the session ends every open episode when it goes, so that no ``start`` is left
without its ``stop`` in the sinks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal

from hikd.events import DeviceRef, Event, health


class HealthEpisodes:
    """The health episodes of one device now open, and the events that open and close
    them. Thread-safe: the session, the exception router and the stream watch share it."""

    def __init__(self, publish: Callable[[Event], None], device: Callable[[], DeviceRef]) -> None:
        self._publish = publish
        self._device = device
        self._lock = threading.Lock()
        self._open: set[str] = set()

    def change(self, type_: str, state: Literal["start", "stop"], **attributes: Any) -> bool:
        """Publish a ``start`` only when the episode is not open and a ``stop`` only when
        it is: repeated codes of one outage make one episode. True if published."""
        with self._lock:
            is_open = type_ in self._open
            if (state == "start") == is_open:
                return False
            if state == "start":
                self._open.add(type_)
            else:
                self._open.discard(type_)
        self._publish(health(self._device(), type_, state, **attributes))
        return True

    def is_open(self, type_: str) -> bool:
        with self._lock:
            return type_ in self._open

    def end_all(self, reason: str) -> None:
        """Stop every open episode (the session they belong to is gone)."""
        with self._lock:
            types = list(self._open)
        for type_ in types:
            self.change(type_, "stop", reason=reason)
