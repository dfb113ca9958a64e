"""The device's side beyond linkage: its HTTP alarm host (listen mode), the user's rights,
and disks and recording for download jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hikd.devices.capabilities.work_status import work_status
from hikd.doctor import documents
from hikd.doctor.documents import AlarmHost
from hikd.doctor.report import Check, DeviceReport
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.config import Config
    from hikd.devices.session import DeviceSession

HTTP_HOSTS_URL = "/ISAPI/Event/notification/httpHosts"
USERS_URL = "/ISAPI/Security/users"
PERMISSIONS_URL = "/ISAPI/Security/UserPermission"
TRACKS_URL = "/ISAPI/ContentMgmt/record/tracks"
WEB_ALARM_HOST = (
    "Configuration -> Network -> Advanced Settings -> Alarm Server (or HTTP Listening): "
    "address, port, URL /, protocol HTTP"
)
WEB_RIGHTS = (
    "Configuration -> System -> User Management -> (the user) -> Remote: "
    "Notify Surveillance Center / Trigger Alarm Output"
)
WEB_RECORDING = "Configuration -> Storage -> Schedule Settings -> Record Schedule"
WEB_DISKS = "Configuration -> Storage -> Storage Management -> HDD Management"


@dataclass(frozen=True, slots=True)
class AlarmHostPlan:
    """Where the device should push to, and which of its slots to use."""

    slot: AlarmHost
    address: str
    port: int


def check_alarm_host(
    report: DeviceReport, session: DeviceSession, config: Config, facing: str | None
) -> AlarmHostPlan | None:
    """Listen mode: does an HTTP alarm host point at this hikd? Returns the change that
    makes one point here (a free slot first, else the first), or None."""
    if not config.listen:
        return None
    ours = {a for a in (facing, *(lst.address for lst in config.listen)) if a}
    ours.discard("0.0.0.0")
    ports = [lst.port for lst in config.listen]
    try:
        hosts = documents.alarm_hosts(session.isapi("GET", HTTP_HOSTS_URL).body)
    except SdkError as exc:
        report.add(
            Check(
                "alarm host",
                "warning",
                f"cannot read the device's HTTP alarm hosts ({exc})",
                f"point the device's alarm host at {facing or 'this host'}:{ports[0]}",
                WEB_ALARM_HOST,
            )
        )
        return None
    # hikd's listen servers speak plain HTTP (NET_DVR_StartListen_V30).
    pointing = [h for h in hosts if h.address in ours and h.port in ports and h.protocol == "HTTP"]
    if pointing:
        host = pointing[0]
        report.add(Check("alarm host", "ok", f"points at hikd ({host.address}:{host.port})"))
        return None
    listed = ", ".join(
        f"{h.id}: {'unused' if h.unused else f'{h.address}:{h.port}'}" for h in hosts
    )
    target = facing or next(iter(ours), "")
    if not hosts or not target:
        report.add(
            Check(
                "alarm host",
                "problem",
                f"no HTTP alarm host points at hikd ({listed or 'the device lists none'})",
                f"set the alarm host to this host's address, port {ports[0]}",
                WEB_ALARM_HOST,
            )
        )
        return None
    slot = next((h for h in hosts if h.unused), hosts[0])
    report.add(
        Check(
            "alarm host",
            "problem",
            f"no HTTP alarm host points at hikd (slots {listed}): listen mode gets nothing",
            f"set alarm host {slot.id} to {target}:{ports[0]}, URL /, protocol HTTP "
            "(hikd doctor --fix does it)",
            WEB_ALARM_HOST,
        )
    )
    return AlarmHostPlan(slot, target, ports[0])


def check_rights(report: DeviceReport, session: DeviceSession) -> None:
    """The user's remote alarm right: without it the device refuses arming and
    notifications to it."""
    user = session.config.username
    try:
        users = session.isapi("GET", USERS_URL).body
    except SdkError as exc:
        report.add(
            Check(
                "user rights",
                "warning",
                f"cannot read the device's users as {user!r} ({exc})",
                f"check that {user!r} has the remote alarm right",
                WEB_RIGHTS,
            )
        )
        return
    try:
        permissions: bytes | None = session.isapi("GET", PERMISSIONS_URL).body
    except SdkError:
        permissions = None
    rights = documents.user_rights(users, permissions, user)
    if rights is None or rights.remote_alarm is None:
        report.add(
            Check(
                "user rights",
                "warning",
                f"the device does not say what {user!r} may do",
                f"check that {user!r} has the remote alarm right",
                WEB_RIGHTS,
            )
        )
    elif rights.remote_alarm:
        report.add(
            Check("user rights", "ok", f"{user!r} ({rights.level}) has the remote alarm right")
        )
    else:
        report.add(
            Check(
                "user rights",
                "problem",
                f"{user!r} ({rights.level}) lacks the remote alarm right: the device sends it "
                "no alarms",
                f"give {user!r} the remote right Notify Surveillance Center / Trigger Alarm "
                "Output, or log in as an administrator",
                WEB_RIGHTS,
            )
        )


def _record_schedules(
    report: DeviceReport, session: DeviceSession, channels: list[int], jobs: str
) -> None:
    """Channels of download jobs without a record schedule: nothing is recorded there."""
    try:
        tracks = documents.record_schedules(session.isapi("GET", TRACKS_URL).body)
    except SdkError:
        return  # firmware without the track list: the "recording" check still says
    if not tracks:
        return
    missing = []
    for channel in channels:
        try:
            device_id = session.channels.device_id(channel)
        except SdkError:
            continue
        if not tracks.get(device_id, False):
            missing.append(channel)
    if missing:
        report.add(
            Check(
                "record schedule",
                "problem",
                f"channels {', '.join(map(str, missing))} have no record schedule: nothing is "
                f"recorded there for download jobs ({jobs})",
                "draw a record schedule (continuous or event) for these channels",
                WEB_RECORDING,
            )
        )
    else:
        report.add(Check("record schedule", "ok", "every channel of the download jobs records"))


def download_jobs(config: Config, device: str) -> list[dict[str, Any]]:
    """The enabled download jobs that cover `device` (raw tables; check-config checks them)."""
    return [
        job
        for job in config.jobs
        if job.get("kind") == "download"
        and job.get("enabled", True)
        and (job.get("devices") is None or device in job.get("devices", []))
    ]


def check_storage(report: DeviceReport, session: DeviceSession, config: Config) -> None:
    """For download jobs: disks the device records on, and channels that record."""
    jobs = download_jobs(config, session.name)
    if not jobs:
        return
    try:
        status = work_status(session)
    except SdkError as exc:
        report.add(Check("disks", "warning", f"cannot read the device's disks ({exc})"))
        return
    names = ", ".join(str(j.get("name")) for j in jobs)
    bad = [d for d in status.disks if not d.healthy]
    if not status.disks:
        report.add(
            Check(
                "disks",
                "problem",
                f"the device has no disk: download jobs ({names}) find nothing",
                "fit and initialise a disk (or a network disk)",
                WEB_DISKS,
            )
        )
    elif bad:
        report.add(
            Check(
                "disks",
                "problem",
                "; ".join(f"disk {d.id} is {d.status}" for d in bad),
                "initialise or replace the disk",
                WEB_DISKS,
            )
        )
    else:
        report.add(Check("disks", "ok", f"{len(status.disks)} disk(s), all healthy"))
    wanted: set[int] = set()
    for job in jobs:
        wanted.update(job.get("channels") or session.channels.numbers)
    _record_schedules(report, session, sorted(wanted), names)
    idle = [c.channel for c in status.channels if c.channel in wanted and c.recording is False]
    if idle:
        report.add(
            Check(
                "recording",
                "warning",
                f"channels {', '.join(map(str, sorted(idle)))} are not recording now "
                f"(download jobs {names})",
                "check the record schedule of these channels (continuous or event)",
                WEB_RECORDING,
            )
        )
    elif wanted:
        report.add(
            Check("recording", "ok", f"every channel of the download jobs ({names}) records")
        )
