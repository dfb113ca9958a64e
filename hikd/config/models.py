"""The configuration model: one pydantic model per section of ``hikd.toml``.

Every section forbids unknown keys, so a typo is an error that names the key. Models are
frozen: the daemon's threads share one `Config` and nobody changes it after loading.
Relative paths are relative to the current working directory when hikd starts; they are
made absolute when the file is loaded.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hikd.config.observe import MetricsConfig
from hikd.config.sources import settings_sources
from hikd.plain_config import OFFSET_PATTERN, password_env_name, zone_of

N = TypeVar("N", int, float)


def _between(low: N, high: N) -> AfterValidator:
    def check(value: N) -> N:
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return value

    return AfterValidator(check)


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _absolute(path: Path) -> Path:
    # The SDK wants absolute log directories (guide 5.2.11), and the daemon must not depend
    # on a later chdir: resolve against the working directory once, at load time.
    return path.expanduser().absolute()


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Port = Annotated[int, _between(1, 65535)]
Seconds = Annotated[float, AfterValidator(_positive)]
AbsPath = Annotated[Path, AfterValidator(_absolute)]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
_HOSTNAME_PATTERN = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$"
)


def _address_or_network(value: str) -> str:
    """An IP address, a CIDR network (192.168.1.0/24) or a host name."""
    value = value.strip()
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        if not _HOSTNAME_PATTERN.match(value):
            raise ValueError(
                "must be an IP address, a network like 192.168.1.0/24, or a host name"
            ) from None
    return value


Address = Annotated[str, AfterValidator(_address_or_network)]


def _fill_default(model: BaseModel, name: str, value: Any) -> None:
    """Set a default that depends on other fields, inside an after-validator.

    The models are frozen; this bypasses that once, while the model is still being built
    (returning a copy from an after-validator is not supported when built via __init__).
    The field stays out of `model_fields_set`: the user did not set it.
    """
    object.__setattr__(model, name, value)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SdkConfig(Section):
    """How hikd drives the vendor library (guide chapter 5.1-5.2)."""

    library_dir: AbsPath | None = None
    """Folder holding libhcnetsdk.so and its HCNetSDKCom/ components; None = the
    hcnetsdk-python wheel's copy."""
    log_dir: AbsPath | None = None
    """Where the SDK writes its own log files (NET_DVR_SetLogToFile, 5.2.11); None = off."""
    log_level: Annotated[int, _between(0, 3)] = 3
    """NET_DVR_SetLogToFile level: 0 off, 1 errors, 2 errors+debug, 3 everything."""
    connect_timeout_ms: Annotated[int, _between(300, 75000)] = 3000
    """NET_DVR_SetConnectTime dwWaitTime; the SDK clamps to [300, 75000] (5.2.3)."""
    connect_tries: Annotated[int, _between(1, 100)] = 1
    """NET_DVR_SetConnectTime dwTryTimes (the guide marks it reserved)."""
    recv_timeout_ms: Annotated[int, _between(3000, 600000)] = 5000
    """NET_DVR_SetRecvTimeOut; the SDK's minimum is 3000 (5.2.5)."""
    reconnect_interval_ms: Annotated[int, _between(100, 3600000)] = 5000
    """NET_DVR_SetReconnect dwInterval: the SDK's own re-arming after a lost link (5.2.4)."""
    shutdown_timeout_s: Seconds = 5.0
    """How long close/logout of all sessions may take at shutdown before hikd gives up."""


class LoggingConfig(Section):
    level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = "info"
    format: Annotated[Literal["auto", "json", "console"], BeforeValidator(_lower)] = "auto"
    """auto = console on a terminal, JSON lines otherwise (systemd's journal)."""


class DaemonConfig(Section):
    state_dir: AbsPath = Path("/var/lib/hikd")
    picture_dir: AbsPath = Path("/var/lib/hikd/pictures")
    """Defaults to <state_dir>/pictures."""
    device_hosts: Annotated[int, _between(1, 64)] = 1
    """Processes that run the vendor library, devices spread over them by name (README
    "Processes")."""
    runtime_dir: AbsPath | None = None  # hikd.sock's; None: $RUNTIME_DIRECTORY or /run/hikd

    @model_validator(mode="before")
    @classmethod
    def _pictures_under_state(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("picture_dir") is None and "state_dir" in data:
            data = {**data, "picture_dir": Path(str(data["state_dir"])) / "pictures"}
        return data


class OutboxConfig(Section):
    """The durable outbox every event is stored in before any sink sees it."""

    max_events: Annotated[int, _between(1000, 100_000_000)] = 1_000_000
    """Above this many stored events the oldest are dropped (with a health event)."""
    max_bytes: Annotated[int, _between(1_000_000, 1 << 40)] = 1 << 30
    """Above this many bytes of stored events the oldest are dropped (with a health event)."""
    synchronous: Annotated[Literal["normal", "full"], BeforeValidator(_lower)] = "normal"
    """normal: survives a crash of hikd; full: also a power cut, at a cost in speed."""


LoginMode = Literal["isapi", "private", "adaptive"]


def default_port(login_mode: LoginMode, https: bool) -> int:
    """The port a device listens on out of the box for this protocol.

    The private protocol's default port is 8000; ISAPI (and adaptive, whose ISAPI fallback
    uses the same port) is HTTP on 80, or 443 with https.
    """
    if login_mode == "private":
        return 8000
    return 443 if https else 80


def _device_name(value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(
            "must contain only letters, digits, '-' and '_' (it becomes part of MQTT topics)"
        )
    return value


def _host(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if "://" in value or "/" in value:
        raise ValueError("give the address only (like 192.168.1.64 or nvr.lan), no http:// or path")
    head, sep, tail = value.rpartition(":")
    if sep and tail.isdigit() and ":" not in head:
        raise ValueError(f"put the port in `port = {tail}`, not in host")
    return value


def _timezone(value: str) -> str:
    if OFFSET_PATTERN.match(value):
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "must be a time zone name like 'Europe/Berlin' or an offset like '+01:00'"
        ) from None
    return value


class DeviceConfig(Section):
    name: Annotated[str, AfterValidator(_device_name)]
    host: Annotated[str, AfterValidator(_host)]
    port: Port = 80
    """Default: 8000 with login_mode "private", else 443 with https, else 80."""
    username: str = "admin"
    password: SecretStr | None = None
    password_file: AbsPath | None = None
    login_mode: Annotated[LoginMode, BeforeValidator(_lower)] = "isapi"
    https: bool = False
    enabled: bool = True
    arm: bool = True
    reconnect_min_s: Seconds = 1.0
    reconnect_max_s: Seconds = 300.0
    auth_retry_s: Seconds = 3600.0
    timezone: Annotated[str, AfterValidator(_timezone)] | None = None
    allowed_addresses: list[Address] = Field(default_factory=list)
    """Default: [host]."""
    backfill: bool = True
    """After every gap in arming (stream lost, device or hikd restarted) read the device's
    log and publish the alarms that did not arrive live, marked ``backfilled``."""
    backfill_max_h: Annotated[float, Field(gt=0, le=24 * 31)] = 24.0
    """The longest gap read back, in hours (the newest part of a longer gap)."""

    _password_source: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _defaults_and_consistency(self) -> DeviceConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"reconnect_min_s ({self.reconnect_min_s:g}) must not exceed "
                f"reconnect_max_s ({self.reconnect_max_s:g})"
            )
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if "port" not in self.model_fields_set:
            _fill_default(self, "port", default_port(self.login_mode, self.https))
        if "allowed_addresses" not in self.model_fields_set:
            _fill_default(self, "allowed_addresses", [self.host])
        return self

    @property
    def password_env(self) -> str:
        """The environment variable that may hold this device's password."""
        return password_env_name(self.name)

    @property
    def password_source(self) -> str:
        """Where the password came from ("config file", "HIKD_PASSWORD_NVR", a file path,
        ...); empty when there is none. For logs: it never contains the password."""
        return self._password_source

    def tzinfo(self) -> tzinfo | None:
        """The device's local time zone, for devices that send times without an offset."""
        return zone_of(self.timezone)


class ArmingConfig(Section):
    """How hikd arms devices: the fields of NET_DVR_SETUPALARM_PARAM for
    NET_DVR_SetupAlarmChan_V41 (guide 5.16.2; field meanings from HCNetSDK.h)."""

    level: Annotated[Literal["high", "medium", "low"], BeforeValidator(_lower)] = "high"
    """byLevel, the arming priority: 0 high, 1 medium, 2 low."""
    deploy_type: Annotated[Literal["client", "realtime"], BeforeValidator(_lower)] = "client"
    """byDeployType: 0 client arming (the device also re-sends what it buffered while the
    link was down, where it supports that), 1 real-time arming (live alarms only)."""
    alarm_info_v40: bool = True
    """byRetAlarmTypeV40 = 1: ask for COMM_ALARM_V40 (variable length, any number of
    channels); devices that lack it still send COMM_ALARM_V30. ISAPI logins ignore it and
    always send COMM_ISAPI_ALARM."""
    upload_confirmation: bool = False
    """bySupport bit 1: the client confirms each upload (the device's resume-on-reconnect
    mechanism). bySupport bit 0 (medium level: 1 = no pictures) stays 0: pictures wanted."""
    resend_after_outage: bool = True
    """byBrokenNetHttp bits 0-4 (HCNetSDK.h): a private-protocol device that supports it
    sends again the plate, people-counting, heat-map, face-capture and face-match results
    it could not deliver while the link was down (marked ``resent``). Over ISAPI the library
    sends nothing for it: a device re-sends on its own settings (README "Backfill")."""
    retry_s: Seconds = 30.0
    """How long to wait before trying again to arm a device that refused."""
    heartbeat_misses: Annotated[float, Field(ge=0)] = 2.0
    """A device that sends ``heartBeat`` parts is armed again at once when no part has come
    for this many heartbeat periods, and at least 5 s (``arming_stalled``); 0: off. Devices
    whose heartbeat the vendor library swallows are never re-armed for being quiet."""


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError("must be an IP address of this machine, or 0.0.0.0 for all") from None
    return value.strip()


class ListenConfig(Section):
    """One listen server: devices push alarms to it (guide 5.17, NET_DVR_StartListen_V30)."""

    address: Annotated[str, AfterValidator(_ip_address)] = "0.0.0.0"
    port: Port
    allowed: list[Address] = Field(default_factory=list)
    """Who may push; default: every configured device's allowed_addresses. Host names are
    resolved at start and every 5 minutes."""
    # Limits of hikd's listen front (README "The listen front"). The vendor library itself
    # crashes at about 1,000 nesting levels and drops bodies of 64 MiB or more.
    max_body_bytes: Annotated[int, _between(1024, 64 * 1024 * 1024 - 1)] = 16 * 1024 * 1024
    max_header_bytes: Annotated[int, _between(1024, 1024 * 1024)] = 16384
    max_depth: Annotated[int, _between(8, 200)] = 64
    """Deepest nesting of XML elements or JSON objects/arrays accepted."""
    read_timeout_s: Annotated[float, _between(0.1, 600.0)] = 10.0
    """Time a sender has to send its whole request."""


class AlarmsConfig(Section):
    hold_s: dict[str, Annotated[float, _between(0.0, 86400.0)]] = Field(
        default_factory=lambda: {"default": 10.0}
    )
    """Per event type: how long after the last repeat an alarm counts as stopped."""
    pulse_types: list[str] = Field(default_factory=lambda: ["illegal_access", "unknown"])
    """Event types that are one-shot (state "pulse", never start/stop)."""

    @field_validator("hold_s")
    @classmethod
    def _with_default(cls, value: dict[str, float]) -> dict[str, float]:
        return {"default": 10.0, **value}

    def hold_for(self, event_type: str) -> float:
        return self.hold_s.get(event_type, self.hold_s["default"])


_SECRET_KEY = re.compile(r"pass(word|wd|phrase)?$|secret|token|api_?key", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Whether a key's value is a credential (never shown, always masked in logs)."""
    return bool(_SECRET_KEY.search(key)) and not key.lower().endswith(("_file", "_env"))


def _mask_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "***" if is_secret_key(str(k)) and v is not None else _mask_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_secrets(v) for v in value]
    return value


class Config(BaseSettings):
    """The whole configuration. Build it with `hikd.config.load_config()`."""

    model_config = SettingsConfigDict(
        env_prefix="HIKD_",
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    sdk: SdkConfig = Field(default_factory=SdkConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    devices: list[DeviceConfig] = Field(default_factory=list)
    arming: ArmingConfig = Field(default_factory=ArmingConfig)
    listen: list[ListenConfig] = Field(default_factory=list)
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    sinks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Raw per-sink sections; each sink validates its own with `validate_section()`."""
    jobs: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _listen_defaults(self) -> Config:
        hosts = list(dict.fromkeys(a for d in self.devices for a in d.allowed_addresses))
        for lst in self.listen:
            if "allowed" not in lst.model_fields_set:
                _fill_default(lst, "allowed", hosts)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return settings_sources(settings_cls, init_settings, env_settings)

    def device(self, name: str) -> DeviceConfig:
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)

    def __repr_args__(self) -> Any:
        # Sink and job sections are raw dicts: their passwords are plain strings.
        for key, value in super().__repr_args__():
            yield key, _mask_secrets(value) if key in ("sinks", "jobs") else value


Validator = Callable[[Config], None]
