"""``hikd check-config``: the configuration and every sink section it names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hikd.cli.output import Subcommands, config_arg

if TYPE_CHECKING:
    from hikd.config import Config


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser("check-config", help="validate the configuration and exit")
    config_arg(p)
    p.set_defaults(handler=lambda args: check_config(args.config))


def _validate_sinks(config: Config) -> None:
    from hikd.sinks.registry import validate_sinks

    validate_sinks(config.sinks)


def _validate_jobs(config: Config) -> None:
    from hikd.jobs.config import validate_jobs

    validate_jobs(config.jobs, [device.name for device in config.devices])


def _validate_directories(config: Config) -> None:
    """The directories hikd writes to can be created and written (by this user)."""
    from hikd.errors import ConfigError
    from hikd.files import directory_problem

    wanted = [(config.daemon.state_dir, "daemon.state_dir")]
    if config.daemon.picture_dir is not None:
        wanted.append((config.daemon.picture_dir, "daemon.picture_dir"))
    if config.sdk.log_dir is not None:
        wanted.append((config.sdk.log_dir, "sdk.log_dir"))
    if config.daemon.runtime_dir is not None:
        wanted.append((config.daemon.runtime_dir, "daemon.runtime_dir"))
    for i, job in enumerate(config.jobs):
        if isinstance(job, dict) and isinstance(job.get("output_dir"), str):
            wanted.append((Path(job["output_dir"]), f"jobs.{i}.output_dir"))
    for name, section in config.sinks.items():
        kind = section.get("type", name) if isinstance(section, dict) else None
        if kind == "disk" and section.get("enabled", True) and isinstance(section.get("path"), str):
            wanted.append((Path(section["path"]), f"sinks.{name}.path"))
    problems: list[str] = []
    for path, key in wanted:
        inside = Path(path).is_relative_to(config.daemon.state_dir)
        if problems and inside:
            continue  # said already: the state directory cannot be made
        problem = directory_problem(Path(path), key)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError(problems)


def _validate_raw_sinks(data: dict[str, Any]) -> None:
    from hikd.sinks.registry import validate_sinks

    sinks = data.get("sinks")
    if isinstance(sinks, dict):
        validate_sinks(sinks)


def check_config(path: Path | None) -> int:
    from hikd.config import check_config_main

    return check_config_main(
        path,
        extra_validators=[_validate_sinks, _validate_jobs, _validate_directories],
        raw_validators=[_validate_raw_sinks],
    )
