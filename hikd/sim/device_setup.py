"""The rest of what `hikd doctor` reads of a device: its users and their rights, its clock,
and the record schedule of each channel (``/ISAPI/ContentMgmt/record/tracks``).

Shapes after the ISAPI guide and devices' captures: ``UserList``/``User`` with
``userLevel``; ``UserPermissionList``/``UserPermission`` whose ``remotePermission``
holds ``alarmOutOrUpload`` (the web UI's "Remote: Notify Surveillance Center / Trigger
Alarm Output"); a ``Track`` per channel (id ``<channel>01``) whose ``TrackSchedule`` lists
``ScheduleAction``s with a weekday name, ``TimeOfDay`` and ``Actions``/``Record``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hikd.sim import documents
from hikd.sim.config import SimDeviceConfig
from hikd.sim.documents import document, elements
from hikd.sim.http import Request, Response
from hikd.sim.parts import DevicePart
from hikd.sim.variants import restyle_xml

TRACKS = "/ISAPI/ContentMgmt/record/tracks"
_ONE_TRACK = r"/ISAPI/ContentMgmt/record/tracks/(\d+)"
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def device_now(cfg: SimDeviceConfig) -> datetime:
    """The device's clock: the true time plus ``events.clock_offset_s``, in its zone."""
    true = datetime.now(UTC) + timedelta(seconds=cfg.events.clock_offset_s)
    return true.astimezone(documents.device_zone(cfg))


class DeviceSetup:
    """Serves the documents; tests change ``device.config.events`` to change them."""

    def __init__(self, device: DevicePart) -> None:
        self.device = device
        device.route_static("GET", "/ISAPI/Security/users", lambda r: self._xml(*self._users()))
        device.route_static(
            "GET", "/ISAPI/Security/UserPermission", lambda r: self._xml(*self._permissions())
        )
        # Replaces the login module's /ISAPI/System/time: this one knows the clock's offset.
        device.route_static("GET", "/ISAPI/System/time", lambda r: self._xml(*self._time()))
        device.route_static("GET", TRACKS, lambda r: self._xml("TrackList", self._tracks()))
        device.route_static("GET", _ONE_TRACK, self._one_track)

    def _xml(self, root: str, inner: str) -> Response:
        return Response(200, restyle_xml(document(root, inner), self.device.config.variants))

    def _users(self) -> tuple[str, str]:
        cfg = self.device.config
        level = "Administrator" if cfg.events.remote_alarm_right else "Operator"
        user = elements(id=1, userName=cfg.username, userLevel=level)
        return "UserList", f"<User>\n{user}</User>\n"

    def _permissions(self) -> tuple[str, str]:
        right = self.device.config.events.remote_alarm_right
        remote = elements(
            record=True,
            playBack=True,
            preview=True,
            alarmOutOrUpload=right,
            parameterConfig=right,
            logOrStateCheck=True,
        )
        entry = elements(id=1, userID=1, userType="admin" if right else "operator")
        return (
            "UserPermissionList",
            f"<UserPermission>\n{entry}<remotePermission>\n{remote}</remotePermission>\n"
            "</UserPermission>\n",
        )

    def _time(self) -> tuple[str, str]:
        cfg = self.device.config
        return "Time", elements(
            timeMode="NTP" if cfg.events.ntp else "manual",
            localTime=device_now(cfg).isoformat(timespec="seconds"),
            timeZone=documents.posix_zone(cfg.utc_offset_minutes),
        )

    def _track(self, channel: int) -> str:
        cfg = self.device.config
        dev_id = cfg.channel_id(channel)
        plan = cfg.recordings.channels
        records = cfg.events.record_schedule and (plan is None or channel in plan)
        actions = "".join(
            "<ScheduleAction>\n"
            + elements(id=n)
            + f"<ScheduleActionStartTime>\n{elements(DayOfWeek=day, TimeOfDay='00:00:00')}"
            + "</ScheduleActionStartTime>\n"
            + f"<ScheduleActionEndTime>\n{elements(DayOfWeek=day, TimeOfDay='24:00:00')}"
            + "</ScheduleActionEndTime>\n"
            + elements(ScheduleDSTEnable=False, Description="nothing")
            + f"<Actions>\n{elements(Record=True, ActionRecordingMode='CMR')}</Actions>\n"
            + "</ScheduleAction>\n"
            for n, day in enumerate(_DAYS, start=1)
            if records
        )
        return (
            elements(id=f"{dev_id}01", Channel=dev_id, Enable=True)
            + "<TrackSchedule>\n<ScheduleBlockList>\n<ScheduleBlock>\n"
            + elements(
                ScheduleBlockGUID="{00000000-0000-0000-0000-000000000000}",
                ScheduleBlockType="www.std-cgi.com/racm/schedule/ver10",
            )
            + actions
            + "</ScheduleBlock>\n</ScheduleBlockList>\n</TrackSchedule>\n"
        )

    def _tracks(self) -> str:
        count = self.device.config.channel_count
        return "".join(f"<Track>\n{self._track(ch)}</Track>\n" for ch in range(1, count + 1))

    def _one_track(self, request: Request) -> Response:
        match = re.fullmatch(_ONE_TRACK, request.path)
        assert match is not None
        channel = self.device.config.channel_of_id(int(match[1]) // 100)
        if channel is None:
            return Response(404, documents.not_supported(request.path))
        return self._xml("Track", self._track(channel))
