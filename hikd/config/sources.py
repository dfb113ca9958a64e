"""Where `Config` takes its values from: init arguments, the environment, the TOML file.

`load_config` (loader.py) parses the file and hands it and the environment to
``Config.settings_customise_sources`` through `inputs`: the models need this module, and
it needs nothing of theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
)


@dataclass(frozen=True, slots=True)
class Inputs:
    file_data: dict[str, Any]
    env: Mapping[str, str]


# settings_customise_sources() is a classmethod without arguments of ours: load_config
# hands it the parsed file and the environment through this (thread- and task-safe) slot.
inputs: ContextVar[Inputs | None] = ContextVar("hikd_config_inputs", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """The pydantic-settings environment source, reading a given mapping (not os.environ)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._mapping.items()}


def settings_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources of `Config`, strongest first: init kwargs, environment, TOML file."""
    given = inputs.get()
    if given is None:  # a bare Config(): defaults and os.environ
        return (init_settings, env_settings)
    return (
        init_settings,
        _MappingEnvSource(settings_cls, given.env),
        # The same as TomlConfigSettingsSource, minus the second read of a file that
        # load_config already parsed (it needs the parse errors for its own messages).
        InitSettingsSource(settings_cls, init_kwargs=given.file_data),
    )
