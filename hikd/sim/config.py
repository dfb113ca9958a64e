"""What a simulated device is: its identity, credentials, channels, disks and behaviour knobs.

One `SimDeviceConfig` per simulated device. Identity fields left empty are derived from
the device `name`, so `Simulator.many()` gets distinct serials, MACs and device IDs.
"""

from __future__ import annotations

import hashlib
import tomllib
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hikd.errors import ConfigError
from hikd.sim.linkage_config import EventSetup
from hikd.sim.variants import DocumentVariants

DeviceType = Literal["IPCamera", "IPDome", "DVR", "NVR"]
DiskStatus = Literal["ok", "error", "unformatted", "idle", "sleeping", "abnormal"]


class SimDisk(BaseModel):
    """One hard disk as `/ISAPI/ContentMgmt/Storage/hdd` lists it (sizes in MiB, like ISAPI)."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(default=1, ge=1)
    capacity_mb: int = Field(default=953_869, ge=0)
    free_mb: int = Field(default=120_832, ge=0)
    status: DiskStatus = "ok"
    property: Literal["RW", "RO", "Redundancy"] = "RW"


class RecordingPlan(BaseModel):
    """The recordings a device holds per channel, back to back up to its start time.

    Times are the device's wall clock: Hikvision writes them with a literal "Z" that does
    not mean UTC, and the library copies them as they are (sdk-over-isapi.md part 2 a).
    """

    model_config = ConfigDict(extra="forbid")

    per_channel: int = Field(default=24, ge=0, le=100_000)
    segment_s: int = Field(default=3600, ge=1)
    gap_s: int = Field(default=0, ge=0)
    content: Literal["video", "noise"] = "video"
    """``video``: real H.264 (hikd/sim/video.py, ~25 kB/s), so downloads decode and their
    frames can be counted; ``noise``: random bytes of ``bytes_per_second``, for sizes
    the sample cannot give (a 1 GB recording in a benchmark)."""
    bytes_per_second: int = Field(default=1000, ge=1)
    """With ``content = "noise"``: size of a recording = its duration x this."""
    still_recording: bool = True
    """One more segment, starting at `end`, is still being written: its end and size grow
    as the device runs."""
    end: datetime | None = None
    """Device wall-clock time where the closed segments end (default: when the device
    starts); the timeline's clock runs on from there."""
    channels: list[int] | None = None
    """Channels that record (default: all)."""
    search_ignores_span: bool = False
    """Answer every search with all of a track's recordings, whatever its time span (some
    devices do: two years of recordings for a 24 h window, issue 8 item 6)."""
    search_size: Literal["exact", "under", "over", "zero", "missing"] = "exact"
    """The size the search gives a recording (``size=`` of its playbackURI) against the
    bytes its download sends, as devices do: ``under`` rounded down to whole MiB (whole KiB
    below 1 MiB), so the download sends more; ``over`` rounded up to the next whole MiB, so
    it sends fewer; ``zero`` ``size=0``; ``missing`` no ``size=`` at all."""
    download_ignores_span: bool = False
    """The download sends the whole recording it names, whatever the playbackURI's
    starttime/endtime (devices that download by name only)."""
    open_since_s: int = Field(default=0, ge=0)
    """The recording still being written began this many seconds before the device started
    (the finished ones move back with it): a long open recording from the first second."""
    open_size_lag_s: int = Field(default=0, ge=0)
    """The search gives the recording still being written the size it had this many
    seconds before its end (a device that writes its index every so often): its download
    sends more than the search said."""


class PushTarget(BaseModel):
    """An alarm host the device POSTs its events to (the device's "HTTP listening" setting)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    path: str = "/"
    form: Literal["xml", "json", "multipart"] = "xml"
    """How the event is posted: a bare XML or JSON body, or multipart/form-data with pictures."""
    source: str = ""
    """The address the device posts from, as a real device posts from its own (the alarm
    host tells devices apart by it); empty: whatever the system picks (127.0.0.1 here)."""


class SimDeviceConfig(BaseModel):
    """One simulated Hikvision device. Every field has a working default."""

    model_config = ConfigDict(extra="forbid")

    name: str = "sim"
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    """0 picks a free port; `SimDevice.port` tells which."""
    https: bool = False

    username: str = "admin"
    password: str = "hikdsim123"
    lock_after: int = Field(default=5, ge=1)
    """Consecutive wrong passwords that lock the user (the device's "illegal login lock")."""
    lock_seconds: int = Field(default=1800, ge=1)
    iterations: int = Field(default=100, ge=1)
    session_id_version: Literal["2", "2.1", "3"] | None = None
    """When set, the capabilities reply carries <sessionIDVersion> and the library checks the
    HMAC sessionID and needs a Set-Cookie on the login reply (sdk-over-isapi.md part 2 §1)."""

    device_name: str = ""
    device_id: str = ""
    model: str = ""
    serial_number: str = ""
    mac_address: str = ""
    firmware_version: str = "V4.74.105"
    firmware_released_date: str = "build 240318"
    device_type: DeviceType = "NVR"
    utc_offset_minutes: int = Field(default=0, ge=-14 * 60, le=14 * 60)
    """The device's time zone: event dateTime and /ISAPI/System/time use it."""

    analog_channels: int = Field(default=0, ge=0, le=64)
    ip_channels: int = Field(default=4, ge=0, le=256)
    alarm_inputs: int = Field(default=4, ge=0, le=256)
    alarm_outputs: int = Field(default=1, ge=0, le=256)
    zero_channels: int = Field(default=0, ge=0, le=16)
    audio_channels: int = Field(default=1, ge=0, le=16)
    disks: list[SimDisk] = Field(default_factory=lambda: [SimDisk()])

    recordings: RecordingPlan = Field(default_factory=RecordingPlan)
    rtsp_port: int = Field(default=0, ge=0, le=65535)
    """RTSP port for downloads (0 picks a free port); /ISAPI/Security/adminAccesses tells it."""
    rtsp_auth: bool = True
    """Ask RTSP clients for Digest authentication."""
    log_entries: int = Field(default=50, ge=0, le=100_000)
    """Entries in the device log before any activity (spread over the previous day)."""
    log_alarms: bool = True
    """Alarms are written to the device log (metaId ``Alarm/motionStart/<channel>``, ...); false
    imitates a device whose log has no alarm entries, so nothing can be backfilled from it."""
    resend_missed: bool = False
    """Alarms raised while no alert stream was open are sent again, marked
    ``isDataRetransmission``, with their own time, as soon as a stream opens (a device with
    the vendor's "resume after broken network" switched on)."""

    heartbeat_s: float = Field(default=10.0, gt=0, lt=35)
    """alertStream heartbeat period; the library reconnects after 35 s without a part."""
    heartbeat_event: Literal["videoloss", "heartBeat"] = "videoloss"
    """What the heartbeat is: ``videoloss`` (eventState inactive; the library swallows it)
    or ``heartBeat`` (delivered, so hikd can watch it; firmware of either kind exists)."""
    push_targets: list[PushTarget] = Field(default_factory=list)
    variants: DocumentVariants = Field(default_factory=DocumentVariants)
    """How the device spells the documents hikd reads (namespace, order, port ids, ...)."""
    events: EventSetup = Field(default_factory=EventSetup)
    """Event linkage, arming schedules, alarm host, user rights and clock (`hikd doctor`)."""

    @model_validator(mode="after")
    def _derive_identity(self) -> SimDeviceConfig:
        if not self.model:
            self.model = _DEFAULT_MODEL[self.device_type]
        derived = _derived_identity(self.name, self.model)
        for key, value in derived.items():
            if not getattr(self, key):
                setattr(self, key, value)
        return self

    @property
    def channel_count(self) -> int:
        """Video channels: analog ones are 1..A, IP ones follow (A+1..A+N)."""
        return self.analog_channels + self.ip_channels

    def channel_id(self, channel: int) -> int:
        """The device's own id of simulator channel `channel` (1..count): the same number
        unless `variants.ip_channel_first_id` moves the IP channels' ids."""
        first = self.variants.ip_channel_first_id
        if first and channel > self.analog_channels:
            return first + channel - self.analog_channels - 1
        return channel

    def channel_of_id(self, device_id: int) -> int | None:
        """The simulator channel the device calls `device_id`; None if there is none."""
        for channel in range(1, self.channel_count + 1):
            if self.channel_id(channel) == device_id:
                return channel
        return None


_DEFAULT_MODEL: dict[str, str] = {
    "IPCamera": "DS-2CD2143G2-I",
    "IPDome": "DS-2DE4425IW-DE",
    "DVR": "DS-7216HQHI-K1",
    "NVR": "DS-7608NI-K2",
}


def _derived_identity(name: str, model: str) -> dict[str, str]:
    """The identity a device gets from its name when the config leaves it empty."""
    digest = hashlib.sha256(name.encode()).digest()
    number = int.from_bytes(digest[:4], "big") % 1_000_000_000
    return {
        "device_name": name,
        "device_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.hikd-sim")),
        "serial_number": f"{model}20240101CCRR{number:09d}",
        "mac_address": "44:19:b6:" + ":".join(f"{b:02x}" for b in digest[4:7]),
    }


def numbered(base: SimDeviceConfig, index: int, count: int) -> SimDeviceConfig:
    """Device `index` (0-based) of `count` built from `base`: own name, port, serial and MAC.

    Identity fields that `base` derived from its name are derived again from the new name;
    explicit ones get the index appended (serial) or added (MAC, port).
    """
    if count == 1:
        return base.model_copy(deep=True)
    data = base.model_dump()
    width = max(2, len(str(count)))
    data["name"] = f"{base.name}-{index + 1:0{width}d}"
    if base.port:
        data["port"] = base.port + index
    if base.rtsp_port:
        data["rtsp_port"] = base.rtsp_port + index
    derived = _derived_identity(base.name, base.model)
    for key, value in derived.items():
        if getattr(base, key) == value:
            data[key] = ""
    if data["serial_number"]:
        data["serial_number"] = f"{base.serial_number}{index + 1:0{width}d}"
    if data["mac_address"]:
        mac = (int(base.mac_address.replace(":", ""), 16) + index) % (1 << 48)
        data["mac_address"] = ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))
    return SimDeviceConfig.model_validate(data)


def load_sim_config(path: Path, overrides: dict[str, Any] | None = None) -> list[SimDeviceConfig]:
    """Read a simulator TOML file.

    Top-level keys (or a ``[defaults]`` table) apply to every device; each ``[[device]]``
    table is one device and overrides them. Without ``[[device]]`` there is one device,
    or ``count`` numbered copies of it.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read it ({exc})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    devices = data.pop("device", [])
    count = data.pop("count", 1)
    defaults = {**data.pop("defaults", {}), **data, **(overrides or {})}
    if not isinstance(devices, list) or not isinstance(count, int) or count < 1:
        raise ConfigError([f"{path}: `device` must be a list of tables and `count` >= 1"])
    if not devices:
        base = validate_device(defaults, f"{path}")
        return [numbered(base, i, count) for i in range(count)]
    configs: list[SimDeviceConfig] = []
    problems: list[str] = []
    for i, entry in enumerate(devices):
        if not isinstance(entry, dict):
            problems.append(f"{path}: device[{i}]: must be a table")
            continue
        try:
            configs.append(validate_device({**defaults, **entry}, f"{path}: device[{i}]"))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return configs


def validate_device(data: dict[str, Any], where: str) -> SimDeviceConfig:
    """Build a device config, turning pydantic's errors into one line per bad key."""
    try:
        return SimDeviceConfig.model_validate(data)
    except ValidationError as exc:
        prefix = f"{where}: " if where else ""
        problems = [
            f"{prefix}{'.'.join(str(p) for p in err['loc']) or '(device)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError(problems) from None
