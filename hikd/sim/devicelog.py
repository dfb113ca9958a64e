"""The device log and `POST /ISAPI/ContentMgmt/logSearch` (NET_DVR_FindDVRLog_V30).

The library maps major/minor types from the `<metaId>` path (the tag must be spelled
`metaId`), copies StartDateTime as wall-clock time, userName and ipAddress, and pages by
`MORE` like the file search (sdk-over-isapi.md part 2 e).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hikd.sim import documents
from hikd.sim.documents import elements
from hikd.sim.http import Connection, Request, Response
from hikd.sim.recordings import parse_wall, wall

if TYPE_CHECKING:
    from hikd.sim.device import SimDevice

LOG_SEARCH_PATH = "/ISAPI/ContentMgmt/logSearch"
META_PREFIX = "log.std-cgi.com"
MAX_ENTRIES = 20_000

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

ALARM_MINOR = {
    "VMD": "motionStart",
    "IO": "alarmIn",
    "videoloss": "videoLost",
    "shelteralarm": "shelterAlarmStart",
    "diskfull": "hdFull",
    "diskerror": "hdError",
    "nicbroken": "netBroken",
    "ipconflict": "ipConflict",
    "illaccess": "illegalAccess",
}
EXCEPTION_TYPES = {"videoloss", "diskfull", "diskerror", "nicbroken", "ipconflict", "illaccess"}


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

    def __init__(self, device: SimDevice) -> None:
        self.device = device
        self._entries: deque[LogEntry] = deque(maxlen=MAX_ENTRIES)
        self._lock = threading.Lock()
        self.clock = documents.DeviceClock(device.config)
        count = device.config.log_entries
        end = documents.device_now(device.config).replace(tzinfo=None, microsecond=0)
        for i in range(count):
            major, minor, user, ip, info = _BACKGROUND[i % len(_BACKGROUND)]
            when = end - timedelta(days=1) + timedelta(seconds=i * 86_400 // max(1, count))
            self._entries.append(LogEntry(when, major, minor, user, ip, info))
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
            self._entries.append(LogEntry(when, major, minor, user, ip, info, channel))

    def alarm(self, event_type: str, channel: int, state: str) -> None:
        """Log an alarm the device raised (only starts, as devices do)."""
        if state != "active" or event_type == "heartBeat":
            return
        major = "Exception" if event_type in EXCEPTION_TYPES else "Alarm"
        minor = ALARM_MINOR.get(event_type, event_type)
        self.add(major, minor, info=f"{event_type} on channel {channel}", channel=channel)

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return sorted(self._entries, key=lambda e: e.time)

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
        matches = [e for e in self.entries() if start <= e.time <= end]
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
            metaId=f"{META_PREFIX}/{entry.major}/{entry.minor}",
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
