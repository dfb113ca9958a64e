"""What the decoder thread takes, in order: the copied SDK messages, errands, the stop marker.

Two routes for the messages, the same `RawAlarm`s out of both (README "The alarm callback"):

* the C callback (`hikd.sdk.alarm_shim`), where it is built: the library's threads queue
  records without the interpreter's lock; the decoder waits on the queue's eventfd and
  takes every record with one call;
* the Python callback (`hikd.sdk.alarms.MessageCallback`), where it is not, or with
  ``HIKD_PY_CALLBACK=1``: each message is a ``SimpleQueue.put`` on the library's thread.

Errands and the stop marker always go through the ``SimpleQueue`` (with the C route they
also wake the decoder). Neither route refuses a message: the queue is bounded only by
memory, as it always was, and a copy that fails for want of it is counted (`errors`) and
logged, never dropped silently.
"""

from __future__ import annotations

import queue
from collections import deque
from typing import Generic, Literal, TypeVar

import structlog

from hikd.sdk.alarm_shim import ShimQueue, load_shim
from hikd.sdk.alarms import AlarmCallback, MessageCallback
from hikd.sdk.raw import RawAlarm

log = structlog.get_logger("hikd.alarms")

Item = TypeVar("Item")
Route = Literal["c", "python"]

_route_logged: list[Route] = []


class AlarmIntake(Generic[Item]):
    """The decoder's queue: ``put`` (any thread), ``get``/``get_nowait`` (the decoder)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[RawAlarm | Item] = queue.SimpleQueue()
        self._taken: deque[RawAlarm | Item] = deque()
        self._shim: ShimQueue | None = None
        self._python_callbacks: list[MessageCallback] = []
        self._errors_logged = 0
        lib, why = load_shim()
        if lib is not None:
            try:
                self._shim = ShimQueue(lib)
            except OSError as exc:
                why = str(exc)
        self.route: Route = "c" if self._shim is not None else "python"
        if self.route not in _route_logged:  # once per process and route
            _route_logged.append(self.route)
            if self._shim is not None:
                log.info("alarm callback in C: the library's threads never wait for Python")
            else:
                log.info("alarm callback in Python", why=why)

    def message_callback(self, source: Literal["arming", "listen"], port: int = 0) -> AlarmCallback:
        """The callback to give the library for arming or the listen port `port`."""
        if self._shim is not None:
            return self._shim.callback(source, port)
        callback = MessageCallback(self._queue.put, source, port)
        self._python_callbacks.append(callback)
        return callback

    @property
    def errors(self) -> int:
        """Messages the callbacks could not copy (out of memory)."""
        if self._shim is not None:
            return self._shim.errors
        return sum(callback.errors for callback in self._python_callbacks)

    def put(self, item: RawAlarm | Item) -> None:
        self._queue.put(item)
        if self._shim is not None:
            self._shim.wake()

    def get(self, timeout: float) -> RawAlarm | Item:
        """The next item, waiting at most `timeout` seconds; `queue.Empty` if none came."""
        taken = self._taken
        if taken:
            return taken.popleft()
        shim = self._shim
        if shim is None:
            return self._queue.get(timeout=timeout)
        self._take(shim, timeout)
        if taken:
            return taken.popleft()
        raise queue.Empty

    def get_nowait(self) -> RawAlarm | Item:
        taken = self._taken
        if taken:
            return taken.popleft()
        shim = self._shim
        if shim is None:
            return self._queue.get_nowait()
        if shim.queued or not self._queue.empty():  # no call into C for nothing
            self._take(shim, 0.0)
            if taken:
                return taken.popleft()
        raise queue.Empty

    def close(self) -> None:
        """The decoder has ended: free what the C queue still holds (nobody will decode
        it; the Python route's queue is dropped with the pipeline)."""
        shim, self._shim = self._shim, None
        if shim is not None:
            shim.close()

    def _take(self, shim: ShimQueue, timeout: float) -> None:
        # The library's records first, then the errands: an errand runs after every
        # message queued before it.
        self._taken.extend(shim.take(0.0 if self._queue.qsize() else timeout))
        while not self._queue.empty():
            self._taken.append(self._queue.get_nowait())
        if shim.errors != self._errors_logged:
            self._errors_logged = shim.errors
            log.error(
                "alarm messages lost: the callback could not copy them (out of memory)",
                count=shim.errors,
                hint="give the device host more memory, or fewer devices per host",
            )
