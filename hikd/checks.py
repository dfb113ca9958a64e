"""``hikd check-config``: the configuration and every sink section it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hikd.config import Config, check_config_main


def _validate_sinks(config: Config) -> None:
    from hikd.sinks.registry import validate_sinks

    validate_sinks(config.sinks)


def _validate_jobs(config: Config) -> None:
    from hikd.jobs_config import validate_jobs

    validate_jobs(config.jobs, [device.name for device in config.devices])


def _validate_raw_sinks(data: dict[str, Any]) -> None:
    from hikd.sinks.registry import validate_sinks

    sinks = data.get("sinks")
    if isinstance(sinks, dict):
        validate_sinks(sinks)


def check_config(path: Path | None) -> int:
    return check_config_main(
        path,
        extra_validators=[_validate_sinks, _validate_jobs],
        raw_validators=[_validate_raw_sinks],
    )
