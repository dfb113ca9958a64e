"""Work status on private-protocol sessions: GetDeviceConfig(NET_DVR_GET_WORK_STATUS)
(seed 5.31.1, table 5.119) into NET_DVR_WORKSTATE_V40.

GetDeviceConfig is a batch call: its BOOL only says "not everything failed"; each item
has its own status in lpStatusList (0 or 1 = success, anything else an error code,
seed 5.31.1). Over an ISAPI login the library returns TRUE with status 189 and an
all-zero struct, sends nothing, and a caller that trusts the BOOL sees a healthy device
with no disks and no channels (sdk-over-isapi.md part 2 c). So the status is checked
first, and the zeros are never read as a state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hikd.sdk.constants import MAX_CHANNUM_V40, MAX_DISKNUM_V30, NET_DVR_GET_WORK_STATUS
from hikd.sdk.errors import NotSupportedError, error_for
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

_INVALID = 0xFFFFFFFF
"""End marker of the value lists in NET_DVR_WORKSTATE_V40 (alarm ports, channel numbers)."""
_ITEM_OK = (0, 1)


@dataclass(frozen=True, slots=True)
class DiskState:
    number: int
    """1-based slot in struHardDiskStatic (the struct carries no disk number)."""
    capacity_mb: int
    free_mb: int
    status: int
    """dwHardDiskStatic: 0 active, 1 sleeping, 2 abnormal, 3 sleeping disk error,
    4 unformatted, 5 not connected (network disk), 6 formatting (HCNetSDK.h)."""


@dataclass(frozen=True, slots=True)
class ChannelState:
    channel: int
    recording: bool
    signal_lost: bool
    hardware_error: bool
    bitrate: int
    connections: int


@dataclass(frozen=True, slots=True)
class WorkState:
    device_status: int
    """dwDeviceStatic: 0 normal, 1 CPU above 85 %, 2 hardware error."""
    disks: list[DiskState] = field(default_factory=list)
    channels: list[ChannelState] = field(default_factory=list)
    alarm_inputs_active: list[int] = field(default_factory=list)
    alarm_outputs_active: list[int] = field(default_factory=list)
    local_display_ok: bool = True


class WorkStatusUnavailable(NotSupportedError):
    """The library answered the work status call but not for this item (e.g. 189 over an
    ISAPI login): the struct is all zeros and says nothing about the device."""


def get_work_status(sdk: Library, user_id: int) -> WorkState:
    """The device's disks, channels and alarm ports; raises when the item failed."""
    cond = ffi.new("NET_DVR_GETWORKSTATE_COND *")
    cond.dwSize = ffi.sizeof("NET_DVR_GETWORKSTATE_COND")
    cond.byFindHardByCond = 0  # 0: every disk
    cond.byFindChanByCond = 0  # 0: every channel
    status = ffi.new("unsigned int[1]")
    out = ffi.new("NET_DVR_WORKSTATE_V40 *")
    out.dwSize = ffi.sizeof("NET_DVR_WORKSTATE_V40")
    ok = sdk.lib.NET_DVR_GetDeviceConfig(
        user_id,
        NET_DVR_GET_WORK_STATUS,
        1,
        cond,
        ffi.sizeof("NET_DVR_GETWORKSTATE_COND"),
        status,
        out,
        ffi.sizeof("NET_DVR_WORKSTATE_V40"),
    )
    sdk.check(ok)
    item = int(status[0])
    if item not in _ITEM_OK:
        base = error_for(item)
        raise WorkStatusUnavailable(item, f"work status not available: {base.message}")
    return _work_state(out)


def _work_state(out: Any) -> WorkState:
    disks = []
    for i in range(MAX_DISKNUM_V30):
        disk = out.struHardDiskStatic[i]
        volume, free, state = int(disk.dwVolume), int(disk.dwFreeSpace), int(disk.dwHardDiskStatic)
        # An empty slot is all zeros; 0xffffffff marks slots the condition left out.
        if state == _INVALID or (volume == 0 and state == 0):
            continue
        disks.append(DiskState(i + 1, volume, free, state))
    channels = []
    for i in range(MAX_CHANNUM_V40):
        chan = out.struChanStatic[i]
        number = int(chan.dwChannelNo)
        if number == _INVALID:
            break  # "0xffffffff: invalid" ends the list (channels are packed from the front)
        if number == 0:
            continue
        channels.append(
            ChannelState(
                channel=number,
                recording=bool(chan.byRecordStatic),
                signal_lost=bool(chan.bySignalStatic),
                hardware_error=bool(chan.byHardwareStatic),
                bitrate=int(chan.dwBitRate),
                connections=int(chan.dwLinkNum),
            )
        )
    return WorkState(
        device_status=int(out.dwDeviceStatic),
        disks=disks,
        channels=channels,
        alarm_inputs_active=_port_list(out.dwHasAlarmInStatic),
        alarm_outputs_active=_port_list(out.dwHasAlarmOutStatic),
        local_display_ok=int(out.dwLocalDisplay) == 0,
    )


def _port_list(values: Any) -> list[int]:
    """dwHasAlarmInStatic / dwHasAlarmOutStatic: the numbers of the ports in alarm, packed
    from the front and ended by 0xffffffff (HCNetSDK.h)."""
    ports = []
    for number in ffi.unpack(values, len(values)):
        if number == _INVALID:
            break
        if number:  # zero-filled tails of devices that do not write the end marker
            ports.append(int(number))
    return ports
