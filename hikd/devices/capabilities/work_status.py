"""What the device says about its disks, channels and alarm ports, by the route that works
on the session's protocol.

Private protocol: GetDeviceConfig(NET_DVR_GET_WORK_STATUS) with its per-item status
checked (``hikd.sdk.status``). ISAPI: that call returns TRUE with status 189 and an
all-zero struct (sdk-over-isapi.md part 2 c), so hikd reads the device's own documents
through the pass-through instead:

* ``/ISAPI/ContentMgmt/Storage/hdd`` — disks with their status words and sizes (MiB);
* ``/ISAPI/System/workingstatus?format=json`` — channels (recording, signal, online),
  and disk and I/O states as numbers;
* ``/ISAPI/System/IO/inputs/status``, else ``/ISAPI/System/IO/status`` — alarm inputs.

Every route ends in the same `WorkStatus`, so the status job never looks at the protocol.
A camera without storage answers 404 to the hdd list: that is "no disks", not an error.

Devices write these documents in several ways (see `hikd.isapi_xml`): a port is
``<inputIOPortID>``, ``<ioPortID>`` with ``<ioPortType>``, ``<inputPort>`` or ``<id>``
(hikvision_next's device captures); workingstatus comes as XML from firmware that ignores
``format=json``. All are read; names match without namespace or case.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hikd.isapi_xml import as_dict, fields, first, key, named, parse
from hikd.sdk.errors import NotFoundError, NotSupportedError, SdkError
from hikd.sdk.status import WorkState, WorkStatusUnavailable, get_work_status

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

HDD_URL = "/ISAPI/ContentMgmt/Storage/hdd"
WORKING_STATUS_URL = "/ISAPI/System/workingstatus?format=json"
INPUTS_URL = "/ISAPI/System/IO/inputs/status"
IO_STATUS_URL = "/ISAPI/System/IO/status"
"""Inputs and outputs in one list, told apart by <ioPortType> (devices without the former)."""

_PORT_IDS = {
    "input": ("inputIOPortID", "ioPortID", "inputPort", "id"),
    "output": ("outputIOPortID", "ioPortID", "outputPort", "id"),
}
_ACTIVE = frozenset({"active", "true", "1", "on"})

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
        status = _from_private(get_work_status(session.sdk, user_id))
        number = session.channels.from_library
    else:
        status = _from_isapi(session)
        number = session.channels.from_device_id
    # Channels in hikd's numbering (hikd.devices.capabilities.channels), like every event's.
    channels = [replace(c, channel=number(c.channel)) for c in status.channels]
    return replace(status, channels=sorted(channels, key=lambda c: c.channel))


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
    ports_body = _get(session, IO_STATUS_URL) if inputs_body is None else None
    if inputs_body is not None:
        inputs = _active_ports(inputs_body, "input", "input")
    elif ports_body is not None:
        inputs = _active_ports(ports_body, "input", None)
    else:
        inputs = _json_active(io, "input")
    outputs = _json_active(io, "output")
    if not io and ports_body is not None:
        outputs = _active_ports(ports_body, "output", None)
    return WorkStatus(
        source="isapi",
        device_status=_DEVICE_STATUS.get(_int(working.get("devstatus")) or 0, "error"),
        disks=sorted(disks, key=lambda d: d.id),
        channels=sorted((c for c in channels if c is not None), key=lambda c: c.channel),
        alarm_inputs_active=inputs,
        alarm_outputs_active=outputs,
    )


def _working_status(body: bytes | None) -> dict[str, Any] | None:
    """The WorkingStatus object with its keys in lower case, from the JSON asked for or
    from the XML that firmware ignoring ``format=json`` sends instead."""
    if body is None:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        root = parse(body)
        if root is None or key(root.tag) != "workingstatus":
            return None
        lowered: dict[str, Any] = _lower_keys(as_dict(root))
        return lowered
    if not isinstance(data, dict):
        return None
    inner = _lower_keys(data).get("workingstatus")
    return inner if isinstance(inner, dict) else None


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _items(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The entries called `name`, as a list, also where a device wraps them in a list
    element (``<ChanStatusList><ChanStatus>``)."""
    name = name.lower()
    value = data.get(name)
    if value is None and isinstance(data.get(f"{name}list"), dict):
        value = data[f"{name}list"].get(name)
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
    if number is None and isinstance(value, str) and value.strip():
        return value.strip().lower() in _ACTIVE  # XML and some firmware: "true", "active"
    return None if number is None else number != 0


def _snake(word: str) -> str:
    """ISAPI's camelCase status words in snake case: smartFailed -> smart_failed."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", word.strip()).lower() or "unknown"


def _hdd_list(body: bytes) -> list[DiskStatus]:
    root = parse(body)
    if root is None:
        return []
    disks = []
    for element in named(root, "hdd"):
        values = fields(element)
        number = _int(values.get("id"))
        if number is None:
            continue
        disks.append(
            DiskStatus(
                id=number,
                status=_snake(values.get("status", "")),
                capacity_mb=_int(values.get("capacity")) or 0,
                free_mb=_int(values.get("freespace")) or 0,
            )
        )
    return disks


def _json_disks(working: dict[str, Any]) -> list[DiskStatus]:
    disks = []
    for item in _items(working, "HDStatus"):
        number = _int(item.get("hdno"))
        if number is None:
            continue
        code = _int(item.get("status"))
        status = _ISAPI_DISK_CODE.get(code, f"code_{code}") if code is not None else "unknown"
        disks.append(
            DiskStatus(
                number, status, _int(item.get("volume")) or 0, _int(item.get("freespace")) or 0
            )
        )
    return disks


def _json_channel(item: dict[str, Any]) -> ChannelStatus | None:
    number = _int(item.get("channo"))
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
        if str(item.get("iotype", "")).lower() != kind:
            continue
        port = _int(item.get("ioportno"))
        if port is not None and _flag(item.get("iostate")):
            ports.append(port)
    return sorted(ports)


def _active_ports(body: bytes, kind: str, listed: str | None) -> list[int]:
    """The active ports of `kind` in an IOPortStatus list. `listed` is the kind the whole
    document is about (inputs/status), None where it holds both (IO/status): then each
    port says its kind in <ioPortType>, or by the name of its id."""
    root = parse(body)
    if root is None:
        return []
    ports = []
    for element in named(root, "IOPortStatus"):
        values = fields(element)
        said = values.get("ioporttype", "").lower()
        if not said:
            if first(values, "inputIOPortID", "inputPort"):
                said = "input"
            elif first(values, "outputIOPortID", "outputPort"):
                said = "output"
            else:
                said = listed or ""
        if said != kind:
            continue
        port = _int(first(values, *_PORT_IDS[kind]))
        if port is not None and values.get("iostate", "").lower() in _ACTIVE:
            ports.append(port)
    return sorted(ports)
