"""The device's event triggers: is each detection on, does its linkage "notify surveillance
center", does its arming schedule cover now. Only such events reach arming or listening
(peers.md, "the vendor's own hints"); a device without them sends nothing at all.

Read over the pass-through (``NET_DVR_STDXMLConfig``), which works on private sessions too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hikd.doctor import documents
from hikd.doctor.documents import TriggerInfo
from hikd.doctor.report import Check, DeviceReport, Status
from hikd.sdk.errors import NotFoundError, NotSupportedError, SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

TRIGGERS_URL = "/ISAPI/Event/triggers"
DETECTION_TIMEOUT_MS = 3000
"""The library's minimum receive time-out (5.2.5) is for the session; one document of a
camera behind an NVR gets less, as the doctor asks for many."""


@dataclass(frozen=True, slots=True)
class Kind:
    label: str
    menu: str
    """Where the event is set up in the web UI, after "Configuration -> Event ->"."""
    detection: str = ""
    """URL of the on/off document ({} = the channel id); "" when hikd does not read one."""
    ip_detection: str = ""
    """The same for an NVR's IP channel (``dynVideoInputChannelID``)."""
    schedules: str = ""
    """The schedule list, e.g. ``/ISAPI/Event/schedules/motionDetections``."""
    schedule_item: str = ""
    """One channel's schedule under that list, for firmware without the list form
    ({} = the channel id; ``VMD_video1`` in peers' code and scripts for real cameras)."""


KINDS: dict[str, Kind] = {
    "vmd": Kind(
        "motion",
        "Basic Event -> Motion Detection",
        "/ISAPI/System/Video/inputs/channels/{}/motionDetection",
        "/ISAPI/ContentMgmt/InputProxy/channels/{}/video/motionDetection",
        "/ISAPI/Event/schedules/motionDetections",
        "VMD_video{}",
    ),
    "linedetection": Kind(
        "line crossing",
        "Smart Event -> Line Crossing Detection",
        "/ISAPI/Smart/LineDetection/{}",
        "/ISAPI/Smart/LineDetection/{}",
        "/ISAPI/Event/schedules/lineDetections",
    ),
    "fielddetection": Kind(
        "intrusion",
        "Smart Event -> Intrusion Detection",
        "/ISAPI/Smart/FieldDetection/{}",
        "/ISAPI/Smart/FieldDetection/{}",
        "/ISAPI/Event/schedules/fieldDetections",
    ),
    "regionentrance": Kind(
        "region entrance",
        "Smart Event -> Region Entrance Detection",
        "/ISAPI/Smart/regionEntrance/{}",
        "/ISAPI/Smart/regionEntrance/{}",
        "/ISAPI/Event/schedules/regionEntrances",
    ),
    "regionexiting": Kind(
        "region exiting",
        "Smart Event -> Region Exiting Detection",
        "/ISAPI/Smart/regionExiting/{}",
        "/ISAPI/Smart/regionExiting/{}",
        "/ISAPI/Event/schedules/regionExitings",
    ),
    "io": Kind("alarm input", "Basic Event -> Alarm Input"),
    "tamperdetection": Kind("video tampering", "Basic Event -> Video Tampering"),
    "shelteralarm": Kind("video tampering", "Basic Event -> Video Tampering"),
    "videoloss": Kind("video loss", "Basic Event -> Video Loss"),
    "pir": Kind("PIR", "Basic Event -> PIR Alarm"),
    "scenechangedetection": Kind("scene change", "Smart Event -> Scene Change Detection"),
    "facedetection": Kind("face detection", "Smart Event -> Face Detection"),
    # Exceptions: hikd turns them into health events (disk full, disk error, ...).
    "diskfull": Kind("disk full", "Basic Event -> Exception"),
    "diskerror": Kind("disk error", "Basic Event -> Exception"),
    "illaccess": Kind("illegal login", "Basic Event -> Exception"),
    "nicbroken": Kind("network disconnected", "Basic Event -> Exception"),
    "ipconflict": Kind("IP address conflict", "Basic Event -> Exception"),
    "recordingfailure": Kind("recording failure", "Basic Event -> Exception"),
}
"""The events hikd is meant to receive, by ``eventType`` (lower case)."""


@dataclass
class Found:
    """One event trigger and what hikd learnt of it."""

    trigger: TriggerInfo
    kind: Kind
    number: int
    """hikd's channel number, or the alarm input."""
    enabled: bool | None
    notifies: bool
    """Its linkage reaches hikd: "center" (arming, and the alarm host on most firmware),
    or, when hikd listens, "HTTP" (the alarm host linkage of some firmware)."""

    @property
    def fixable(self) -> bool:
        """Not notifying hikd while the detection is not known to be off."""
        return not self.notifies and self.enabled is not False


@dataclass
class Linkage:
    found: list[Found] = field(default_factory=list)

    def fixable(self) -> list[Found]:
        return [f for f in self.found if f.fixable]


def read_linkage(
    report: DeviceReport, session: DeviceSession, listening: bool = False
) -> Linkage | None:
    """Read the triggers and the on/off state of each detection; None if unreadable.
    `listening`: hikd has listen servers, so an "HTTP" linkage reaches it too."""
    try:
        body = session.isapi("GET", TRIGGERS_URL).body
    except SdkError as exc:
        report.add(
            Check(
                "event linkage",
                "warning",
                f"cannot read the device's event triggers ({TRIGGERS_URL}: {exc})",
                "check on the device that each event's linkage includes Notify Surveillance Center",
                "Configuration -> Event -> (each event) -> Linkage Method",
            )
        )
        return None
    triggers = documents.triggers(body)
    if not triggers:
        report.add(
            Check(
                "event linkage",
                "warning",
                f"the device's event triggers ({TRIGGERS_URL}) list nothing hikd can read",
                "check on the device that each event's linkage includes Notify Surveillance Center",
                "Configuration -> Event -> (each event) -> Linkage Method",
            )
        )
        return None
    linkage = Linkage()
    silent: set[int] = set()
    """Channels whose detection document did not come: an NVR asks its camera for it, and
    an offline camera costs a time-out per document, so each such channel is asked once."""
    for trigger in triggers:
        kind = KINDS.get(trigger.event_type.lower())
        if kind is None:
            continue
        if trigger.channel is not None:
            number = session.channels.from_device_id(trigger.channel)
            dynamic = trigger.dynamic or _is_ip_channel(session, trigger.channel)
            url = kind.ip_detection if dynamic else kind.detection
            enabled = None
            if url and trigger.channel not in silent:
                enabled = _enabled(session, url.format(trigger.channel), silent, trigger.channel)
        else:
            number = trigger.input_port or 0
            enabled = None
        notifies = trigger.notifies_center or (listening and "http" in trigger.methods)
        linkage.found.append(Found(trigger, kind, number, enabled, notifies))
    return linkage


def _is_ip_channel(session: DeviceSession, device_id: int) -> bool:
    channel = session.channels.get(session.channels.from_device_id(device_id))
    return channel is not None and channel.kind == "ip"


def _enabled(session: DeviceSession, url: str, silent: set[int], channel: int) -> bool | None:
    try:
        body = session.isapi("GET", url, timeout_ms=DETECTION_TIMEOUT_MS).body
    except (NotFoundError, NotSupportedError):
        return None  # this firmware has no such document: say nothing of it
    except SdkError:
        silent.add(channel)
        return None
    return documents.detection_enabled(body)


def ranges(numbers: list[int]) -> str:
    """``1-4, 7``."""
    out: list[str] = []
    for n in sorted(set(numbers)):
        if out and n - 1 == int(out[-1].split("-")[-1]):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def check_linkage(report: DeviceReport, linkage: Linkage) -> None:
    by_label: dict[str, list[Found]] = {}
    for found in linkage.found:
        by_label.setdefault(found.kind.label, []).append(found)
    for label, items in by_label.items():
        unit = "alarm inputs" if items[0].trigger.input_port is not None else "channels"

        def on(numbers: list[int], unit: str = unit) -> str:
            # Exceptions (disk full, ...) belong to the whole device: number 0.
            return f" on {unit} {ranges(numbers)}" if any(numbers) else ""

        center = [f for f in items if f.notifies]
        notifying = [f.number for f in center if f.enabled is not False]
        silent_on = [f.number for f in items if f not in center and f.enabled]
        silent = [f.number for f in items if f not in center and f.enabled is None]
        off = [f.number for f in items if f.enabled is False]
        parts = []
        if notifying:
            parts.append(f"notifies hikd{on(notifying)}")
        if silent_on:
            parts.append(f"ON WITHOUT 'notify surveillance center'{on(silent_on)}")
        if silent:
            parts.append(f"no 'notify surveillance center'{on(silent)}")
        if off:
            parts.append(f"off{on(off)}")
        status: Status = "problem" if silent_on else "warning" if silent else "ok"
        fix = sorted(silent_on + silent)
        report.add(
            Check(
                f"{label} linkage",
                status,
                "; ".join(parts),
                f"tick Notify Surveillance Center{on(fix)} (hikd doctor --fix does it)"
                if fix
                else "",
                f"Configuration -> Event -> {items[0].kind.menu} -> Linkage Method" if fix else "",
            )
        )
    reaching = [f for f in linkage.found if f.notifies and f.enabled is not False]
    if not reaching:
        report.add(
            Check(
                "events for hikd",
                "problem",
                "no event on the device notifies the surveillance center: it sends hikd nothing",
                "switch on the events you want and tick Notify Surveillance Center in each "
                "one's linkage (hikd doctor --fix ticks it where the event is on)",
                "Configuration -> Event -> (each event) -> Linkage Method",
            )
        )


def check_schedules(
    report: DeviceReport,
    session: DeviceSession,
    linkage: Linkage,
    device_now: datetime | None,
) -> None:
    """For each detection that is on: is its arming schedule empty, or not covering now."""
    now = device_now or datetime.now(session.config.tzinfo() or UTC)
    by_url: dict[str, list[Found]] = {}
    for found in linkage.found:
        if found.kind.schedules and found.enabled is not False:
            by_url.setdefault(found.kind.schedules, []).append(found)
    for url, items in by_url.items():
        try:
            blocks = documents.schedules(session.isapi("GET", url).body)
        except (NotFoundError, NotSupportedError):
            blocks = _one_by_one(session, url, items)
        except SdkError:
            continue  # nothing to say either way
        _schedule_check(report, items, blocks, now)


def _one_by_one(
    session: DeviceSession, url: str, items: list[Found]
) -> dict[int, list[documents.TimeBlock]]:
    """Each channel's schedule on its own, for firmware without the list form."""
    blocks: dict[int, list[documents.TimeBlock]] = {}
    for found in items:
        item = found.kind.schedule_item
        if not item or found.trigger.channel is None:
            continue
        try:
            body = session.isapi("GET", f"{url}/{item.format(found.trigger.channel)}").body
        except SdkError:
            continue
        blocks.update(documents.schedules(body))
    return blocks


def _schedule_check(
    report: DeviceReport,
    items: list[Found],
    blocks: dict[int, list[documents.TimeBlock]],
    now: datetime,
) -> None:
    kind = items[0].kind
    known = [f for f in items if f.trigger.channel in blocks]
    empty = [f.number for f in known if not documents.week_blocks(blocks[_id(f)])]
    elsewhen = [
        f.number
        for f in known
        if documents.week_blocks(blocks[_id(f)]) and not documents.covers(blocks[_id(f)], now)
    ]
    where = f"Configuration -> Event -> {kind.menu} -> Arming Schedule"
    name = f"{kind.label} schedule"
    if empty:
        report.add(
            Check(
                name,
                "problem",
                f"the arming schedule is empty on channels {ranges(empty)}: the device never "
                "sends these events",
                "draw the times to arm (the whole week for always)",
                where,
            )
        )
    elif elsewhen:
        report.add(
            Check(
                name,
                "warning",
                f"the arming schedule does not cover now ({now:%a %H:%M} on the device) on "
                f"channels {ranges(elsewhen)}",
                "widen the schedule if these events should arrive now",
                where,
            )
        )
    elif known:
        report.add(Check(name, "ok", f"covers now ({now:%a %H:%M} on the device)"))


def _id(found: Found) -> int:
    assert found.trigger.channel is not None
    return found.trigger.channel
