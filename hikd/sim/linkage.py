"""The device's event set-up over ISAPI: triggers and their linkage, detections, arming
schedules and HTTP alarm hosts (what `hikd doctor` reads and fixes).

Document shapes follow real devices (hikvision_next's captures of a DS-7608NXI-I2 and
cameras; the ISAPI guide): ``/ISAPI/Event/triggers`` lists ``EventTrigger`` elements whose
``EventTriggerNotificationList`` holds one ``EventTriggerNotification`` per linkage
(``notificationMethod`` ``center`` is "notify surveillance center"); IP channels of an NVR
are ``dynVideoInputChannelID``, and their ``record`` linkage carries ``dynVideoInputID``.
A PUT that lost any element of the device's own document is answered 400, as real devices
answer a rebuilt document (``strict_writes``).
"""

from __future__ import annotations

import re
import threading
from typing import Any, Protocol

from hikd.isapi_xml import fields, key, named, parse
from hikd.sim import documents
from hikd.sim.config import PushTarget
from hikd.sim.device_setup import device_now
from hikd.sim.documents import document, elements
from hikd.sim.http import Connection, Request, Response
from hikd.sim.linkage_config import EventSetup
from hikd.sim.linkage_parts import (
    Trigger,
    bad_content,
    center,
    entries,
    http_host,
    paths,
    spelled,
    usable,
    with_center,
)
from hikd.sim.parts import DevicePart, SyncHandler
from hikd.sim.variants import restyle_xml

TRIGGERS = "/ISAPI/Event/triggers"
HTTP_HOSTS = "/ISAPI/Event/notification/httpHosts"
_ONE_TRIGGER = r"/ISAPI/Event/triggers/([A-Za-z0-9_.-]+)"
_NOTIFICATIONS = r"/ISAPI/Event/triggers/([A-Za-z0-9_.-]+)/notifications"

# Detections with an on/off document, by event type: (trigger id prefix, schedule list,
# the document's root, its URL for an analog/camera channel and for an NVR's IP channel).
DETECTIONS: dict[str, tuple[str, str, str, str, str]] = {
    "VMD": (
        "VMD",
        "motionDetections",
        "MotionDetection",
        "/ISAPI/System/Video/inputs/channels/{}/motionDetection",
        "/ISAPI/ContentMgmt/InputProxy/channels/{}/video/motionDetection",
    ),
    "linedetection": (
        "linedetection",
        "lineDetections",
        "LineDetection",
        "/ISAPI/Smart/LineDetection/{}",
        "/ISAPI/Smart/LineDetection/{}",
    ),
    "fielddetection": (
        "fielddetection",
        "fieldDetections",
        "FieldDetection",
        "/ISAPI/Smart/FieldDetection/{}",
        "/ISAPI/Smart/FieldDetection/{}",
    ),
}
OTHER_VIDEO_TRIGGERS = {"tamperdetection": "tamper", "videoloss": "videoloss"}
EXCEPTIONS = ("diskfull", "diskerror", "illaccess")
UNREACHABLE_DELAY_S = 8.0
_VIDEO_PREFIX = {t: d[0] for t, d in DETECTIONS.items()} | OTHER_VIDEO_TRIGGERS
"""Event type -> the prefix of its per-channel trigger ids."""


class Pushes(Protocol):
    push_targets: list[PushTarget]


class LinkageHost(DevicePart, Protocol):
    """What the event set-up needs of the device: where its alarms are pushed."""

    @property
    def alarms(self) -> Pushes: ...


class EventLinkage:
    """The event set-up of one simulated device; tests change it with the methods below.

    The HTTP alarm hosts are live: the device pushes every alarm to each one that names an
    address and port (besides ``push_targets`` of its configuration)."""

    def __init__(self, device: LinkageHost) -> None:
        self.device = device
        cfg = device.config
        setup = cfg.events
        self.writes: list[tuple[str, bytes]] = []
        """(path, body) of every PUT the device accepted."""
        self._lock = threading.Lock()
        self.triggers: dict[str, Trigger] = {}
        self.detections: dict[tuple[str, int], bool] = {}
        camera = cfg.device_type in ("IPCamera", "IPDome")
        for channel in range(1, cfg.channel_count + 1):
            dev_id = cfg.channel_id(channel)
            ip = channel > cfg.analog_channels and not camera
            source = ("dynVideoInputChannelID" if ip else "videoInputChannelID", dev_id)
            record = {
                "id": f"record-{dev_id}",
                "notificationMethod": "record",
                "notificationRecurrence": "beginning",
                ("dynVideoInputID" if ip else "videoInputID"): str(dev_id),
            }
            for event_type, prefix in [
                *((t, d[0]) for t, d in DETECTIONS.items()),
                *OTHER_VIDEO_TRIGGERS.items(),
            ]:
                trigger = Trigger(f"{prefix}-{dev_id}", event_type, source, [dict(record)])
                self.triggers[trigger.id] = trigger
                if event_type in DETECTIONS:
                    self.detections[(event_type, dev_id)] = setup.detections
        for port in range(1, cfg.alarm_inputs + 1):
            trigger = Trigger(f"IO-{port}", "IO", ("inputIOPortID", port))
            self.triggers[trigger.id] = trigger
        for exception in EXCEPTIONS:  # the whole device's: no channel or input
            self.triggers[exception] = Trigger(exception, exception, None)
        if setup.notify_center:
            for trigger in self.triggers.values():
                trigger.notifications.append(center())
        self.http_hosts = [http_host(i) for i in range(1, setup.alarm_host_slots + 1)]
        if setup.alarm_host:
            address, _, host_port = setup.alarm_host.rpartition(":")
            self.http_hosts[0].update(ipAddress=address, portNo=host_port, url="/")
        self.unreachable: set[int] = set()
        """Channels (the simulator's numbers) whose camera does not answer: their detection
        documents come only after `UNREACHABLE_DELAY_S`."""
        self._pushing: list[PushTarget] = []
        self._sync_pushes()
        self._routes()

    # ----- knobs and what tests read -------------------------------------------------------

    def set_up(self, **changes: Any) -> None:
        """Change the device's `EventSetup` at run time (``POST /hikd-sim/set`` with
        ``{"events": {...}}``): e.g. ``set_up(notify_center=False, schedule="empty")``."""
        cfg = self.device.config
        setup = EventSetup.model_validate({**cfg.events.model_dump(), **changes})
        cfg.events = setup
        with self._lock:
            if "notify_center" in changes:
                for trigger in self.triggers.values():
                    with_center(trigger, setup.notify_center)
            if "detections" in changes:
                for key in self.detections:
                    self.detections[key] = setup.detections
            if "alarm_host" in changes:
                address, _, port = setup.alarm_host.rpartition(":")
                self.http_hosts[0].update(ipAddress=address or "0.0.0.0", portNo=port or "80")
        self._sync_pushes()

    def detection(self, event_type: str, device_id: int) -> bool | None:
        """Whether a detection (``VMD``, ``linedetection``, ``fielddetection``) is on for
        the channel the device calls `device_id`; None when it has no such detection."""
        with self._lock:
            return self.detections.get((event_type, device_id))

    def set_detection(self, event_type: str, device_id: int, on: bool) -> None:
        with self._lock:
            self.detections[(event_type, device_id)] = on

    def set_notify_center(self, trigger_id: str, on: bool) -> None:
        with self._lock:
            with_center(self.triggers[trigger_id], on)

    def notifies_center(self, trigger_id: str) -> bool:
        with self._lock:
            methods = [n.get("notificationMethod") for n in self.triggers[trigger_id].notifications]
        return "center" in methods

    def _sync_pushes(self) -> None:
        """Push targets for the alarm host slots that point somewhere."""
        with self._lock:
            hosts = [dict(h) for h in self.http_hosts]
        targets = self.device.alarms.push_targets
        for old in self._pushing:
            if old in targets:
                targets.remove(old)
        self._pushing = [
            PushTarget(host=h["ipAddress"], port=int(h["portNo"]), path=h.get("url") or "/")
            for h in hosts
            if usable(h)
        ]
        targets.extend(self._pushing)

    def lets_out(self, event_type: str, channel: int, push: bool = False) -> bool:
        """Whether an alarm of `event_type` on simulator channel (or input) `channel` is sent
        to clients: its trigger's linkage has "center" (or, with `push`, for the alarm
        hosts, "HTTP") and, for a detection, the arming schedule covers now. Types without
        a trigger here are always sent."""
        methods = {"center", "HTTP"} if push else {"center"}
        cfg = self.device.config
        prefix = _VIDEO_PREFIX.get(event_type)
        if prefix is not None:
            trigger_id = f"{prefix}-{cfg.channel_id(channel)}"
        elif event_type == "IO":
            trigger_id = f"IO-{channel}"
        else:
            trigger_id = event_type
        with self._lock:
            trigger = self.triggers.get(trigger_id)
            center = trigger is None or any(
                n.get("notificationMethod") in methods for n in trigger.notifications
            )
        return center and (event_type not in DETECTIONS or cfg.events.schedule == "always")

    def alarm_hosts(self) -> list[tuple[str, int]]:
        """(address, port) of every HTTP alarm host slot."""
        with self._lock:
            return [(h["ipAddress"], int(h["portNo"] or 0)) for h in self.http_hosts]

    # ----- documents -----------------------------------------------------------------------

    def _routes(self) -> None:
        dev = self.device
        dev.route_static("GET", TRIGGERS, lambda r: self._xml("EventTriggerList", self._list()))
        dev.route_static("GET", _ONE_TRIGGER, self._get_trigger)
        dev.route("PUT", _ONE_TRIGGER, self._put_trigger)
        dev.route_static("GET", _NOTIFICATIONS, self._get_notifications)
        dev.route("PUT", _NOTIFICATIONS, self._put_notifications)
        dev.route_static("GET", HTTP_HOSTS, lambda r: self._xml(*self._hosts_doc()))
        dev.route("PUT", HTTP_HOSTS, self._put_hosts)
        # The detections' own documents (on/off) are served by `hikd.sim.controls`.
        for event_type, (_p, plural, _root, _analog_url, _ip_url) in DETECTIONS.items():
            lists = f"/ISAPI/Event/schedules/{plural}"
            dev.route_static("GET", lists, self._schedules(event_type))
            one = rf"{lists}/{DETECTIONS[event_type][0]}_video(\d+)"
            dev.route_static("GET", one, self._one_schedule(event_type))

    def _xml(self, root: str, inner: str) -> Response:
        return Response(200, restyle_xml(document(root, inner), self.device.config.variants))

    def _trigger_xml(self, trigger: Trigger) -> str:
        inner = elements(
            id=trigger.id,
            eventType=trigger.event_type,
            eventDescription=f"{trigger.event_type} Event trigger Information",
            **({trigger.source[0]: trigger.source[1]} if trigger.source else {}),
        )
        return inner + self._notifications_xml(trigger)

    def _notifications_xml(self, trigger: Trigger) -> str:
        listed = entries(trigger)
        if not listed:
            return "<EventTriggerNotificationList/>\n"
        return f"<EventTriggerNotificationList>\n{listed}</EventTriggerNotificationList>\n"

    def _list(self) -> str:
        with self._lock:
            return "".join(
                f"<EventTrigger>\n{self._trigger_xml(t)}</EventTrigger>\n"
                for t in self.triggers.values()
            )

    def _trigger(self, request: Request, pattern: str) -> Trigger | None:
        match = re.fullmatch(pattern, request.path)
        return self.triggers.get(match[1]) if match else None

    def _get_trigger(self, request: Request) -> Response:
        trigger = self._trigger(request, _ONE_TRIGGER)
        if trigger is None:
            return Response(404, documents.not_supported(request.path))
        with self._lock:
            return self._xml("EventTrigger", self._trigger_xml(trigger))

    def _get_notifications(self, request: Request) -> Response:
        trigger = self._trigger(request, _NOTIFICATIONS)
        if trigger is None:
            return Response(404, documents.not_supported(request.path))
        with self._lock:
            return self._xml("EventTriggerNotificationList", entries(trigger))

    async def _put_trigger(self, request: Request, conn: Connection) -> Response:
        return self._write_trigger(request, _ONE_TRIGGER, self._get_trigger)

    async def _put_notifications(self, request: Request, conn: Connection) -> Response:
        return self._write_trigger(request, _NOTIFICATIONS, self._get_notifications)

    def _write_trigger(self, request: Request, pattern: str, current: SyncHandler) -> Response:
        trigger = self._trigger(request, pattern)
        if trigger is None:
            return Response(404, documents.not_supported(request.path))
        refused = self._refuse(request, current(request).body)
        if refused is not None:
            return refused
        root = parse(request.body)
        assert root is not None  # checked by _refuse
        written = [fields(n) for n in named(root, "EventTriggerNotification")]
        with self._lock:
            trigger.notifications = [{spelled(k): v for k, v in entry.items()} for entry in written]
            self.writes.append((request.path, request.body))
        return Response(200, documents.response_status(request.path))

    def _hosts_doc(self) -> tuple[str, str]:
        with self._lock:
            hosts = [dict(h) for h in self.http_hosts]
        inner = "".join(
            "<HttpHostNotification>\n"
            + elements(**host)
            + "<Extensions>\n<intervalBetweenEvents>0</intervalBetweenEvents>\n</Extensions>\n"
            + "</HttpHostNotification>\n"
            for host in hosts
        )
        return "HttpHostNotificationList", inner

    async def _put_hosts(self, request: Request, conn: Connection) -> Response:
        refused = self._refuse(request, self._xml(*self._hosts_doc()).body)
        if refused is not None:
            return refused
        root = parse(request.body)
        assert root is not None
        with self._lock:
            for entry in named(root, "HttpHostNotification"):
                values = {spelled(k): v for k, v in fields(entry).items()}
                for host in self.http_hosts:
                    if host["id"] == values.get("id"):
                        host.update({k: v for k, v in values.items() if k in host})
            self.writes.append((request.path, request.body))
        self._sync_pushes()
        return Response(200, documents.response_status(request.path))

    def _refuse(self, request: Request, current: bytes) -> Response | None:
        """400 for a body that is not XML, or (strict) that lost elements of ``current``."""
        new = parse(request.body)
        old = parse(current)
        if new is None or old is None or key(new.tag) != key(old.tag):
            return Response(400, bad_content(request.path))
        if self.device.config.events.strict_writes and not paths(old, leaves_only=True) <= paths(
            new
        ):
            return Response(400, bad_content(request.path))
        return None

    def _schedule_entries(self, event_type: str) -> dict[int, str]:
        """The inner XML of each channel's ``Schedule`` (by the device's channel id)."""
        today = device_now(self.device.config).isoweekday()
        schedule = self.device.config.events.schedule
        days = {"always": range(1, 8), "empty": range(0), "not_now": range(1, 8)}
        blocks = "".join(
            "<TimeBlock>\n"
            + elements(dayOfWeek=day)
            + "<TimeRange>\n"
            + elements(beginTime="00:00:00", endTime="24:00:00")
            + "</TimeRange>\n</TimeBlock>\n"
            for day in days[schedule]
            if not (schedule == "not_now" and day == today)
        )
        prefix = DETECTIONS[event_type][0]
        with self._lock:
            sources = [t.source for t in self.triggers.values() if t.event_type == event_type]
        return {
            dev_id: elements(id=f"{prefix}_video{dev_id}", eventType=event_type)
            + elements(**{kind: dev_id})
            + f'<TimeBlockList size="8">\n{blocks}</TimeBlockList>\n'
            for kind, dev_id in (s for s in sources if s)
        }

    def _schedules(self, event_type: str) -> SyncHandler:
        def reply(request: Request) -> Response:
            entries = self._schedule_entries(event_type).values()
            inner = "".join(f"<Schedule>\n{entry}</Schedule>\n" for entry in entries)
            return self._xml("ScheduleList", inner)

        return reply

    def _one_schedule(self, event_type: str) -> SyncHandler:
        def reply(request: Request) -> Response:
            match = re.search(r"(\d+)$", request.path)
            entry = self._schedule_entries(event_type).get(int(match[1]) if match else 0)
            if entry is None:
                return Response(404, documents.not_supported(request.path))
            return self._xml("Schedule", entry)

        return reply
