"""The configuration in plain objects, for a device host (README "Processes").

A device host is a fresh interpreter that gets its configuration from the supervisor, which
has read and checked it already. Unpickling the pydantic models would import pydantic and
pydantic-settings and build every model's validators in each host: ~13 MB of its memory and
part of every restart, to check nothing. `plain()` turns a `Config` into these classes: the
same fields, the few methods that code running in a host calls, and nothing that needs
pydantic to unpickle. Code that runs in a host reads its configuration through attributes
only, so it works with either form (``Daemon(hosts="inline")`` keeps the models).
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")

OFFSET_PATTERN = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def password_env_name(device_name: str) -> str:
    return "HIKD_PASSWORD_" + device_name.upper().replace("-", "_")


def zone_of(value: str | None) -> tzinfo | None:
    """A device's configured `timezone` (an offset such as ``+01:00`` or an IANA name)."""
    if value is None:
        return None
    match = OFFSET_PATTERN.match(value)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        return timezone(sign * delta)
    return ZoneInfo(value)


class Secret:
    """A password, as pydantic's `SecretStr` holds it: never shown by `repr` or `str`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


class Plain:
    """One section: its fields as attributes (read-only, like the frozen models); private
    attributes of the model start with ``_``."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"the configuration is read-only ({name})")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"

    def fields(self) -> list[str]:
        return [name for name in vars(self) if not name.startswith("_")]


class PlainDevice(Plain):
    """`hikd.config.DeviceConfig`."""

    name: str
    timezone: str | None
    _password_source: str

    @property
    def password_env(self) -> str:
        return password_env_name(self.name)

    @property
    def password_source(self) -> str:
        return self._password_source

    def tzinfo(self) -> tzinfo | None:
        return zone_of(self.timezone)


class PlainAlarms(Plain):
    """`hikd.config.AlarmsConfig`."""

    hold_s: dict[str, float]

    def hold_for(self, event_type: str) -> float:
        return self.hold_s.get(event_type, self.hold_s["default"])


class PlainConfig(Plain):
    """`hikd.config.Config`."""

    devices: list[PlainDevice]

    def device(self, name: str) -> PlainDevice:
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)


_PLAIN: dict[str, type[Plain]] = {
    "Config": PlainConfig,
    "DeviceConfig": PlainDevice,
    "AlarmsConfig": PlainAlarms,
}


def plain(value: T) -> T:
    """`value` (a `Config`, a section, or lists and dicts of them) with every model and
    secret in plain form: the same attributes and methods, typed as the original."""
    from pydantic import BaseModel, SecretStr  # the caller (the supervisor) has them

    def convert(value: Any) -> Any:
        if isinstance(value, BaseModel):
            values = {name: convert(getattr(value, name)) for name in type(value).model_fields}
            values.update({k: convert(v) for k, v in (value.__pydantic_private__ or {}).items()})
            return _PLAIN.get(type(value).__name__, Plain)(values)
        if isinstance(value, SecretStr):
            return Secret(value.get_secret_value())
        if isinstance(value, list | tuple):
            return type(value)(convert(v) for v in value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    converted: T = convert(value)
    return converted


def field_names(section: Any) -> list[str]:
    """The fields of a section, in either form."""
    if isinstance(section, Plain):
        return section.fields()
    return list(type(section).model_fields)


def device_keys(old: Any, new: Any) -> list[str]:
    """The keys of a device that differ (`hikd.config.changes`), both in the same form. A
    secret compares its value: a new password is a change, shown only by its key; where the
    password comes from (file, environment) is no change as long as it is the same password."""
    return [name for name in field_names(new) if getattr(old, name) != getattr(new, name)]
