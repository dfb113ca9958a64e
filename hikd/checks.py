"""``hikd check-config``: the configuration and every sink section it names."""

from __future__ import annotations

from pathlib import Path

from hikd.config import Config, check_config_main


def _validate_sinks(config: Config) -> None:
    from hikd.sinks.registry import validate_sinks

    validate_sinks(config.sinks)


def check_config(path: Path | None) -> int:
    return check_config_main(path, extra_validators=[_validate_sinks])
