"""Status polls (kind ``status``): is the device reachable, and how are its disks,
channels and alarm ports.

Each run checks the session (NET_DVR_CHECK_USER_STATUS, which reports ``online`` /
``offline`` itself), reads the work status through `hikd.devices.capabilities.work_status` and
compares it with the last one in the state database. Only changes become events:

| type | start when | stop when | key |
| --- | --- | --- | --- |
| ``disk_error`` | a disk is not ok/idle/sleeping, or it vanished | it is back | ``disk`` |
| ``disk_full`` | free space <= ``disk_full_free_mb`` | space again | ``disk`` |
| ``channel_not_recording`` | a channel does not record | it records | channel |
| ``video_signal_lost`` | a channel reports no signal | signal again | channel |
| ``channel_offline`` | an NVR cannot reach an IP camera | reachable | channel |
| ``channel_hardware_error`` | the channel's encoder failed | ok again | channel |

A problem present at the very first poll starts too (a disk that failed while hikd was
not running is news). Each run also publishes a ``status`` health event with the whole
snapshot (the ``status`` concern of `hikd.health`: it never overwrites a problem above).

A status the device does not give (an ISAPI login's structured call, 189) is never read as
"all fine": the run fails, the last snapshot stays, and no problem is declared over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from hikd.devices.capabilities.work_status import WorkStatus, work_status
from hikd.events import Event
from hikd.jobs.base import Job, JobContext, JobResult
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

log = structlog.get_logger("hikd.recorders.status")


class StatusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    disk_full_free_mb: Annotated[int, Field(ge=0)] | None = 0
    """A disk with at most this much free space (MiB) is full; None: never report it
    (devices that overwrite the oldest recordings are always "full")."""
    ignore_channels: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    """Channels that are not meant to record (no schedule): no channel_not_recording."""
    publish_status: bool = True
    """Publish the whole snapshot as a ``status`` health event on every run."""


@dataclass(frozen=True, slots=True)
class Problem:
    type: str
    key: int
    """The disk number for disk problems, the channel for channel problems."""
    attributes: dict[str, Any]

    @property
    def ident(self) -> str:
        return f"{self.type}/{self.key}"

    @property
    def is_disk(self) -> bool:
        return self.type.startswith("disk_")


def problems_of(
    status: WorkStatus, config: StatusConfig, known_disks: set[int]
) -> dict[str, Problem]:
    """Every problem the snapshot shows. A disk seen before (``known_disks``) that is not
    listed any more is a ``disk_error`` with status ``missing`` until it is back."""
    found: dict[str, Problem] = {}

    def add(problem: Problem) -> None:
        found[problem.ident] = problem

    disks_now = {d.id for d in status.disks}
    for disk in status.disks:
        if not disk.healthy:
            add(Problem("disk_error", disk.id, {"disk": disk.id, "status": disk.status}))
        elif (
            config.disk_full_free_mb is not None
            and disk.capacity_mb > 0
            and disk.free_mb <= config.disk_full_free_mb
        ):
            attrs = {"disk": disk.id, "free_mb": disk.free_mb, "capacity_mb": disk.capacity_mb}
            add(Problem("disk_full", disk.id, attrs))
    for number in sorted(known_disks - disks_now):
        add(Problem("disk_error", number, {"disk": number, "status": "missing"}))
    for chan in status.channels:
        number = chan.channel
        if chan.recording is False and number not in config.ignore_channels:
            add(Problem("channel_not_recording", number, {}))
        if chan.signal_lost:
            add(Problem("video_signal_lost", number, {}))
        if chan.online is False:
            add(Problem("channel_offline", number, {}))
        if chan.hardware_error:
            add(Problem("channel_hardware_error", number, {}))
    return found


def problem_event(
    session: DeviceSession, problem: Problem, state: Literal["start", "stop"]
) -> Event:
    return Event(
        kind="health",
        type=problem.type,
        state=state,
        device=session.device,
        channel=None if problem.is_disk else problem.key,
        attributes=dict(problem.attributes),
    )


class StatusJob(Job):
    """Kind ``status``: online check and work status, events on change."""

    kind: ClassVar[str] = "status"
    Config: ClassVar[type[BaseModel]] = StatusConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, StatusConfig)
        self.config = config

    def run(self, ctx: JobContext) -> JobResult:
        session = ctx.session
        if not session.check_online():
            return JobResult(False, f"device offline: {session.last_error or 'no answer'}")
        try:
            status = work_status(session)
        except SdkError as exc:
            log.warning("work status not available", device=session.name, error=str(exc))
            if self.config.publish_status:
                ctx.publish(
                    Event(
                        kind="health",
                        type="status",
                        state="pulse",
                        device=session.device,
                        attributes={"available": False, "reason": str(exc), "code": exc.code},
                    )
                )
            return JobResult(False, f"work status not available: {exc}")
        key = f"{session.name}/problems"
        saved: dict[str, Any] = ctx.state.get(ctx.job, key, None) or {}
        previous: dict[str, dict[str, Any]] = saved.get("problems", {})
        known_disks = {int(d) for d in saved.get("disks", [])}
        now = problems_of(status, self.config, known_disks)
        started = [p for ident, p in now.items() if ident not in previous]
        ended = [
            Problem(old["type"], old["key"], old.get("attributes", {}))
            for ident, old in previous.items()
            if ident not in now
        ]
        for problem in started:
            ctx.publish(problem_event(session, problem, "start"))
        for problem in ended:
            ctx.publish(problem_event(session, problem, "stop"))
        still_known = {d.id for d in status.disks} | _missing(now)
        saved = {
            "problems": {
                ident: {"type": p.type, "key": p.key, "attributes": p.attributes}
                for ident, p in now.items()
            },
            "disks": sorted(still_known),
        }
        ctx.state.put(ctx.job, key, saved)
        snapshot = status.to_dict()
        ctx.state.put(ctx.job, f"{session.name}/snapshot", snapshot)
        if self.config.publish_status:
            problems = sorted(now)
            attributes = {"available": True, **snapshot, "problems": problems}
            ctx.publish(
                Event(
                    kind="health",
                    type="status",
                    state="pulse",
                    device=session.device,
                    attributes=attributes,
                )
            )
        summary = _summary(status, now)
        return JobResult(
            ok=True,
            summary=summary,
            details={"started": [p.ident for p in started], "ended": [p.ident for p in ended]},
        )


def _missing(problems: dict[str, Problem]) -> set[int]:
    return {
        p.key
        for p in problems.values()
        if p.type == "disk_error" and p.attributes.get("status") == "missing"
    }


def _summary(status: WorkStatus, problems: dict[str, Problem]) -> str:
    text = f"{len(status.disks)} disks, {len(status.channels)} channels"
    if not problems:
        return text + ", all fine"
    return text + ", " + ", ".join(sorted(problems))
