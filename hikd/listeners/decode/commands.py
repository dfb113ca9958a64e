"""The lCommand codes of the message callback (guide tables 5.30 / 5.32, HCNetSDK.h)."""

from __future__ import annotations

from typing import Final

COMM_ALARM: Final = 0x1100
COMM_ALARM_RULE: Final = 0x1102
COMM_ALARM_V30: Final = 0x4000
COMM_IPCCFG: Final = 0x4001
COMM_IPCCFG_V31: Final = 0x4002
COMM_ALARM_HOT_SPARE: Final = 0x4006
COMM_ALARM_V40: Final = 0x4007
COMM_ALARM_VQD: Final = 0x6000
COMM_ISAPI_ALARM: Final = 0x6009
ERROR_MESSAGE: Final = 0x7FFF
"""Not in the header: the library's own "could not parse what the device sent" message
(sdk-over-isapi.md part 1 §2), delivered to the SetDVRMessageCallBack_V30 callback."""

COMMAND_NAMES: Final[dict[int, str]] = {
    COMM_ALARM: "COMM_ALARM",
    COMM_ALARM_RULE: "COMM_ALARM_RULE",
    0x1103: "COMM_ALARM_PDC",
    0x1112: "COMM_UPLOAD_FACESNAP_RESULT",
    0x1150: "COMM_ALARM_AUDIOEXCEPTION",
    0x1151: "COMM_ALARM_DEFOCUS",
    0x2902: "COMM_SNAP_MATCH_ALARM",
    0x3050: "COMM_ITS_PLATE_RESULT",
    0x3059: "COMM_VEHICLE_CONTROL_ALARM",
    COMM_ALARM_V30: "COMM_ALARM_V30",
    COMM_IPCCFG: "COMM_IPCCFG",
    COMM_IPCCFG_V31: "COMM_IPCCFG_V31",
    COMM_ALARM_HOT_SPARE: "COMM_ALARM_HOT_SPARE",
    COMM_ALARM_V40: "COMM_ALARM_V40",
    0x4010: "COMM_ALARM_FACE_DETECTION",
    0x4991: "COMM_FIREDETECTION_ALARM",
    0x5002: "COMM_ALARM_ACS",
    0x5212: "COMM_THERMOMETRY_ALARM",
    COMM_ALARM_VQD: "COMM_ALARM_VQD",
    COMM_ISAPI_ALARM: "COMM_ISAPI_ALARM",
    ERROR_MESSAGE: "ERROR_MESSAGE",
}


def command_name(command: int) -> str:
    """The header's name for an lCommand, or its hex value."""
    return COMMAND_NAMES.get(command, f"0x{command & 0xFFFFFFFF:04x}")
