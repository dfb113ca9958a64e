"""The device log and `POST /ISAPI/ContentMgmt/logSearch` (NET_DVR_FindDVRLog_V30).

The library maps major/minor types from the `<metaId>` path (the tag must be spelled
`metaId`), copies StartDateTime as wall-clock time, userName and ipAddress, and pages by
`MORE` like the file search (sdk-over-isapi.md part 2 e).
"""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from hikd.sim import documents
from hikd.sim.alerts import kind_of
from hikd.sim.documents import elements
from hikd.sim.http import Connection, Request, Response
from hikd.sim.parts import DevicePart
from hikd.sim.recordings import parse_wall, wall

LOG_SEARCH_PATH = "/ISAPI/ContentMgmt/logSearch"
META_PREFIX = "log.std-cgi.com"
MAX_ENTRIES = 200_000

_BACKGROUND = [
    ("Operation", "localLogin", "admin", "127.0.0.1", "local login"),
    ("Information", "hddInfo", "", "", "HDD information"),
    ("Alarm", "motionStart", "", "", "motion detection started"),
    ("Alarm", "motionStop", "", "", "motion detection stopped"),
    ("Operation", "remoteLogin", "admin", "192.168.1.10", "login ok"),
    ("Operation", "remoteLogout", "admin", "192.168.1.10", "logout"),
    ("Exception", "videoLost", "", "", "video loss"),
    ("Information", "systemRunningState", "", "", "running"),
]

# What a device writes to its log for an alarm: (major, start minor, stop minor). The
# names are those the library maps to dwMajorType/dwMinorType (its table in
# libHCGeneralCfgMgr.so has alarmIn, motionStart/Stop, hideStart, vcaStart/Stop, videoLost,
# hdFull, ...; no hideStop). Real devices end the path with the channel (or alarm input):
# ``log.hikvision.com/Alarm/motionStart/15``; the library copies that number into
# dwChannel (dwAlarmInPort for alarmIn), its only source of the channel over ISAPI.
_SMART = ("linedetection", "fielddetection", "regionEntrance", "regionExiting", "loitering",
          "group", "rapidMove", "parking", "unattendedBaggage", "attendedBaggage")  # fmt: skip
ALARM_LOG: dict[str, tuple[str, str, str | None]] = {
    "VMD": ("Alarm", "motionStart", "motionStop"),
    "IO": ("Alarm", "alarmIn", None),
    "shelteralarm": ("Alarm", "hideStart", None),
    "tamperdetection": ("Alarm", "hideStart", None),
    **{name: ("Alarm", "vcaStart", "vcaStop") for name in _SMART},
    "videoloss": ("Exception", "videoLost", None),
    "diskfull": ("Exception", "hdFull", None),
    "diskerror": ("Exception", "hdError", None),
    "nicbroken": ("Exception", "netBroken", None),
    "ipconflict": ("Exception", "ipConflict", None),
    "illaccess": ("Exception", "illegalAccess", None),
}


@dataclass(frozen=True, slots=True)
class LogEntry:
    time: datetime
    """Device wall-clock time."""
    major: str
    minor: str
    user: str = ""
    ip: str = ""
    info: str = ""
    channel: int = 0


class DeviceLog:
    """A bounded, time-ordered log of what happened on the device."""

    def __init__(self, device: DevicePart) -> None:
        self.device = device
        self._entries: list[LogEntry] = []
        self._times: list[datetime] = []
        """The entries' times, kept sorted with the entries (binary search per page)."""
        self._lock = threading.Lock()
        self.clock = documents.DeviceClock(device.config)
        count = device.config.log_entries
        end = documents.device_now(device.config).replace(tzinfo=None, microsecond=0)
        for i in range(count):
            major, minor, user, ip, info = _BACKGROUND[i % len(_BACKGROUND)]
            when = end - timedelta(days=1) + timedelta(seconds=i * 86_400 // max(1, count))
            self._append(LogEntry(when, major, minor, user, ip, info))
        device.route("POST", LOG_SEARCH_PATH, self._search)

    def add(
        self,
        major: str,
        minor: str,
        *,
        user: str = "",
        ip: str = "",
        info: str = "",
        channel: int = 0,
    ) -> None:
        when = self.clock.wall()
        with self._lock:
            self._append(LogEntry(when, major, minor, user, ip, info, channel))

    def _append(self, entry: LogEntry) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            del self._entries[: MAX_ENTRIES // 10]
            del self._times[: MAX_ENTRIES // 10]
        if not self._times or entry.time >= self._times[-1]:
            self._entries.append(entry)
            self._times.append(entry.time)
        else:  # a clock set back: keep the order
            at = bisect.bisect_right(self._times, entry.time)
            self._entries.insert(at, entry)
            self._times.insert(at, entry.time)

    def alarm(self, event_type: str, channel: int, state: str) -> None:
        """Log an alarm the device raised: its start, and its end where the log has a
        name for it. Other types (smart events the log does not know) are logged by name."""
        if event_type == "heartBeat" or not self.device.config.log_alarms:
            return
        major, start, stop = ALARM_LOG.get(event_type, ("Alarm", event_type, None))
        minor = start if state == "active" else stop
        if minor is None:
            return
        if kind_of(event_type).scope not in ("io", "device"):
            channel = self.device.config.channel_id(channel)  # the device's own id
        self.add(major, minor, info=f"{event_type} on channel {channel}", channel=channel)

    def entries(self) -> list[LogEntry]:
        """The log, oldest first."""
        with self._lock:
            return list(self._entries)

    def between(self, start: datetime, end: datetime) -> list[LogEntry]:
        with self._lock:
            low = bisect.bisect_left(self._times, start)
            high = bisect.bisect_right(self._times, end)
            return self._entries[low:high]

    async def _search(self, request: Request, conn: Connection) -> Response:
        body = request.body
        try:
            start = parse_wall(_text(body, "startTime"))
            end = parse_wall(_text(body, "endTime"))
            position = max(0, int(_text(body, "searchResultPostion") or 0))
            limit = max(1, int(_text(body, "maxResults") or 40))
        except ValueError:
            return Response(
                400,
                documents.response_status(request.path, 4, "Invalid XML Content", "badXmlContent"),
            )
        matches = self.between(start, end)
        page = matches[position : position + limit]
        if not page:
            status = "NO MATCHES"
        elif position + len(page) < len(matches):
            status = "MORE"
        else:
            status = "OK"
        items = "".join(_item(e, position + i + 1) for i, e in enumerate(page))
        reply = documents.document(
            "CMSearchResult",
            elements(
                searchID=_text(body, "searchID"),
                responseStatus=True,
                responseStatusStrg=status,
                numOfMatches=len(page),
            )
            + f"<matchList>\n{items}</matchList>\n",
        )
        return Response(200, reply)


def _item(entry: LogEntry, local_id: int) -> str:
    return (
        "<searchMatchItem>\n<logDescriptor>\n"
        + elements(
            metaId=f"{META_PREFIX}/{entry.major}/{entry.minor}"
            + (f"/{entry.channel}" if entry.channel else ""),
            StartDateTime=wall(entry.time),
            localID=local_id,
            paraType=0,
            userName=entry.user,
            ipAddress=entry.ip,
            channelID=entry.channel,
            logInfo=entry.info,
        )
        + "</logDescriptor>\n</searchMatchItem>\n"
    )


def _text(body: bytes, tag: str) -> str:
    match = re.search(rf"<{tag}>([^<]*)</{tag}>".encode(), body)
    return match[1].decode("utf-8", "replace").strip() if match else ""
