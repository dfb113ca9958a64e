"""What a configuration reload changes (``hikd reload``, SIGHUP, ``systemctl reload``).

Devices are applied live: each enabled device is added, removed, changed (any of its keys:
address, port, credentials, protocol, arming, ...) or untouched; so are the log level (one
call in each process), who may push to each listen port (``[[listen]] allowed``, or the
devices' addresses it defaults to: a device added or removed is let in or shut out at once),
``[alarms]`` (for the alarms that start from then on), ``[arming]`` (the armed devices
are armed again) and ``[[jobs]]`` (added, removed and changed ones rescheduled, by name;
`hikd.hosts.host_reload`). Everything else is read once at start (the outbox and state
directory, the number of device hosts, listen ports and their limits, sinks, the vendor
library's settings, ...): a difference there is reported as needing
a restart and not applied, so that the daemon never runs half on one configuration and half
on another. Values are never shown, only key paths (the log level, an allow-list the user
wrote and the keys of ``[alarms]`` and ``[arming]`` excepted): a password must not reach a
log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from hikd.config.models import Config, DeviceConfig, ListenConfig
from hikd.plain_config import device_keys

LIVE_SECTIONS = frozenset({"devices", "jobs"})
"""The sections a reload applies; a change anywhere else waits for a restart."""
LIVE_KEYS = frozenset({"logging.level"})
"""Single keys of the other sections a reload applies."""
SETTINGS = ("alarms", "arming")
"""Sections the device hosts apply on reload (`hikd.hosts.host_reload.reload_settings`);
their values are no secret and are shown."""


@dataclass(frozen=True)
class ConfigChanges:
    added: list[str] = field(default_factory=list)
    added_at: dict[str, str] = field(default_factory=dict)
    """Added device -> where hikd reaches it (``host:port``): one at a removed device's
    address may be that device renamed (`hikd.sinks.mqtt.leaving`)."""
    removed: dict[str, str] = field(default_factory=dict)
    """Device -> why: ``removed`` (no longer in the file) or ``disabled`` (enabled = false)."""
    changed: dict[str, list[str]] = field(default_factory=dict)
    """Device -> the keys that differ (names only, never values)."""
    unchanged: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)
    """Key paths outside the live sections that differ (``daemon.device_hosts``, ...)."""
    live: dict[str, str] = field(default_factory=dict)
    """`LIVE_KEYS` that differ, and ``listen.<n>.allowed`` the user wrote, -> their new value
    (none of them is a secret)."""
    allowed: list[int] = field(default_factory=list)
    """The listen ports whose allowed senders differ (written, or taken from the devices)."""
    jobs: dict[str, list[str]] = field(default_factory=dict)
    """``added``, ``removed``, ``changed`` -> job names (only those that are not empty)."""

    @property
    def devices_changed(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    @property
    def every_host(self) -> bool:
        """Whether every device host is told, not only those whose devices changed: the log
        level, a key of `SETTINGS` or a job differs."""
        return bool(
            self.jobs or any(k == "logging.level" or k.split(".")[0] in SETTINGS for k in self.live)
        )

    def line(self) -> str:
        """The one line a user reads (log, `hikd reload`)."""
        parts = []
        if self.added:
            parts.append(f"added {', '.join(self.added)}")
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        if self.changed:
            parts.append(
                "changed "
                + ", ".join(f"{name} ({', '.join(keys)})" for name, keys in self.changed.items())
            )
        said = "; ".join(parts) if parts else "no device changed"
        if self.unchanged and parts:
            said += f"; {len(self.unchanged)} untouched"
        for key, value in self.live.items():
            said += f"; {key} now {value}"
            if key.startswith("alarms."):
                said += " for new alarms"
        if self.jobs:
            said += "; jobs rescheduled: " + ", ".join(
                f"{what} {', '.join(names)}" for what, names in self.jobs.items()
            )
        if self.needs_restart:
            said += (
                f"; needs a restart to take effect (not applied): {', '.join(self.needs_restart)}"
            )
        return said

    def attributes(self) -> dict[str, Any]:
        """For the ``reload`` health event."""
        return {
            "added": list(self.added),
            "added_at": dict(self.added_at),
            "removed": dict(self.removed),
            "changed": {name: list(keys) for name, keys in self.changed.items()},
            "unchanged": len(self.unchanged),
            "needs_restart": list(self.needs_restart),
            "live": dict(self.live),
            "allowed_changed": list(self.allowed),
            "jobs": {what: list(names) for what, names in self.jobs.items()},
        }


def compare(old: Config, new: Config) -> ConfigChanges:
    """What differs between the running configuration and the one read now."""
    before = {d.name: d for d in old.devices if d.enabled}
    after = {d.name: d for d in new.devices if d.enabled}
    listed = {d.name for d in new.devices}
    keys = {name: device_keys(before[name], d) for name, d in after.items() if name in before}
    changed = {name: found for name, found in keys.items() if found}
    restart = _restart_keys(old, new)
    allowed = _allowed_changes(old, new)
    live = {key: _shown(_value(new, key)) for key in restart if _live(key)}
    for index, listen in allowed.items():
        if "allowed" in listen.model_fields_set:  # taken from the devices: they say it
            live[f"listen.{index}.allowed"] = ", ".join(listen.allowed) or "nobody"
    return ConfigChanges(
        added=[name for name in after if name not in before],
        added_at={n: f"{d.host}:{d.port}" for n, d in after.items() if n not in before},
        removed={
            name: "disabled" if name in listed else "removed"
            for name in before
            if name not in after
        },
        changed=changed,
        unchanged=[name for name in after if name in before and name not in changed],
        needs_restart=[key for key in restart if not _live(key)],
        live=live,
        allowed=[listen.port for listen in allowed.values()],
        jobs=_job_changes(old.jobs, new.jobs),
    )


def _job_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Jobs added, removed and changed (any key), by name; a job moved in the file is none."""
    before = {str(job.get("name")): job for job in old}
    after = {str(job.get("name")): job for job in new}
    found = {
        "added": [name for name in after if name not in before],
        "removed": [name for name in before if name not in after],
        "changed": [name for name in after if name in before and after[name] != before[name]],
    }
    return {what: names for what, names in found.items() if names}


def applied(old: Config, new: Config) -> Config:
    """The configuration the daemon runs on after a reload: the new devices, log level,
    allowed senders, ``[alarms]``, ``[arming]`` and jobs, everything else as it was started (so
    that a device host restarted later starts like the others, with the same outbox, sinks
    and listen ports)."""
    logging = old.logging.model_copy(update={"level": new.logging.level})
    update: dict[str, Any] = {"devices": list(new.devices), "logging": logging, "jobs": new.jobs}
    update.update({section: getattr(new, section) for section in SETTINGS})
    allowed = _allowed_changes(old, new)
    if allowed:
        update["listen"] = [
            listen.model_copy(update={"allowed": list(allowed[i].allowed)})
            if i in allowed
            else listen
            for i, listen in enumerate(old.listen)
        ]
    return old.model_copy(update=update)


def _allowed_changes(old: Config, new: Config) -> dict[int, ListenConfig]:
    """Index -> the new `[[listen]]` whose allowed senders differ, for the listen ports that
    stay as they are otherwise (a port added, removed or changed needs a restart)."""
    if len(old.listen) != len(new.listen):
        return {}
    return {
        i: n
        for i, (o, n) in enumerate(zip(old.listen, new.listen, strict=True))
        if o.allowed != n.allowed and _without_allowed(o) == _without_allowed(n)
    }


def _without_allowed(listen: ListenConfig) -> dict[str, Any]:
    return listen.model_dump(exclude={"allowed"})


def _live(key: str) -> bool:
    return key in LIVE_KEYS or key.split(".")[0] in SETTINGS


def _value(config: Config, key: str) -> Any:
    """The value at a key path; None for a key of a table that is not there any more (a
    hold time taken out of ``[alarms.hold_s]``)."""
    value: Any = config
    for name in key.split("."):
        value = value.get(name) if isinstance(value, dict) else getattr(value, name)
    return value


def _shown(value: Any) -> str:
    if value is None:
        return "the default"
    if isinstance(value, bool):
        return str(value).lower()  # as written in the file
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def same_devices(old: Sequence[DeviceConfig], new: Sequence[DeviceConfig]) -> bool:
    """Whether two lists name the same devices, in order, with the same keys."""
    return [d.name for d in old] == [d.name for d in new] and not any(
        device_keys(a, b) for a, b in zip(old, new, strict=True)
    )


def _restart_keys(old: Config, new: Config) -> list[str]:
    keys: list[str] = []
    for section in type(new).model_fields:
        if section in LIVE_SECTIONS:
            continue
        before, after = getattr(old, section), getattr(new, section)
        if section == "listen" and len(before) == len(after):
            # Who may push is live (`_allowed_changes`); a port or a limit is not.
            for i, (o, n) in enumerate(zip(before, after, strict=True)):
                keys += _differences(f"listen.{i}", _without_allowed(o), _without_allowed(n))
            continue
        keys += _differences(section, before, after)
    return keys


def _differences(path: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if isinstance(old, BaseModel) and isinstance(new, BaseModel) and type(old) is type(new):
        found = []
        for name in type(new).model_fields:
            found += _differences(f"{path}.{name}", getattr(old, name), getattr(new, name))
        return found or [path]
    if isinstance(old, dict) and isinstance(new, dict):
        names = list(dict.fromkeys([*old, *new]))
        return [f"{path}.{name}" for name in names if old.get(name) != new.get(name)]
    return [path]
