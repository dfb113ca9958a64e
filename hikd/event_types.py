"""The one table of alarm types: each name hikd emits, and what every part makes of it.

The decoders name an alarm (``hikd.listeners.decode.types`` maps the devices' spellings
onto these names); this table says, for each name, how a person reads it ("Line
crossing"), where on a device it happens (a video channel, an alarm input or output, a
disk, or the device itself), whether it comes once per occurrence (``one_shot``: a
``pulse``, never start/stop), how Home Assistant shows it (a binary sensor with a
``device_class``, or an ``event`` entity for one-shot types) and its syslog severity.
MQTT, Home Assistant discovery and syslog read it from here, so a name can never mean
something to one of them and nothing to another (tests/test_event_types.py checks that
every name the decoders can emit has a row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

Where = Literal["channel", "input", "output", "disk", "device"]
"""Where an alarm happens: a video channel, an alarm input or output, a disk, the device."""

Severity = Literal["alert", "crit", "err", "warning", "notice"]
"""RFC 5424 severity of an alarm's start (or pulse); its end is always ``info``."""

UNKNOWN: Final = "unknown"
"""What a decoder cannot name: passed on raw, never an entity of its own."""


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    label: str
    """In a person's words, capitalised: "Line crossing" (Home Assistant, syslog)."""
    where: Where = "channel"
    device_class: str | None = None
    """Home Assistant's device class: of the binary sensor, or of the event entity."""
    one_shot: bool = False
    """Once per occurrence (a face, a plate): a ``pulse`` event, an ``event`` entity."""
    severity: Severity = "notice"

    @property
    def component(self) -> str:
        """The Home Assistant entity a type becomes: one-shot types are events."""
        return "event" if self.one_shot else "binary_sensor"


def _t(
    name: str,
    label: str,
    where: Where = "channel",
    device_class: str | None = None,
    *,
    one_shot: bool = False,
    severity: Severity = "notice",
) -> EventType:
    return EventType(name, label, where, device_class, one_shot, severity)


_ROWS: Final = (
    # Something moves or is there.
    _t("motion", "Motion", device_class="motion"),
    _t("pir", "PIR", device_class="motion"),
    _t("line_crossing", "Line crossing", device_class="motion"),
    _t("intrusion", "Intrusion", device_class="motion"),
    _t("region_entrance", "Region entrance", device_class="motion"),
    _t("region_exit", "Region exit", device_class="motion"),
    _t("fast_moving", "Fast moving", device_class="motion"),
    _t("running", "Running", device_class="motion"),
    _t("violent_motion", "Violent motion", device_class="motion"),
    _t("climbing", "Climbing", device_class="motion"),
    _t("fall_down", "Fall", device_class="motion"),
    _t("getting_up", "Getting up", device_class="motion"),
    _t("standing_up", "Standing up", device_class="motion"),
    _t("tailgating", "Tailgating", device_class="motion"),
    _t("person_approaching", "Person approaching", device_class="motion"),
    _t("human_detection", "Person", device_class="occupancy"),
    _t("face_detection", "Face", device_class="occupancy"),
    _t("loitering", "Loitering", device_class="occupancy"),
    _t("people_gathering", "People gathering", device_class="occupancy"),
    _t("people_density", "People density", device_class="occupancy"),
    _t("parking", "Parking", device_class="occupancy"),
    _t("unattended_baggage", "Unattended baggage", device_class="occupancy"),
    _t("retention", "Lingering", device_class="occupancy"),
    _t("sitting_still", "Sitting still", device_class="occupancy"),
    _t("leave_position", "Absence", device_class="problem"),
    _t("object_removal", "Object removal", device_class="tamper"),
    _t("object_left_or_taken", "Object left or taken", device_class="tamper"),
    _t("ship_detection", "Ship", device_class="motion"),
    _t("smart_detection", "Smart event", device_class="motion"),
    _t("combined_rule", "Combined rule", device_class="motion"),
    _t("duration", "Duration rule", device_class="motion"),
    _t("spacing_change", "Spacing change", device_class="motion"),
    _t("people_number_change", "People number change", device_class="occupancy"),
    _t("phone_use", "Phone use", device_class="occupancy"),
    _t("safety_helmet", "No safety helmet", device_class="safety", severity="warning"),
    _t("toilet_overtime", "Toilet overtime", device_class="problem"),
    _t("yard_overtime", "Yard overtime", device_class="problem"),
    _t("lecture", "Lecture", device_class="occupancy"),
    _t("answering_question", "Answering a question", device_class="occupancy"),
    _t("blackboard_writing", "Blackboard writing", device_class="occupancy"),
    _t("situation_analysis", "Situation analysis", device_class="occupancy"),
    _t("operation_timeout", "Operation timeout", device_class="problem"),
    # Once per occurrence: faces, plates, counts, doors.
    _t("face_snap", "Face captured", one_shot=True),
    _t("face_match", "Face match", one_shot=True),
    _t("vehicle", "Vehicle", one_shot=True),
    _t("people_counting", "People count", one_shot=True),
    _t("heat_map", "Heat map", one_shot=True),
    _t("access_control", "Access control", "device", one_shot=True),
    _t("video_intercom", "Doorbell", "device", "doorbell", one_shot=True),
    _t(
        "illegal_access",
        "Illegal access",
        "device",
        one_shot=True,
        severity="alert",
    ),
    _t("face_library_changed", "Face library changed", "device", one_shot=True),
    _t("face_library_picture_changed", "Face picture changed", "device", one_shot=True),
    # Someone works against the camera, or its picture is wrong.
    _t("tamper", "Tampering", device_class="tamper", severity="warning"),
    _t("scene_change", "Scene change", device_class="tamper", severity="warning"),
    _t("defocus", "Defocus", device_class="tamper", severity="warning"),
    _t("sticker", "Sticker on the panel", device_class="tamper", severity="alert"),
    _t("skimmer_installed", "Skimmer", device_class="tamper", severity="alert"),
    _t("camera_angle_exception", "Camera moved", device_class="tamper", severity="warning"),
    _t("video_loss", "Video loss", device_class="problem", severity="warning"),
    _t("bad_video", "Bad video", device_class="problem", severity="warning"),
    _t("image_blur", "Blurred image", device_class="problem", severity="warning"),
    _t("brightness_abnormal", "Brightness abnormal", device_class="problem"),
    _t("color_cast", "Colour cast", device_class="problem"),
    _t("snow_noise", "Snow noise", device_class="problem"),
    _t("stripe_noise", "Stripe noise", device_class="problem"),
    _t("image_freeze", "Frozen image", device_class="problem", severity="warning"),
    _t("image_jitter", "Image jitter", device_class="problem"),
    _t("image_noise", "Image noise", device_class="problem"),
    _t("corrupted_image", "Corrupted image", device_class="problem", severity="warning"),
    _t("clarity_abnormal", "Clarity abnormal", device_class="problem"),
    _t("light_spot", "Light spot", device_class="problem"),
    _t("purple_fringe", "Purple fringe", device_class="problem"),
    _t("icr_error", "IR cut filter error", device_class="problem", severity="warning"),
    _t("protective_film_on", "Protective film on", device_class="problem"),
    _t("ptz_out_of_control", "PTZ out of control", device_class="problem", severity="warning"),
    _t("ptz_locked", "PTZ locked", device_class="problem"),
    _t("resolution_mismatch", "Resolution mismatch", device_class="problem", severity="warning"),
    _t("flash_exception", "Flash exception", device_class="problem", severity="warning"),
    _t("audio_exception", "Audio exception", device_class="sound"),
    _t("audio_loss", "Audio loss", device_class="problem", severity="warning"),
    _t("thermometry", "Temperature", device_class="heat", severity="warning"),
    _t("fire", "Fire", device_class="heat", severity="crit"),
    _t("smoke", "Smoke", device_class="smoke", severity="crit"),
    # Wired alarm inputs (door contacts, smoke detectors, panic buttons): ON means unsafe.
    _t("io", "Alarm input", "input", "safety", severity="warning"),
    _t("pulse_alarm", "Pulse alarm", "input", one_shot=True, severity="warning"),
    # The recorder, its disks and its links.
    _t("recording", "Recording", device_class="running"),
    _t("recording_failure", "Recording failure", device_class="problem", severity="err"),
    _t("poe_power_exception", "PoE power exception", device_class="problem", severity="warning"),
    _t(
        "vehicle_detection_exception",
        "Vehicle detection exception",
        device_class="problem",
        severity="warning",
    ),
    _t("disk_full", "Disk full", "disk", "problem", severity="warning"),
    _t("disk_error", "Disk error", "disk", "problem", severity="err"),
    _t("disk_unformatted", "Disk unformatted", "disk", "problem", severity="err"),
    _t("disk_overload", "Disk overloaded", "disk", "problem", severity="warning"),
    _t("face_library_disk_exception", "Face library disk error", "disk", "problem", severity="err"),
    _t("storage_exception", "Storage exception", "device", "problem", severity="err"),
    _t("sd_card_missing", "SD card missing", "device", "problem", severity="err"),
    _t("array_exception", "RAID array exception", "device", "problem", severity="err"),
    _t("network_disconnected", "Network disconnected", "device", "problem", severity="warning"),
    _t("ip_conflict", "IP address conflict", "device", "problem", severity="warning"),
    _t("video_mismatch", "Video standard mismatch", "device", "problem", severity="warning"),
    _t("poc_exception", "PoC exception", "device", "problem", severity="warning"),
    _t("supply_voltage_exception", "Supply voltage exception", "device", "problem", severity="err"),
    _t(UNKNOWN, "Unknown event", "device", one_shot=True),
)

# ISAPI eventType (lower-cased) -> hikd type: what the ISAPI decoder and the event
# triggers (devices/capabilities/identity.py) name types by. Built from what devices send
# on the alertStream / HTTP listening host, and what pyHik (SENSOR_MAP) and hikvision_next
# decode.
_ISAPI_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "motion": ("vmd", "motiondetection", "vmdhumanvehicle", "motion"),
    "video_loss": ("videoloss",),
    "tamper": ("shelteralarm", "tamperdetection", "tamper"),
    "io": ("io", "alarmin", "alarminput", "ioalarm", "inputs"),
    "line_crossing": ("linedetection", "linecrossing", "advlinedetection"),
    "intrusion": ("fielddetection", "intrusion", "intrusiondetection"),
    "region_entrance": ("regionentrance",),
    "region_exit": ("regionexiting",),
    "loitering": ("loitering",),
    "people_gathering": ("group", "peoplegathering"),
    "fast_moving": ("rapidmove", "fastmoving"),
    "parking": ("parking",),
    "unattended_baggage": ("unattendedbaggage",),
    "object_removal": ("attendedbaggage", "objectremoval"),
    "face_detection": ("facedetection",),
    "face_snap": ("facesnap", "facecapture", "facesnapmodeling"),
    "face_match": ("facecontrast", "facematch", "alarmresult"),
    "scene_change": ("scenechangedetection", "scenechange"),
    "pir": ("pir", "piralarm"),
    "audio_exception": ("audioexception", "audiodetection", "audioalarm"),
    "defocus": ("defocus", "defocusdetection"),
    "disk_full": ("diskfull", "hdfull"),
    "disk_error": ("diskerror", "hderror", "hdbadblock"),
    "disk_unformatted": ("diskunformatted", "hdunformatted"),
    "network_disconnected": ("nicbroken", "networkdisconnected"),
    "ip_conflict": ("ipconflict",),
    "illegal_access": ("illaccess", "illegalaccess"),
    "video_mismatch": ("videomismatch",),
    "bad_video": ("badvideo", "videoexception"),
    "recording_failure": ("recordingfailure", "recordexception", "capturefailure"),
    "vehicle": ("anpr", "vehicledetection", "vehicle", "trafficdetection"),
    "thermometry": ("thermometry", "temperature", "tmpa", "temperaturemeasurement"),
    "fire": ("firedetection", "fire"),
    "smoke": ("smokedetection", "smoke", "firesmokedetection"),
    "ship_detection": ("shipsdetection", "shipdetection"),
    "people_counting": ("peoplecounting", "pdc"),
    "heat_map": ("heatmap",),
    "access_control": ("accesscontrollerevent",),
    "human_detection": ("humandetection", "humanrecognition"),
    "violent_motion": ("violentmotion",),
    "fall_down": ("falldown", "faildown"),
    "leave_position": ("leaveposition",),
    "running": ("running",),
    "retention": ("retention",),
    "climbing": ("reachheight", "advreachheight", "climb"),
    "safety_helmet": ("safetyhelmetdetection",),
    "storage_exception": ("storagedetection",),
    "poe_power_exception": ("poepowerexception", "poepoweexception"),
    "video_intercom": ("videointercomevent", "callstatus"),
    "heartbeat": ("heartbeat",),
}

ISAPI_ALIASES: Final[dict[str, str]] = {
    alias: ours for ours, aliases in _ISAPI_ALIASES.items() for alias in aliases
}
"""The devices' names (ISAPI ``eventType``, lower-cased) -> hikd's type."""


def from_device_name(event_type: str) -> str | None:
    """hikd's type for a device's event type name (``VMD``, ``linedetection``), or None
    when hikd does not know the name. Case and surrounding blanks do not matter."""
    return ISAPI_ALIASES.get(event_type.strip().lower())


EVENT_TYPES: Final[Mapping[str, EventType]] = {row.name: row for row in _ROWS}
"""Every alarm type hikd emits, by name."""

ONE_SHOT: Final[frozenset[str]] = frozenset(r.name for r in _ROWS if r.one_shot)
"""Types a device reports once per occurrence: ``pulse`` events, never start/stop."""


def event_type(name: str) -> EventType:
    """The row of `name`; a name without a row (a plugin's, a newer hikd's) reads as its
    words, on a channel, with no device class."""
    row = EVENT_TYPES.get(name)
    if row is not None:
        return row
    words = name.replace("_", " ").strip()
    return EventType(name, words[:1].upper() + words[1:])
