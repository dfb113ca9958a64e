"""Clips around alarms (kind ``clips``): the footage from ``pre_s`` before an alarm to
``post_s`` after it, fetched once the device has it.

The daemon hands every event to `ClipRecorder.on_event`, which only enqueues (it runs on
the alarm pipeline's thread). A worker turns an alarm's stop (or its start, with
``trigger = "start"``, taking the alarm to last ``after_start_s``) into a clip request,
keeps it in the state database (a restart still fetches it), waits until the end of the
clip plus ``margin_s`` has passed on the clock, then downloads the span by time and
publishes a file event (type ``clip``) with ``attributes["alarm_id"]`` = the id of the
alarm's start event and the file in ``files``. A device that is offline, or a download
that fails, is tried again later until ``give_up_after_s`` after the clip's end.

    <output>/<device>/<channel>/<start>_<end>_<type>-<id>.ps   (times on the device's clock)
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import structlog
from pydantic import BaseModel

from hikd.devices.capabilities.recordings import DownloadCancelled, compact, device_zone
from hikd.events import Event, health
from hikd.jobs.base import EventContext, EventDrivenJob, JobContext, JobResult
from hikd.recorders.clip_requests import ClipConfig, ClipRequest, clip_request
from hikd.recorders.fetch import FetchFailed, RetryPolicy, fetch, file_event
from hikd.recorders.retention import apply_retention
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession
    from hikd.state import StateStore

log = structlog.get_logger("hikd.recorders.clips")

PENDING = "pending/"
"""State-store key prefix of the clips still to fetch."""
_RETENTION_EVERY_S = 60.0


Sessions = Callable[[], "Mapping[str, DeviceSession]"]


class ClipRecorder:
    """Turns alarms into clips. `start()`, feed `on_event()`, `close()`."""

    def __init__(
        self,
        job: str,
        config: ClipConfig,
        sessions: Sessions,
        publish: Callable[[Event], None],
        state: StateStore,
        output_dir: Path,
        devices: list[str] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.job = job
        self.config = config
        self.sessions = sessions
        self.publish = publish
        self.state = state
        self.output_dir = Path(output_dir)
        self.devices = devices
        self.stop = stop or threading.Event()
        self._inbox: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending: dict[str, ClipRequest] = {}
        self._busy: set[str] = set()
        self._pool = ThreadPoolExecutor(config.parallel, thread_name_prefix=f"clip-{job}")
        self._thread: threading.Thread | None = None
        self._last_retention = 0.0
        self.fetched = 0
        self.dropped = 0

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        for key, data in self.state.items(self.job, PENDING).items():
            try:
                request = ClipRequest.from_dict(data)
            except (KeyError, TypeError, ValueError):
                self.state.delete(self.job, key)
                continue
            # Left from before a restart (maybe postponed while the device was offline):
            # try again as soon as the footage can exist.
            first_due = request.end.timestamp() + self.config.margin_s
            self._pending[request.alarm_id] = replace(request, due=min(request.due, first_due))
        if self._pending:
            log.info("clips still to fetch from before", job=self.job, count=len(self._pending))
        self._thread = threading.Thread(target=self._loop, name=f"clips-{self.job}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop waiting and cancel downloads; what is not fetched stays in the state db."""
        self.stop.set()
        self._inbox.put(None)
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)
        while time.monotonic() < deadline:
            with self._lock:
                if not self._busy:
                    break
            time.sleep(0.02)

    # -- input -------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Called for every event; returns at once."""
        if event.kind == "alarm":
            self._inbox.put(event)

    def retry_now(self, device: str | None = None) -> int:
        """Make every waiting clip (of `device`) due now; returns how many are waiting."""
        now = time.time()
        with self._lock:
            keys = [k for k, r in self._pending.items() if device in (None, r.device)]
            for key in keys:
                self._pending[key] = replace(
                    self._pending[key], due=min(now, self._pending[key].due)
                )
        self._inbox.put(None)
        return len(keys)

    def pending(self) -> list[ClipRequest]:
        with self._lock:
            return list(self._pending.values())

    # -- the worker --------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                item = self._inbox.get(timeout=self._wait_s())
            except queue.Empty:
                item = None
            while item is not None or not self._inbox.empty():
                if item is not None:
                    self._accept(item)
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
            if not self.stop.is_set():
                self._dispatch()

    def _wait_s(self) -> float:
        with self._lock:
            full = len(self._busy) >= self.config.parallel
            dues = [r.due for k, r in self._pending.items() if k not in self._busy]
        if not dues or full:
            return 5.0  # a finishing download wakes the loop (None in the inbox)
        return min(5.0, max(0.0, min(dues) - time.time()))

    def _accept(self, event: Event) -> None:
        request = clip_request(event, self.config, self.devices)
        if request is None:
            return
        with self._lock:
            if request.alarm_id in self._pending:
                return
        if self.state.is_done(self.job, request.alarm_id):
            return
        self.state.put(self.job, PENDING + request.alarm_id, request.to_dict())
        with self._lock:
            self._pending[request.alarm_id] = request

    def _dispatch(self) -> None:
        now = time.time()
        with self._lock:
            # No more than the pool runs at once: nothing waits in the pool's queue, so
            # close() has only running downloads to wait for.
            free = max(0, self.config.parallel - len(self._busy))
            waiting = (r for k, r in self._pending.items() if k not in self._busy)
            due = sorted((r for r in waiting if r.due <= now), key=lambda r: r.due)[:free]
            for request in due:
                self._busy.add(request.alarm_id)
        for request in due:
            try:
                self._pool.submit(self._fetch, request)
            except RuntimeError:  # the pool is shut down: hikd is stopping
                with self._lock:
                    self._busy.discard(request.alarm_id)

    def _fetch(self, request: ClipRequest) -> None:
        try:
            self._fetch_one(request)
        except Exception:
            log.exception("clip failed unexpectedly", job=self.job, alarm_id=request.alarm_id)
            self._later(request, "internal error")
        finally:
            with self._lock:
                self._busy.discard(request.alarm_id)
            self._inbox.put(None)

    def _fetch_one(self, request: ClipRequest) -> None:
        session = self.sessions().get(request.device)
        if session is None or session.state != "online" or session.user_id is None:
            self._later(request, f"device {request.device} is offline")
            return
        tz = device_zone(session)
        start, end = request.start.astimezone(tz), request.end.astimezone(tz)
        stem = f"{compact(start)}_{compact(end)}_{request.alarm_type}-{request.alarm_id[-8:]}"
        cfg = self.config
        try:
            fetched = fetch(
                session,
                self.output_dir / session.name / str(request.channel),
                stem,
                request.channel,
                start,
                end,
                policy=RetryPolicy(
                    cfg.stall_timeout_s, cfg.retries, cfg.retry_backoff_s, route=cfg.route
                ),
                stop=self.stop,
            )
        except DownloadCancelled:
            return  # stays pending in the state db for the next start
        except (FetchFailed, SdkError, OSError) as exc:
            self._later(request, str(exc))
            return
        info = {
            "path": str(fetched.path),
            "size": fetched.size,
            "channel": request.channel,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        self.state.mark_done(self.job, request.alarm_id, info)
        self._forget(request)
        self.fetched += 1
        self.publish(
            file_event(
                session,
                "clip",
                fetched,
                request.channel,
                start,
                end,
                alarm_id=request.alarm_id,
                alarm_type=request.alarm_type,
                job=self.job,
            )
        )
        self._retention()

    def _later(self, request: ClipRequest, reason: str) -> None:
        now = time.time()
        if now - request.end.timestamp() > self.config.give_up_after_s:
            self.dropped += 1
            self._forget(request)
            log.warning("clip given up", job=self.job, alarm_id=request.alarm_id, reason=reason)
            with contextlib.suppress(Exception):
                session = self.sessions().get(request.device)
                if session is not None:
                    self.publish(
                        health(
                            session.device,
                            "clip_failed",
                            alarm_id=request.alarm_id,
                            channel=request.channel,
                            reason=reason,
                        )
                    )
            return
        again = replace(request, due=now + self.config.retry_later_s, attempts=request.attempts + 1)
        log.info("clip postponed", job=self.job, alarm_id=request.alarm_id, reason=reason)
        self.state.put(self.job, PENDING + request.alarm_id, again.to_dict())
        with self._lock:
            if request.alarm_id in self._pending:
                self._pending[request.alarm_id] = again

    def _forget(self, request: ClipRequest) -> None:
        self.state.delete(self.job, PENDING + request.alarm_id)
        with self._lock:
            self._pending.pop(request.alarm_id, None)

    def _retention(self) -> None:
        cfg = self.config
        if cfg.keep_days is None and cfg.keep_bytes is None:
            return
        with self._lock:
            if time.monotonic() - self._last_retention < _RETENTION_EVERY_S:
                return
            self._last_retention = time.monotonic()
        apply_retention(self.output_dir, cfg.keep_days, cfg.keep_bytes)


class ClipJob(EventDrivenJob):
    """Kind ``clips``. Event-driven: the scheduler starts its `ClipRecorder` and feeds it
    events; a schedule (cron/interval_s), if any, only retries what is waiting."""

    kind: ClassVar[str] = "clips"
    Config: ClassVar[type[BaseModel]] = ClipConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, ClipConfig)
        self.config = config
        self.recorder: ClipRecorder | None = None

    def start(self, ctx: EventContext) -> None:
        self.recorder = ClipRecorder(
            ctx.job,
            self.config,
            ctx.sessions,
            ctx.publish,
            ctx.state,
            ctx.output_dir,
            ctx.devices,
            ctx.stop,
        )
        self.recorder.start()

    def on_event(self, event: Event) -> None:
        if self.recorder is not None:
            self.recorder.on_event(event)

    def close(self, timeout: float) -> None:
        if self.recorder is not None:
            self.recorder.close(timeout)

    def run(self, ctx: JobContext) -> JobResult:
        if self.recorder is None:
            return JobResult(True, "clips are made on alarms while the daemon runs")
        waiting = self.recorder.retry_now(ctx.session.name)
        return JobResult(True, f"{waiting} clip{'s' if waiting != 1 else ''} waiting")
