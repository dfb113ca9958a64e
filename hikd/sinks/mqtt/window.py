"""The MQTT sink's messages in flight: batches sent and not yet all acknowledged.

The broker acknowledges QoS 1 and 2 messages in the order it received them (MQTT 3.1.1,
section 4.6), so the oldest batch is acknowledged first and its last message last: one look at
that message says whether a whole batch is done. What counts as delivered is always a prefix
of the events in flight, so the outbox's cursor never passes an event not delivered.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt

Tracked = list[list[mqtt.MQTTMessageInfo]]
"""The messages of each event of a batch whose acknowledgement makes it delivered."""


class NotAcknowledged(Exception):
    """The oldest event in flight will not be acknowledged (connection lost, or no
    acknowledgement before its deadline)."""


@dataclass(slots=True)
class _Batch:
    events: Tracked
    messages: int
    deadline: float


class InFlight:
    """Batches sent and not yet all acknowledged, oldest first."""

    def __init__(self) -> None:
        self._batches: deque[_Batch] = deque()
        self.messages = 0
        """Messages in flight (what ``max_inflight_messages`` bounds)."""

    def __bool__(self) -> bool:
        return bool(self._batches)

    @property
    def events(self) -> int:
        return sum(len(b.events) for b in self._batches)

    def add(self, tracked: Tracked, deadline: float) -> None:
        """A batch was sent; it must be acknowledged before `deadline` (monotonic)."""
        if tracked:
            messages = sum(len(infos) for infos in tracked)
            self._batches.append(_Batch(tracked, messages, deadline))
            self.messages += messages

    def acknowledged(self, lost: bool) -> int:
        """How many more events, from the oldest, are acknowledged (forgotten here then).
        Raises `NotAcknowledged` when none is and the oldest cannot be any more: `lost` (the
        connection it went on is gone) or past its deadline."""
        done = 0
        batches = self._batches
        while batches:
            oldest = batches[0]
            if not _published(oldest.events[-1]):
                break
            whole = _prefix_published(oldest.events)
            done += whole
            if whole < len(oldest.events):  # out of order: counted as far as it is true
                del oldest.events[:whole]
                break
            batches.popleft()
            self.messages -= oldest.messages
        if done or not batches:
            return done
        oldest = batches[0]
        if not lost and time.monotonic() < oldest.deadline:
            return 0
        whole = _prefix_published(oldest.events)
        if whole:  # acknowledged since the look above; the failure comes at the next call
            del oldest.events[:whole]
            return whole
        self.clear()
        raise NotAcknowledged

    def wait(self, timeout: float) -> None:
        """Wait up to `timeout` for the oldest batch's last message to be acknowledged (or
        its first that is not, should the broker not keep the order)."""
        if not self._batches:
            return
        events = self._batches[0].events
        info = events[-1][-1]
        if _published([info]):
            info = next((i for infos in events for i in infos if not _published([i])), info)
        # A publish that failed raises: `acknowledged` tells.
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout)

    def clear(self) -> None:
        self._batches.clear()
        self.messages = 0


def _published(infos: list[mqtt.MQTTMessageInfo]) -> bool:
    try:
        return all(info.is_published() for info in infos)
    except (RuntimeError, ValueError):  # the publish failed (no connection, queue full)
        return False


def _prefix_published(events: Tracked) -> int:
    """How many events, from the first, have every message acknowledged."""
    count = 0
    for infos in events:
        if not _published(infos):
            break
        count += 1
    return count
