"""Find sink classes by entry point and build the configured sinks.

Every sink, built-in or third-party, registers itself in the entry-point group
``hikd.sinks``; the core never names one. A ``[sinks.<name>]`` section configures the
sink registered as ``<name>``, or the one its ``type`` key names, so one sink can be
configured twice (``[sinks.archive]`` with ``type = "disk"``). ``enabled = false`` skips
a section. Both keys belong to the registry; the rest is validated by the sink's
``Config`` model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from pydantic import BaseModel

from hikd.config import validate_section
from hikd.errors import ConfigError
from hikd.sinks.base import Sink, SinkContext

GROUP = "hikd.sinks"

ContextFactory = Callable[[str], SinkContext]
"""Makes the `SinkContext` of the section named by its argument."""

# Keys of a sink section that the registry reads and does not pass on to the sink.
_OWN_KEYS = ("enabled", "type")


def available_sinks() -> dict[str, EntryPoint]:
    """The registered sinks by name (not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_sink_class(name: str, where: str = "") -> type[Sink]:
    """Import the sink registered as `name`; `where` is the config path for messages."""
    where = where or f"sinks.{name}"
    found = available_sinks()
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise ConfigError([f"{where}: unknown sink {name!r} (known sinks: {known})"])
    entry = found[name]
    try:
        cls = entry.load()
    except Exception as e:
        raise ConfigError(
            [
                f"{where}: cannot load sink {name!r} from {entry.value} "
                f"({type(e).__name__}: {e}); reinstall the package that provides it"
            ]
        ) from None
    config_model = getattr(cls, "Config", None)
    missing = [m for m in ("open", "send", "close") if not callable(getattr(cls, m, None))]
    if not (isinstance(config_model, type) and issubclass(config_model, BaseModel)):
        missing.insert(0, "Config (a pydantic model)")
    if not isinstance(cls, type) or missing:
        raise ConfigError(
            [f"{where}: {entry.value} is not a hikd sink (missing {', '.join(missing)})"]
        )
    sink_class: type[Sink] = cls
    return sink_class


def _prepare(name: str, section: Mapping[str, Any]) -> tuple[type[Sink], BaseModel] | None:
    """The sink class and validated config of one section, or None when disabled."""
    where = f"sinks.{name}"
    if not isinstance(section, Mapping):
        raise ConfigError([f"{where}: must be a table (a [section] or {{ key = value }})"])
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError([f"{where}.enabled: must be true or false"])
    if not enabled:
        return None
    kind = section.get("type", name)
    if not isinstance(kind, str) or not kind:
        raise ConfigError([f"{where}.type: must be the name of a sink (a string)"])
    cls = load_sink_class(kind, f"{where}.type" if "type" in section else where)
    data = {k: v for k, v in section.items() if k not in _OWN_KEYS}
    return cls, validate_section(cls.Config, data, where)


def validate_sinks(sections: Mapping[str, Mapping[str, Any]]) -> None:
    """Check every ``[sinks.*]`` section without building anything (``hikd check-config``).

    Raises one `ConfigError` listing the problems of all sections.
    """
    problems: list[str] = []
    for name, section in sections.items():
        try:
            _prepare(name, section)
        except ConfigError as e:
            problems += e.problems
    if problems:
        raise ConfigError(problems)


def enabled_sinks(sections: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The names of the sinks the daemon builds from `sections`, in config order."""
    validate_sinks(sections)
    return [name for name, section in sections.items() if _prepare(name, section) is not None]


def build_sinks(
    sections: Mapping[str, Mapping[str, Any]], context_factory: ContextFactory
) -> list[tuple[str, Sink]]:
    """Validate and build the enabled sinks, as (section name, sink), in config order."""
    validate_sinks(sections)
    sinks: list[tuple[str, Sink]] = []
    for name, section in sections.items():
        prepared = _prepare(name, section)
        if prepared is None:
            continue
        cls, config = prepared
        # The protocol cannot say how a sink is constructed; the docs of `Sink` do.
        make = cast(Callable[[BaseModel, SinkContext], Sink], cls)
        sinks.append((name, make(config, context_factory(name))))
    return sinks
