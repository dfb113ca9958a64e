"""The event-type vocabulary: what hikd calls each alarm, and the devices' names for it.

Devices name the same alarm many ways (``VMD``, ``motiondetection``, ``VMDHumanVehicle``;
``shelteralarm`` and ``tamperdetection``; ...). hikd publishes one snake_case name per
alarm, the one a user would say. ISAPI names are matched case-insensitively; the
device's own name always stays in ``attributes["event_type"]``.

The binary tables map the private-protocol codes (NET_DVR_ALARMINFO_V30/V40 dwAlarmType,
the VCA rule event enums, the VQD event enum) into the same vocabulary.
"""

from __future__ import annotations

from typing import Final

from hikd import event_types

UNKNOWN: Final = event_types.UNKNOWN
HEARTBEAT: Final = "heartbeat"

# The devices' names (ISAPI eventType), the one-shot types and everything else about a type
# are in the one table of alarm types (hikd/event_types.py), which MQTT, Home Assistant and
# syslog read too. Re-exported here under the decoder's names.
ISAPI_ALIASES: Final = event_types.ISAPI_ALIASES
ONE_SHOT_TYPES: Final = event_types.ONE_SHOT - {UNKNOWN}
"""Types a device reports once per occurrence: published as ``pulse``, never start/stop.
(An unknown name keeps the state the device gave: it may be a start/stop type.)"""
isapi_type = event_types.from_device_name
"""hikd's type for an ISAPI eventType, or None when hikd does not know the name."""


# NET_DVR_ALARMINFO_V30 / NET_DVR_ALRAM_FIXED_HEADER dwAlarmType (HCNetSDK.h; the guide's
# change log adds 15 "smart detection" in 4.2.7.6 and 16 "PoE power" in 4.2.8.7).
ALARM_TYPES: Final[dict[int, str]] = {
    0: "io",
    1: "disk_full",
    2: "video_loss",
    3: "motion",
    4: "disk_unformatted",
    5: "disk_error",
    6: "tamper",
    7: "video_mismatch",
    8: "illegal_access",
    9: "bad_video",
    10: "recording_failure",
    11: "scene_change",
    12: "array_exception",
    13: "resolution_mismatch",
    15: "smart_detection",
    16: "poe_power_exception",
    17: "flash_exception",
    18: "disk_overload",
    19: "audio_loss",
    20: "recording",  # "recording started": a start
    21: "recording",  # "recording stopped": a stop
    22: "vehicle_detection_exception",
    23: "pulse_alarm",
    24: "face_library_disk_exception",
    25: "face_library_changed",
    26: "face_library_picture_changed",
    27: "poc_exception",
    28: "camera_angle_exception",
    30: "sd_card_missing",
    31: "supply_voltage_exception",
    32: "ptz_locked",
}

ALARM_TYPES_STOP: Final[frozenset[int]] = frozenset({21})
"""dwAlarmType values that say something ended."""

ALARM_TYPES_ONE_SHOT: Final[frozenset[int]] = frozenset({8, 23, 25, 26})

ALARM_TYPES_PER_DISK: Final[frozenset[int]] = frozenset({1, 4, 5, 18, 24})
"""dwAlarmType values about disks: byDiskNumber says which (header comment: 1, 4, 5)."""

# VCA_RULE_EVENT_TYPE_EX (NET_VCA_RULE_INFO.wEventTypeEx), the numbered form.
VCA_RULE_TYPES: Final[dict[int, str]] = {
    1: "line_crossing",  # traverse plane
    2: "region_entrance",
    3: "region_exit",
    4: "intrusion",
    5: "loitering",
    6: "object_left_or_taken",
    7: "parking",
    8: "fast_moving",
    9: "people_gathering",
    10: "violent_motion",
    11: "climbing",
    12: "getting_up",
    13: "unattended_baggage",
    14: "object_removal",
    15: "leave_position",
    16: "tailgating",
    17: "getting_up",  # key person getting up
    18: "standing_up",
    20: "fall_down",
    21: "audio_exception",  # sudden change of sound intensity
    22: "climbing",  # poly-line climbing
    23: "toilet_overtime",
    24: "yard_overtime",
    25: "line_crossing",  # poly-line traverse plane
    26: "lecture",
    27: "answering_question",
    29: "person_approaching",  # ATM panel
    30: "operation_timeout",  # ATM panel
    31: "sticker",
    32: "skimmer_installed",
    35: "people_number_change",
    36: "spacing_change",
    37: "combined_rule",
    38: "sitting_still",
    39: "people_density",
    40: "running",
    41: "retention",
    42: "blackboard_writing",
    43: "situation_analysis",
    44: "phone_use",
    45: "duration",
}

# VCA_EVENT_TYPE (NET_VCA_RULE_INFO.dwEventType), the older bit form; used when
# wEventTypeEx is 0 (firmware before the Ex field).
VCA_EVENT_BITS: Final[dict[int, str]] = {
    0x1: "line_crossing",
    0x2: "region_entrance",
    0x4: "region_exit",
    0x8: "intrusion",
    0x10: "loitering",
    0x20: "object_left_or_taken",
    0x40: "parking",
    0x80: "fast_moving",
    0x100: "people_gathering",
    0x200: "violent_motion",
    0x400: "climbing",
    0x800: "getting_up",
    0x1000: "unattended_baggage",
    0x2000: "object_removal",
    0x4000: "leave_position",
    0x8000: "tailgating",
    0x10000: "getting_up",
    0x80000: "fall_down",
    0x100000: "audio_exception",
    0x200000: "climbing",
    0x400000: "toilet_overtime",
    0x800000: "yard_overtime",
    0x1000000: "line_crossing",
    0x10000000: "person_approaching",
    0x20000000: "operation_timeout",
    0x40000000: "sticker",
    0x80000000: "skimmer_installed",
}

# VQD_EVENT_ENUM (NET_DVR_VQD_ALARM.dwEvent): video quality diagnosis findings.
VQD_EVENTS: Final[dict[int, str]] = {
    1: "image_blur",
    2: "brightness_abnormal",
    3: "color_cast",
    4: "snow_noise",
    5: "stripe_noise",
    6: "image_freeze",
    7: "video_loss",
    8: "ptz_out_of_control",
    9: "scene_change",
    10: "bad_video",
    11: "tamper",  # video blocked
    12: "clarity_abnormal",
    13: "image_jitter",
    14: "corrupted_image",
    15: "image_noise",
    16: "light_spot",
    17: "purple_fringe",
    18: "icr_error",
    19: "protective_film_on",
}
