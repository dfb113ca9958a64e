"""Snapshots: a JPEG of each channel on a schedule (kind ``snapshot``), and of an alarm's
channel when the alarm starts (`SnapshotRecorder`, fed by the daemon with every event).

Files::

    <output>/<device>/<date>/<time>-ch<N>.jpg        scheduled (device clock)
    <output>/<device>/<date>/<event id>-ch<N>.jpg    on an alarm's start

Each picture ends in a file event (kind ``file``, type ``snapshot``); one taken for an
alarm carries ``attributes["alarm_id"]`` = the alarm event's id. The picture comes from
`hikd.devices.capabilities.snapshot`, which picks the route that works on the session's protocol.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field

from hikd.devices.capabilities.snapshot import snapshot, snapshot_event, write_picture
from hikd.events import Event
from hikd.jobs.base import EventContext, EventDrivenJob, JobContext, JobResult
from hikd.recorders.retention import apply_retention
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

log = structlog.get_logger("hikd.recorders.snapshot")

Publish = Callable[[Event], None]


class SnapshotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Annotated[int, Field(ge=1)]] | None = None
    """Default: every channel of the device."""
    on_alarm: bool = False
    """Also take a snapshot of an alarm's channel when the alarm starts."""
    alarm_types: list[str] | None = None
    """Alarm types that get a snapshot (``motion``, ``line_crossing``, ...); default all."""
    keep_days: Annotated[float, Field(gt=0)] | None = None
    """Delete snapshots older than this (per device folder)."""


def device_folder(output: Path, session: DeviceSession, when: datetime) -> Path:
    return output / session.name / when.strftime("%Y-%m-%d")


def _device_now(session: DeviceSession) -> datetime:
    return datetime.now(session.config.tzinfo() or UTC).replace(microsecond=0)


class SnapshotJob(EventDrivenJob):
    """Kind ``snapshot``: one picture per channel each run (cron/interval_s), and with
    ``on_alarm`` one of an alarm's channel when it starts (the scheduler starts the
    `SnapshotRecorder` and feeds it every event)."""

    kind: ClassVar[str] = "snapshot"
    Config: ClassVar[type[BaseModel]] = SnapshotConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, SnapshotConfig)
        self.config = config
        self.recorder: SnapshotRecorder | None = None

    def start(self, ctx: EventContext) -> None:
        """Only ``on_alarm`` jobs get a recorder."""
        if not self.config.on_alarm:
            return
        self.recorder = SnapshotRecorder.from_config(
            self.config, ctx.sessions, ctx.publish, ctx.output_dir, ctx.devices
        )
        self.recorder.start()

    def on_event(self, event: Event) -> None:
        if self.recorder is not None:
            self.recorder.on_event(event)

    def close(self, timeout: float) -> None:
        if self.recorder is not None:
            self.recorder.stop(timeout)

    def run(self, ctx: JobContext) -> JobResult:
        session = ctx.session
        if ctx.output_dir is None:
            return JobResult(False, "no output folder configured")
        output = Path(ctx.output_dir)
        available = session.channels.numbers
        channels = self.config.channels or available
        taken: list[str] = []
        failed: dict[int, str] = {}
        now = _device_now(session)
        for channel in channels:
            if ctx.stop.is_set():
                break
            if available and channel not in available:
                failed[channel] = "the device has no such channel"
                continue
            try:
                data = snapshot(session, channel)
            except SdkError as exc:
                failed[channel] = str(exc)
                log.warning("snapshot failed", device=session.name, channel=channel, error=str(exc))
                continue
            stamp = now.strftime("%Y%m%dT%H%M%S")
            path = device_folder(output, session, now) / f"{stamp}-ch{channel}.jpg"
            write_picture(path, data)
            taken.append(str(path))
            ctx.publish(snapshot_event(session, channel, path, len(data)))
        if self.config.keep_days is not None:
            apply_retention(output / session.name, keep_days=self.config.keep_days)
        summary = f"{len(taken)} snapshots"
        if failed:
            summary += f", {len(failed)} failed (channel {min(failed)}: {failed[min(failed)]})"
        return JobResult(
            ok=not failed and not ctx.stop.is_set(),
            summary=summary,
            details={"files": taken, "failed": {str(k): v for k, v in failed.items()}},
        )


class SnapshotRecorder:
    """Takes a snapshot of an alarm's channel when the alarm starts.

    The daemon calls `on_event` with every event; it only enqueues (it runs on the event
    bus's thread) and a worker thread talks to the device. A full queue drops the oldest
    pending request: during an alarm storm, fresh pictures matter more than old ones."""

    def __init__(
        self,
        sessions: Callable[[], Mapping[str, DeviceSession]],
        publish: Publish,
        output_dir: Path,
        alarm_types: Collection[str] | None = None,
        devices: Collection[str] | None = None,
        queue_size: int = 256,
    ) -> None:
        self._sessions = sessions
        self._publish = publish
        self.output_dir = Path(output_dir)
        self.alarm_types = frozenset(alarm_types) if alarm_types is not None else None
        self.devices = frozenset(devices) if devices is not None else None
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self.taken = 0
        self.failed = 0
        self.dropped = 0

    @classmethod
    def from_config(
        cls,
        config: SnapshotConfig,
        sessions: Callable[[], Mapping[str, DeviceSession]],
        publish: Publish,
        output_dir: Path,
        devices: Collection[str] | None = None,
    ) -> SnapshotRecorder:
        return cls(sessions, publish, output_dir, config.alarm_types, devices)

    def wants(self, event: Event) -> bool:
        return (
            event.kind == "alarm"
            and event.state == "start"
            and event.channel is not None
            and (self.alarm_types is None or event.type in self.alarm_types)
            and (self.devices is None or event.device.name in self.devices)
        )

    def on_event(self, event: Event) -> None:
        if not self.wants(event):
            return
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
                    self.dropped += 1

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        thread.join(timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self.take(event)
            except Exception:
                self.failed += 1
                log.exception("snapshot for an alarm failed", alarm_id=event.id)

    def take(self, alarm: Event) -> Path | None:
        """Take and store the snapshot for one alarm (on the calling thread)."""
        session = self._sessions().get(alarm.device.name)
        channel = alarm.channel
        if session is None or channel is None or session.user_id is None:
            self.failed += 1
            log.info("no snapshot: device not logged in", device=alarm.device.name)
            return None
        try:
            data = snapshot(session, channel)
        except SdkError as exc:
            self.failed += 1
            log.warning(
                "snapshot for an alarm failed",
                device=session.name,
                channel=channel,
                alarm_id=alarm.id,
                error=str(exc),
            )
            return None
        folder = device_folder(self.output_dir, session, alarm.time)
        path = folder / f"{alarm.id}-ch{channel}.jpg"
        write_picture(path, data)
        self.taken += 1
        self._publish(snapshot_event(session, channel, path, len(data), alarm))
        return path
