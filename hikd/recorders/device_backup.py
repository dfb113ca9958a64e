"""Device-side backup (kind ``device_backup``): the device copies a channel's recordings to
its own USB/eSATA medium, hikd starts it and watches.

Per channel: NET_DVR_GetDiskList picks the medium (the configured ``disk`` description, else
the first one), NET_DVR_BackupByTime starts the copy of the span since the last backup of
that channel (``window_h`` on the first run), NET_DVR_GetBackupProgress is polled until a
final state of table 5.26, and NET_DVR_StopBackup ends it in every case (success, failure,
time-out, shutdown), as seed 5.14.44 requires. Success is a file event ``backup_done``;
a failure a health event ``backup_failed`` naming the state.

Private-protocol sessions only: over ISAPI the library cannot back up (part 2 d of
sdk-over-isapi.md) and the run ends at once with a clear "not supported over ISAPI",
without any SDK call (the call would speak the private protocol to the HTTP port).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from hikd.devices.capabilities.backup import (
    BackupNotSupported,
    BackupRun,
    BackupState,
    backup_disks,
    require_private,
    start_backup,
)
from hikd.events import Event
from hikd.jobs.base import Job, JobContext, JobResult
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

log = structlog.get_logger("hikd.recorders.device_backup")


class DeviceBackupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Annotated[int, Field(ge=1)]] | None = None
    """Default: every channel of the device."""
    disk: str | None = None
    """The medium's description as the device lists it (e.g. ``usb1``); default the first."""
    window_h: Annotated[float, Field(gt=0)] = 24.0
    """Span of the first backup of a channel; later ones start where the last one ended."""
    timeout_s: Annotated[float, Field(gt=0)] = 3600.0
    """A backup still running after this is stopped and counts as failed."""
    poll_s: Annotated[float, Field(gt=0)] = 2.0


@dataclass(frozen=True, slots=True)
class BackupOutcome:
    state: BackupState | None
    """The last state the device reported; None when the backup never started."""
    reason: str

    @property
    def ok(self) -> bool:
        return self.state is not None and self.state.outcome == "done"


class DeviceBackupJob(Job):
    """Kind ``device_backup``: back up each channel onto the device's own medium."""

    kind: ClassVar[str] = "device_backup"
    Config: ClassVar[type[BaseModel]] = DeviceBackupConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, DeviceBackupConfig)
        self.config = config

    def run(self, ctx: JobContext) -> JobResult:
        cfg = self.config
        session = ctx.session
        try:
            require_private(session)
            disks = backup_disks(session)
        except BackupNotSupported as exc:
            return JobResult(False, str(exc), {"supported": False})
        except SdkError as exc:
            return JobResult(False, f"cannot list the backup media: {exc}")
        names = [d.description for d in disks]
        if cfg.disk is not None and cfg.disk not in names:
            listed = ", ".join(names) or "none"
            return JobResult(
                False, f"no backup medium {cfg.disk!r} on the device (it has: {listed})"
            )
        if not names:
            return JobResult(False, "the device has no backup medium (plug in a USB disk)")
        disk = cfg.disk or names[0]
        channels = cfg.channels or session.channels.numbers
        tz = session.config.tzinfo() or UTC
        end = datetime.now(tz).replace(microsecond=0)
        done: list[int] = []
        failed: dict[int, str] = {}
        for channel in channels:
            if ctx.stop.is_set():
                failed[channel] = "hikd is shutting down"
                continue
            key = f"{session.name}/{channel}/last_end"
            last = ctx.state.get(ctx.job, key, None)
            start = (
                datetime.fromisoformat(last).astimezone(tz)
                if last
                else end - timedelta(hours=cfg.window_h)
            )
            outcome = self._backup(ctx, session, channel, start, end, disk)
            attributes: dict[str, Any] = {
                "disk": disk,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "state": outcome.state.name if outcome.state else "not_started",
                "state_code": outcome.state.value if outcome.state else None,
                "reason": outcome.reason,
                "job": ctx.job,
            }
            if outcome.ok:
                done.append(channel)
                ctx.state.put(ctx.job, key, end.isoformat())
                ctx.publish(_event(session, "file", "backup_done", channel, attributes))
            else:
                failed[channel] = outcome.reason
                ctx.publish(_event(session, "health", "backup_failed", channel, attributes))
        summary = f"{len(done)} channels backed up to {disk}"
        if failed:
            first = min(failed)
            summary += f", {len(failed)} failed (channel {first}: {failed[first]})"
        return JobResult(
            ok=not failed,
            summary=summary,
            details={"disk": disk, "done": done, "failed": {str(k): v for k, v in failed.items()}},
        )

    def _backup(
        self,
        ctx: JobContext,
        session: DeviceSession,
        channel: int,
        start: datetime,
        end: datetime,
        disk: str,
    ) -> BackupOutcome:
        tz = session.config.tzinfo() or UTC
        try:
            run = start_backup(session, channel, start, end, disk, tz)
        except SdkError as exc:
            return BackupOutcome(None, f"the device refused the backup: {exc}")
        try:
            return self._watch(ctx, session, channel, run)
        finally:
            try:
                run.stop()  # after success and after errors alike (seed 5.14.44)
            except SdkError as exc:
                log.warning("stopping the backup failed", device=session.name, error=str(exc))

    def _watch(
        self, ctx: JobContext, session: DeviceSession, channel: int, run: BackupRun
    ) -> BackupOutcome:
        cfg = self.config
        deadline = time.monotonic() + cfg.timeout_s
        state: BackupState | None = None
        announced_medium = False
        while True:
            try:
                state = run.progress()
            except SdkError as exc:
                return BackupOutcome(state, f"lost track of the backup: {exc}")
            if state.finished:
                return BackupOutcome(state, state.description)
            if state.outcome == "needs_medium" and not announced_medium:
                announced_medium = True
                log.warning(
                    "backup waits for a new medium",
                    device=session.name,
                    channel=channel,
                    state=state.name,
                )
            if time.monotonic() >= deadline:
                return BackupOutcome(state, f"timed out after {cfg.timeout_s:g} s")
            if ctx.stop.wait(cfg.poll_s):
                return BackupOutcome(state, "stopped: hikd is shutting down")


def _event(
    session: DeviceSession,
    kind: Literal["file", "health"],
    type_: str,
    channel: int,
    attributes: dict[str, Any],
) -> Event:
    return Event(
        kind=kind,
        type=type_,
        state="pulse",
        device=session.device,
        channel=channel,
        attributes=attributes,
    )
