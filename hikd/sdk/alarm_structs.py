"""The private protocol's alarm structs read into plain records (guide 5.16, tables 5.30 /
5.31; HCNetSDK.h).

Each payload is the ``dwBufLen`` bytes the message callback copied from ``pAlarmInfo``
(`hikd.sdk.raw.RawAlarm.payload`). A struct is read only after checking the payload holds
all of it (else `PayloadTooShort`), and read whole into a dataclass here, beside its
layout: the decoders (`hikd.listeners.decode.binary`) never see a struct field.

COMM_ALARM_V40 is variable-length (guide 5.16 table 5.30, "报警数据为可变长"): the fixed
header counts the channels / disks / outputs, and ``pAlarmData`` points at that many
DWORDs. A pointer means nothing in copied bytes, so the list is read from the bytes that
follow the struct in the payload (the message callback appends them when the library's
buffer does not already hold them); `AlarmInfoV40.found` says how much of it was there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from hikd.sdk import alarm_types
from hikd.sdk.convert import cstr, utc_offset
from hikd.sdk.ffi import ffi

MAX_LIST = 4096
"""No device has more channels or disks; a larger count is garbage, not a list."""

Clock = tuple[int, int, int, int, int, int]
"""A device's wall-clock time as its struct holds it: year, month, day, hour, minute,
second (not checked: zeroed structs and garbage hold no date)."""


class PayloadTooShort(Exception):
    """The payload is shorter than the struct its command names."""

    def __init__(self, struct_name: str, size: int, got: int) -> None:
        super().__init__(f"{got} bytes, shorter than {struct_name} ({size} bytes)")
        self.struct_name = struct_name
        self.size = size


def _view(name: str, payload: bytes) -> Any:
    size = int(ffi.sizeof(name))
    if len(payload) < size:
        raise PayloadTooShort(name, size, len(payload))
    return ffi.from_buffer(f"{name} *", payload)


def _set(array: Any) -> list[int]:
    """Indexes of the non-zero entries of a BYTE/DWORD flag array."""
    return [i for i, value in enumerate(array) if value]


def _abs_time(packed: int) -> Clock:
    """dwAbsTime, a bit-packed time (HCNetSDK.h GET_YEAR .. GET_SECOND macros)."""
    return (
        (packed >> 26) + 2000,
        (packed >> 22) & 15,
        (packed >> 17) & 31,
        (packed >> 12) & 31,
        (packed >> 6) & 63,
        packed & 63,
    )


def _dwords(data: bytes, count: int) -> tuple[list[int], int]:
    """Up to `count` little-endian DWORDs from `data`: (values, how many were there)."""
    n = max(0, min(count, len(data) // 4, MAX_LIST))
    return (list(struct.unpack_from(f"<{n}I", data)) if n else []), n


# --- COMM_ALARM, COMM_ALARM_V30, COMM_ALARM_V40 -------------------------------------------


@dataclass(slots=True)
class AlarmInfo:
    """NET_DVR_ALARMINFO (COMM_ALARM) or NET_DVR_ALARMINFO_V30: flag arrays as the
    indexes of their set entries."""

    alarm_type: int
    channels: list[int]
    disks: list[int]
    outputs: list[int]
    record_channels: list[int]
    alarm_input_number: int
    """dwAlarmInputNumber, counted from 0 (the vendor's demos print it + 1)."""


def read_alarm_info(payload: bytes) -> AlarmInfo:
    """COMM_ALARM: NET_DVR_ALARMINFO of devices before V3.0 (16 analog channels, DWORD
    flags)."""
    info = _view("NET_DVR_ALARMINFO", payload)
    return AlarmInfo(
        alarm_type=int(info.dwAlarmType),
        channels=_set(info.dwChannel),
        disks=_set(info.dwDiskNumber),
        outputs=_set(info.dwAlarmOutputNumber),
        record_channels=_set(info.dwAlarmRelateChannel),
        alarm_input_number=int(info.dwAlarmInputNumber),
    )


def read_alarm_info_v30(payload: bytes) -> AlarmInfo:
    """COMM_ALARM_V30: NET_DVR_ALARMINFO_V30 (analog channels first, IP channels from
    slot 32; BYTE flags)."""
    info = _view("NET_DVR_ALARMINFO_V30", payload)
    return AlarmInfo(
        alarm_type=int(info.dwAlarmType),
        channels=_set(info.byChannel),
        disks=_set(info.byDiskNumber),
        outputs=_set(info.byAlarmOutputNumber),
        record_channels=_set(info.byAlarmRelateChannel),
        alarm_input_number=int(info.dwAlarmInputNumber),
    )


@dataclass(slots=True)
class AlarmInfoV40:
    """NET_DVR_ALARMINFO_V40: the fixed header and the list that follows it."""

    alarm_type: int
    clock: Clock
    utc_offset: timezone | None
    """The offset the header carries, only when byTimeDiffFlag says it is valid."""
    alarm_input_no: int | None = None
    """Signal alarms: dwAlarmInputNo as the device sent it."""
    outputs: list[int] = field(default_factory=list)
    record_channels: list[int] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)
    """Channel numbers as the device numbers them (not flags), unchecked."""
    disks: list[int] = field(default_factory=list)
    expected: int = 0
    """How many DWORDs the header counts for the list."""
    found: int = 0
    """How many of them the payload held."""


def read_alarm_info_v40(payload: bytes) -> AlarmInfoV40:
    name = "NET_DVR_ALARMINFO_V40"
    header = _view(name, payload).struAlarmFixedHeader
    alarm_type = int(header.dwAlarmType)
    t = header.struAlarmTime
    alarm = AlarmInfoV40(
        alarm_type=alarm_type,
        clock=(
            int(t.wYear),
            int(t.byMonth),
            int(t.byDay),
            int(t.byHour),
            int(t.byMinute),
            int(t.bySecond),
        ),
        # cTimeDifferenceH/M are valid only when byTimeDiffFlag is 1 (header comment).
        utc_offset=utc_offset(
            int(header.byTimeDiffFlag), header.cTimeDifferenceH, header.cTimeDifferenceM
        ),
    )
    tail = payload[ffi.sizeof(name) :]
    union = header.uStruAlarm
    # Which union member is valid, by dwAlarmType (shared with the callback that copies
    # the list).
    if alarm_type in alarm_types.IO_TYPES:
        io = union.struIOAlarm
        n_out, n_rec = int(io.dwTrigerAlarmOutNum), int(io.dwTrigerRecordChanNum)
        alarm.expected = n_out + n_rec
        values, alarm.found = _dwords(tail, alarm.expected)
        alarm.outputs, alarm.record_channels = values[:n_out], values[n_out:]
        alarm.alarm_input_no = int(io.dwAlarmInputNo)
    elif alarm_type in alarm_types.CHANNEL_TYPES:
        alarm.expected = int(union.struAlarmChannel.dwAlarmChanNum)
        alarm.channels, alarm.found = _dwords(tail, alarm.expected)
    elif alarm_type in alarm_types.DISK_TYPES:
        alarm.expected = int(union.struAlarmHardDisk.dwAlarmHardDiskNum)
        alarm.disks, alarm.found = _dwords(tail, alarm.expected)
    return alarm


# --- IP channel configuration, hot spare ---------------------------------------------------


@dataclass(slots=True)
class IpDevice:
    """One entry of struIPDevInfo (credentials are never read)."""

    enabled: bool
    address: str
    port: int
    domain: str | None
    """NET_DVR_IPALARMINFO_V31 only."""


@dataclass(slots=True)
class IpChannel:
    """One entry of struIPChanInfo."""

    enabled: bool
    ip_device: int
    device_channel: int


@dataclass(slots=True)
class IpChannelConfig:
    """NET_DVR_IPALARMINFO / _V31 (COMM_IPCCFG / COMM_IPCCFG_V31): every entry, in order."""

    devices: list[IpDevice]
    channels: list[IpChannel]
    analog_enabled: list[int]
    """Indexes of the enabled analog channels."""


def read_ip_channel_config(payload: bytes, v31: bool) -> IpChannelConfig:
    info = _view("NET_DVR_IPALARMINFO_V31" if v31 else "NET_DVR_IPALARMINFO", payload)
    return IpChannelConfig(
        devices=[
            IpDevice(
                enabled=bool(dev.byEnable if v31 else dev.dwEnable),
                address=cstr(dev.struIP.sIpV4),
                port=int(dev.wDVRPort),
                domain=cstr(dev.byDomain) if v31 else None,
            )
            for dev in info.struIPDevInfo
        ],
        channels=[
            IpChannel(
                enabled=bool(chan.byEnable),
                ip_device=int(chan.byIPID) + 256 * int(chan.byIPIDHigh),
                device_channel=int(chan.byChannel),
            )
            for chan in info.struIPChanInfo
        ],
        analog_enabled=_set(info.byAnalogChanEnable),
    )


@dataclass(slots=True)
class HotSpare:
    """NET_DVR_ALARM_HOT_SPARE (COMM_ALARM_HOT_SPARE)."""

    exception_case: int
    device_ip: str


def read_hot_spare(payload: bytes) -> HotSpare:
    info = _view("NET_DVR_ALARM_HOT_SPARE", payload)
    return HotSpare(int(info.dwExceptionCase), cstr(info.struDeviceIP.sIpV4))


# --- VQD, VCA rules ---------------------------------------------------------------------------


@dataclass(slots=True)
class VqdDiagnosis:
    """NET_DVR_VQD_DIAGNOSE_INFO: one video quality diagnosis finding."""

    vqd_type: int
    channel: int
    score: int
    clock: Clock


@dataclass(slots=True)
class VqdAlarm:
    """NET_DVR_VQD_ALARM: a finding with the device info and a picture."""

    event_type: int
    channel: int
    clock: Clock
    threshold: float
    device_ip: str
    ivms_channel: int
    picture_size: int


def read_vqd(payload: bytes) -> VqdDiagnosis | VqdAlarm:
    """COMM_ALARM_VQD. The guide (table 5.31) names NET_DVR_VQD_DIAGNOSE_INFO (64 bytes)
    for this command; the header also has NET_DVR_VQD_ALARM (312 bytes, with the device
    info and a picture). Both start with dwSize, so dwSize says which one came."""
    size = struct.unpack_from("<I", payload)[0] if len(payload) >= 4 else 0
    alarm_size = ffi.sizeof("NET_DVR_VQD_ALARM")
    if size == alarm_size or (
        size != ffi.sizeof("NET_DVR_VQD_DIAGNOSE_INFO") and len(payload) >= alarm_size
    ):
        info = _view("NET_DVR_VQD_ALARM", payload)
        dev = info.struDevInfo
        return VqdAlarm(
            event_type=int(info.dwEventType),
            channel=int(dev.byChannel),
            clock=_abs_time(int(info.dwAbsTime)),
            threshold=float(info.fThreshold),
            device_ip=cstr(dev.struDevIP.sIpV4),
            ivms_channel=int(dev.byIvmsChannel),
            picture_size=int(info.dwPicDataLen),
        )
    found = _view("NET_DVR_VQD_DIAGNOSE_INFO", payload).struVQDDiagnoseExceptionInfo
    t = found.struDiagnoseTime
    return VqdDiagnosis(
        vqd_type=int(found.dwVQDType),
        channel=int(found.dwChannelNO),
        score=int(found.byScoreValue),
        clock=(
            int(t.dwYear),
            int(t.dwMonth),
            int(t.dwDay),
            int(t.dwHour),
            int(t.dwMinute),
            int(t.dwSecond),
        ),
    )


@dataclass(slots=True)
class RuleAlarm:
    """NET_VCA_RULE_ALARM (COMM_ALARM_RULE): the rule that fired and its target."""

    event_type_ex: int
    """wEventTypeEx, when the firmware fills it."""
    event_bits: int
    """dwEventType, the older mask (an enum: a C int, read unsigned)."""
    rule_id: int
    rule_name: str
    scene_id: int
    target_id: int
    target_rect: tuple[float, float, float, float]
    """x, y, width, height, as sent (garbage floats can be NaN or infinite)."""
    device_ip: str
    ivms_channel: int
    channel: int
    """byChannel: the channel on the analysing device itself."""
    dyn_channel_id: int
    """wDevInfoIvmsChannelEx: the NVR's channel of the camera that raised it (ISAPI
    dynChannelID); 0 when not filled."""
    alarm_id: int
    relative_time: int
    clock: Clock
    picture_size: int


def read_rule_alarm(payload: bytes) -> RuleAlarm:
    info = _view("NET_VCA_RULE_ALARM", payload)
    rule = info.struRuleInfo
    target = info.struTargetInfo
    rect = target.struRect
    dev = info.struDevInfo
    return RuleAlarm(
        event_type_ex=int(rule.wEventTypeEx),
        event_bits=int(rule.dwEventType) & 0xFFFFFFFF,
        rule_id=int(rule.byRuleID),
        rule_name=cstr(rule.byRuleName),
        scene_id=int(rule.bySceneID),
        target_id=int(target.dwID),
        target_rect=(float(rect.fX), float(rect.fY), float(rect.fWidth), float(rect.fHeight)),
        device_ip=cstr(dev.struDevIP.sIpV4),
        ivms_channel=int(dev.byIvmsChannel),
        channel=int(dev.byChannel),
        dyn_channel_id=int(info.wDevInfoIvmsChannelEx),
        alarm_id=int(info.dwAlarmID),
        relative_time=int(info.dwRelativeTime),
        clock=_abs_time(int(info.dwAbsTime)),
        picture_size=int(info.dwPicDataLen),
    )
