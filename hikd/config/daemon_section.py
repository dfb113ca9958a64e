"""``[daemon]`` alone, for the commands that only look at a running hikd (``hikd status``,
``hikd events tail``): the full configuration resolves every device's password, which the
person asking may not be able to read (a systemd credential is the service's only)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from hikd.config.loader import config_path, read_toml
from hikd.config.models import DaemonConfig
from hikd.config.problems import problems_from
from hikd.errors import ConfigError

_ENV_PREFIX = "HIKD_DAEMON__"


def load_daemon_section(path: Path | None, env: Mapping[str, str] | None = None) -> DaemonConfig:
    """The file's ``[daemon]`` with its ``HIKD_DAEMON__*`` overrides (as `load_config`)."""
    env = os.environ if env is None else env
    data = read_toml(config_path(path, env)).get("daemon") or {}
    section = dict(data) if isinstance(data, dict) else {}
    for name, value in env.items():
        if name.upper().startswith(_ENV_PREFIX):
            section[name[len(_ENV_PREFIX) :].lower()] = value
    try:
        return DaemonConfig.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, "daemon", model=DaemonConfig)) from None
