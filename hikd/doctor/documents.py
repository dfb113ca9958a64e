"""Readers for the ISAPI documents the doctor looks at, in every spelling devices use.

Names match without namespace or case (`hikd.isapi_xml`), elements come in any order, and
unknown elements (``<Extensions>``) are ignored. Facts from devices' captures (hikvision_next's
tests) and the ISAPI guide:

* ``/ISAPI/Event/triggers``: ``EventTriggerList`` of ``EventTrigger``, sometimes wrapped in
  ``EventNotification``; a channel is ``videoInputChannelID`` or, for an NVR's IP channels,
  ``dynVideoInputChannelID``; an alarm input ``inputIOPortID`` or ``dynInputIOPortID``; each
  linkage an ``EventTriggerNotification`` whose ``notificationMethod`` ``center`` is
  "notify surveillance center" (some firmware pushes to its HTTP alarm hosts on an ``HTTP``
  entry, with ``httpHostID``, instead); an empty list is ``<EventTriggerNotificationList/>``.
* ``/ISAPI/Event/notification/httpHosts``: ``HttpHostNotification`` slots with
  ``ipAddress`` (``0.0.0.0`` when unused) or ``hostName``, ``portNo``, ``url``.
* ``/ISAPI/Event/schedules/<kind>s``: ``Schedule`` per channel with ``TimeBlock``s of
  ``dayOfWeek`` (ISO, 1 = Monday; none: the holiday row) and ``beginTime``/``endTime``.
* ``/ISAPI/System/time``: ``localTime`` (with or without offset), ``timeZone`` POSIX-style
  with the sign inverted (``CST-8:00:00`` is UTC+8), ``timeMode`` NTP or manual.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from hikd.isapi_xml import fields, first, named, parse


@dataclass(frozen=True, slots=True)
class TriggerInfo:
    id: str
    event_type: str
    """As the device writes it (``VMD``, ``linedetection``, ``IO``, ...)."""
    channel: int | None
    """The device's id of the video channel, if the trigger has one."""
    input_port: int | None
    dynamic: bool
    """The channel is an NVR's IP channel (``dynVideoInputChannelID``)."""
    methods: tuple[str, ...]
    """The linkage: ``notificationMethod`` of each entry, lower case."""

    @property
    def notifies_center(self) -> bool:
        return "center" in self.methods


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def triggers(body: bytes) -> list[TriggerInfo]:
    root = parse(body)
    if root is None:
        return []
    out: list[TriggerInfo] = []
    for element in named(root, "EventTrigger"):
        values = fields(element)
        methods = tuple(
            first(fields(n), "notificationMethod").lower()
            for n in named(element, "EventTriggerNotification")
        )
        channel = first(values, "videoInputChannelID", "dynVideoInputChannelID")
        port = first(values, "inputIOPortID", "dynInputIOPortID")
        out.append(
            TriggerInfo(
                id=first(values, "id"),
                event_type=first(values, "eventType"),
                channel=_int(channel) if channel else None,
                input_port=_int(port) if port else None,
                dynamic=bool(first(values, "dynVideoInputChannelID")),
                methods=tuple(m for m in methods if m),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class AlarmHost:
    id: str
    address: str
    """``ipAddress``, else ``hostName``; "" or ``0.0.0.0`` when the slot is unused."""
    port: int
    url: str
    protocol: str

    @property
    def unused(self) -> bool:
        return self.address in ("", "0.0.0.0", "::")


def alarm_hosts(body: bytes) -> list[AlarmHost]:
    root = parse(body)
    if root is None:
        return []
    out = []
    for element in named(root, "HttpHostNotification"):
        values = fields(element)
        out.append(
            AlarmHost(
                id=first(values, "id"),
                address=first(values, "ipAddress", "hostName", "ipv6Address"),
                port=_int(first(values, "portNo")) or 0,
                url=first(values, "url") or "/",
                protocol=first(values, "protocolType").upper() or "HTTP",
            )
        )
    return out


def detection_enabled(body: bytes) -> bool | None:
    """The ``<enabled>`` of a detection document (its own, not a region's); None if absent."""
    root = parse(body)
    if root is None:
        return None
    text = first(fields(root), "enabled").lower()
    return {"true": True, "false": False, "1": True, "0": False}.get(text)


@dataclass(frozen=True, slots=True)
class TimeBlock:
    day: int | None
    """ISO weekday (1 = Monday); None: the holiday row."""
    begin_s: int
    end_s: int


def _seconds(text: str) -> int | None:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text.strip())
    if match is None:
        return None
    return int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3] or 0)


def schedules(body: bytes) -> dict[int, list[TimeBlock]]:
    """Time blocks per channel (or alarm input) of a schedule list (or one schedule)."""
    root = parse(body)
    if root is None:
        return {}
    out: dict[int, list[TimeBlock]] = {}
    for schedule in named(root, "Schedule"):
        values = fields(schedule)
        source = first(
            values, "videoInputChannelID", "dynVideoInputChannelID", "inputIOPortID", "channelID"
        )
        if not source:
            digits = re.search(r"(\d+)$", first(values, "id"))
            source = digits[1] if digits else ""
        channel = _int(source) if source else None
        if channel is None:
            continue
        blocks = out.setdefault(channel, [])
        for block in named(schedule, "TimeBlock"):
            day = _int(first(fields(block), "dayOfWeek"))
            for time_range in named(block, "TimeRange"):
                span = fields(time_range)
                begin = _seconds(first(span, "beginTime"))
                end = _seconds(first(span, "endTime"))
                if begin is not None and end is not None and end > begin:
                    blocks.append(TimeBlock(day, begin, end))
    return out


def covers(blocks: list[TimeBlock], now: datetime) -> bool:
    """Whether a weekly schedule covers `now` (the device's wall clock)."""
    second = now.hour * 3600 + now.minute * 60 + now.second
    return any(b.day == now.isoweekday() and b.begin_s <= second < b.end_s for b in blocks if b.day)


def week_blocks(blocks: list[TimeBlock]) -> list[TimeBlock]:
    return [b for b in blocks if b.day]


def _time_of_day(element: ET.Element) -> tuple[str, str]:
    values = fields(element)
    return first(values, "DayOfWeek"), first(values, "TimeOfDay")


def record_schedules(body: bytes) -> dict[int, bool]:
    """Per channel (the device's id): whether its track is on and its record schedule
    records at some time of the week (``/ISAPI/ContentMgmt/record/tracks``: a ``Track`` per
    stream, id ``<channel>01``; its ``ScheduleAction``s, each with ``Actions``/``Record``
    or only an ``ActionRecordingMode``)."""
    root = parse(body)
    if root is None:
        return {}
    out: dict[int, bool] = {}
    for track in named(root, "Track"):
        values = fields(track)
        channel = _int(first(values, "Channel", "channelID"))
        if channel is None:
            track_id = _int(first(values, "id"))
            channel = track_id // 100 if track_id else None
        if channel is None:
            continue
        enabled = first(values, "Enable", "enabled").lower() != "false"
        records = False
        for action in named(track, "ScheduleAction"):
            start = [_time_of_day(t) for t in named(action, "ScheduleActionStartTime")]
            end = [_time_of_day(t) for t in named(action, "ScheduleActionEndTime")]
            flags = [first(fields(a), "Record").lower() for a in named(action, "Actions")]
            if start != end and not any(f == "false" for f in flags):
                records = True
        out[channel] = out.get(channel, False) or (enabled and records)
    return out


@dataclass(frozen=True, slots=True)
class DeviceTime:
    now: datetime | None
    """The device's clock, timezone-aware; None if it could not be read."""
    mode: str
    """``timeMode`` as the device writes it (NTP, manual, ...)."""

    @property
    def ntp(self) -> bool:
        return self.mode.lower() == "ntp"


_POSIX = re.compile(r"^[A-Za-z]{3,}([+-]?)(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?")


def posix_offset(text: str) -> timezone | None:
    """``CST-8:00:00`` -> UTC+8 (POSIX writes the sign inverted); daylight rules ignored."""
    match = _POSIX.match(text.strip())
    if match is None:
        return None
    minutes = int(match[2]) * 60 + int(match[3] or 0)
    sign = 1 if match[1] == "-" else -1
    return timezone(timedelta(minutes=sign * minutes))


def device_time(body: bytes, zone: tzinfo | None) -> DeviceTime:
    """The device's clock from ``/ISAPI/System/time``; a ``localTime`` without an offset is
    read in `zone` (the configured ``timezone``), else in the device's ``timeZone``."""
    root = parse(body)
    if root is None:
        return DeviceTime(None, "")
    values = fields(root)
    mode = first(values, "timeMode")
    try:
        local = datetime.fromisoformat(first(values, "localTime"))
    except ValueError:
        return DeviceTime(None, mode)
    if local.tzinfo is None:
        zone = zone or posix_offset(first(values, "timeZone"))
        if zone is None:
            return DeviceTime(None, mode)
        local = local.replace(tzinfo=zone)
    return DeviceTime(local, mode)


@dataclass(frozen=True, slots=True)
class UserRights:
    level: str
    """``Administrator``, ``Operator``, ``Viewer`` (or the permission list's ``userType``)."""
    remote_alarm: bool | None
    """``alarmOutOrUpload`` of the remote permissions: notify the surveillance center and
    trigger alarm outputs; None when the device did not say."""


def user_rights(users: bytes, permissions: bytes | None, username: str) -> UserRights | None:
    """The rights of `username`; None when the user list does not name it."""
    root = parse(users)
    if root is None:
        return None
    user_id = level = ""
    for user in named(root, "User"):
        values = fields(user)
        if first(values, "userName") == username:
            user_id, level = first(values, "id"), first(values, "userLevel")
            break
    else:
        return None
    if level.lower() in ("administrator", "admin"):
        return UserRights("Administrator", True)
    remote: bool | None = None
    perms = parse(permissions) if permissions else None
    if perms is not None:
        for entry in named(perms, "UserPermission"):
            values = fields(entry)
            if first(values, "userID", "id") != user_id:
                continue
            level = level or first(values, "userType")
            for block in named(entry, "remotePermission"):
                text = first(fields(block), "alarmOutOrUpload").lower()
                remote = {"true": True, "false": False}.get(text, remote)
            break
    return UserRights(level or "unknown", remote)
