"""What the device says about its disks, channels and alarm ports, by the route that works
on the session's protocol.

Private protocol: GetDeviceConfig(NET_DVR_GET_WORK_STATUS) with its per-item status
checked (``hikd.sdk.status``). ISAPI: that call returns TRUE with status 189 and an
all-zero struct (sdk-over-isapi.md part 2 c), so hikd reads the device's own documents
through the pass-through instead:

* ``/ISAPI/ContentMgmt/Storage/hdd`` — disks with their status words and sizes (MiB);
* ``/ISAPI/System/workingstatus?format=json`` — channels (recording, signal, online),
  and disk and I/O states as numbers;
* ``/ISAPI/System/IO/inputs/status`` — alarm inputs.

Every route ends in the same `WorkStatus`, so the status job never looks at the protocol.
A camera without storage answers 404 to the hdd list: that is "no disks", not an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from hikd.isapi_xml import local, parse
from hikd.sdk.errors import NotFoundError, NotSupportedError, SdkError
from hikd.sdk.status import WorkState, WorkStatusUnavailable, get_work_status

if TYPE_CHECKING:
    from hikd.session import DeviceSession

HDD_URL = "/ISAPI/ContentMgmt/Storage/hdd"
WORKING_STATUS_URL = "/ISAPI/System/workingstatus?format=json"
INPUTS_URL = "/ISAPI/System/IO/inputs/status"

HEALTHY_DISK = frozenset({"ok", "idle", "sleeping", "standby"})
"""Disk states that are not a problem; anything else is a disk error."""

# dwHardDiskStatic of NET_DVR_DISKSTATE (HCNetSDK.h).
_PRIVATE_DISK = {
    0: "ok",
    1: "sleeping",
    2: "error",
    3: "sleeping_error",
    4: "unformatted",
    5: "offline",
    6: "formatting",
}
# HDStatus.status of /ISAPI/System/workingstatus (only used when the hdd list is missing).
_ISAPI_DISK_CODE = {0: "ok", 1: "unformatted", 2: "error", 3: "smart_failed", 4: "mismatch",
                    5: "sleeping", 6: "offline"}  # fmt: skip
_DEVICE_STATUS = {0: "ok", 1: "cpu_overload", 2: "hardware_error"}


@dataclass(frozen=True, slots=True)
class DiskStatus:
    id: int
    status: str
    """``ok``, ``sleeping``, ``error``, ``unformatted``, ``smart_failed``, ... (snake case)."""
    capacity_mb: int
    free_mb: int

    @property
    def healthy(self) -> bool:
        return self.status in HEALTHY_DISK


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    channel: int
    recording: bool | None
    signal_lost: bool | None
    online: bool | None = None
    """IP channels: whether the NVR reaches the camera (ISAPI only; None = not reported)."""
    hardware_error: bool | None = None


@dataclass(frozen=True, slots=True)
class WorkStatus:
    source: str
    """``private`` (GET_WORK_STATUS) or ``isapi`` (pass-through)."""
    device_status: str = "ok"
    disks: list[DiskStatus] = field(default_factory=list)
    channels: list[ChannelStatus] = field(default_factory=list)
    alarm_inputs_active: list[int] = field(default_factory=list)
    alarm_outputs_active: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (for events and the state database)."""
        return asdict(self)


def work_status(session: DeviceSession) -> WorkStatus:
    """The device's current work status. Raises `WorkStatusUnavailable` (a `SdkError`)
    when the device gives none, never a made-up "all fine"."""
    if session.protocol == "private":
        user_id = session.user_id
        if user_id is None:
            raise SdkError(3, "not logged in")
        return _from_private(get_work_status(session.sdk, user_id))
    return _from_isapi(session)


def _from_private(state: WorkState) -> WorkStatus:
    return WorkStatus(
        source="private",
        device_status=_DEVICE_STATUS.get(state.device_status, f"code_{state.device_status}"),
        disks=[
            DiskStatus(
                d.number, _PRIVATE_DISK.get(d.status, f"code_{d.status}"), d.capacity_mb, d.free_mb
            )
            for d in state.disks
        ],
        channels=[
            ChannelStatus(c.channel, c.recording, c.signal_lost, None, c.hardware_error)
            for c in state.channels
        ],
        alarm_inputs_active=sorted(state.alarm_inputs_active),
        alarm_outputs_active=sorted(state.alarm_outputs_active),
    )


# ---- ISAPI -----------------------------------------------------------------------------


def _get(session: DeviceSession, url: str) -> bytes | None:
    """A document's body, or None when the device does not have it (404/notSupport)."""
    try:
        return session.isapi("GET", url).body
    except (NotSupportedError, NotFoundError):
        return None


def _from_isapi(session: DeviceSession) -> WorkStatus:
    hdd = _get(session, HDD_URL)
    working = _working_status(_get(session, WORKING_STATUS_URL))
    if hdd is None and working is None:
        raise WorkStatusUnavailable(
            23, "work status not available: the device has neither the hdd list nor workingstatus"
        )
    working = working or {}
    disks = _hdd_list(hdd) if hdd is not None else _json_disks(working)
    channels = [_json_channel(item) for item in _items(working, "ChanStatus")]
    io = _items(working, "IOStatus")
    inputs_body = _get(session, INPUTS_URL)
    inputs = _json_active(io, "input") if inputs_body is None else _active_inputs(inputs_body)
    return WorkStatus(
        source="isapi",
        device_status=_DEVICE_STATUS.get(_int(working.get("devStatus")) or 0, "error"),
        disks=disks,
        channels=[c for c in channels if c is not None],
        alarm_inputs_active=inputs,
        alarm_outputs_active=_json_active(io, "output"),
    )


def _working_status(body: bytes | None) -> dict[str, Any] | None:
    if body is None:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    inner = data.get("WorkingStatus") if isinstance(data, dict) else None
    return inner if isinstance(inner, dict) else None


def _items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if isinstance(value, dict):  # a single entry is sometimes sent without the list
        value = [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _flag(value: Any) -> bool | None:
    number = _int(value)
    return None if number is None else number != 0


def _snake(word: str) -> str:
    """ISAPI's camelCase status words in snake case: smartFailed -> smart_failed."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", word.strip()).lower() or "unknown"


def _hdd_list(body: bytes) -> list[DiskStatus]:
    root = parse(body)
    if root is None:
        return []
    disks = []
    for element in root.iter():
        if local(element.tag) != "hdd":
            continue
        fields = {local(child.tag): (child.text or "").strip() for child in element}
        number = _int(fields.get("id"))
        if number is None:
            continue
        disks.append(
            DiskStatus(
                id=number,
                status=_snake(fields.get("status", "")),
                capacity_mb=_int(fields.get("capacity")) or 0,
                free_mb=_int(fields.get("freeSpace")) or 0,
            )
        )
    return disks


def _json_disks(working: dict[str, Any]) -> list[DiskStatus]:
    disks = []
    for item in _items(working, "HDStatus"):
        number = _int(item.get("hdNo"))
        if number is None:
            continue
        code = _int(item.get("status"))
        status = _ISAPI_DISK_CODE.get(code, f"code_{code}") if code is not None else "unknown"
        disks.append(
            DiskStatus(
                number, status, _int(item.get("volume")) or 0, _int(item.get("freeSpace")) or 0
            )
        )
    return disks


def _json_channel(item: dict[str, Any]) -> ChannelStatus | None:
    number = _int(item.get("chanNo"))
    if number is None:
        return None
    return ChannelStatus(
        channel=number,
        recording=_flag(item.get("record")),
        signal_lost=_flag(item.get("signal")),
        online=_flag(item.get("online")),
    )


def _json_active(io: list[dict[str, Any]], kind: str) -> list[int]:
    ports = []
    for item in io:
        if str(item.get("ioType", "")).lower() != kind:
            continue
        port, state = _int(item.get("ioPortNo")), _int(item.get("ioState"))
        if port is not None and state:
            ports.append(port)
    return sorted(ports)


def _active_inputs(body: bytes) -> list[int]:
    root = parse(body)
    if root is None:
        return []
    ports = []
    for element in root.iter():
        if local(element.tag) != "IOPortStatus":
            continue
        fields = {local(child.tag): (child.text or "").strip() for child in element}
        port = _int(fields.get("inputIOPortID") or fields.get("id"))
        if port is not None and fields.get("ioState", "").lower() == "active":
            ports.append(port)
    return sorted(ports)
