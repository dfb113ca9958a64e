"""`hikd check-config`: load the configuration, say "ok" or list every problem."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from hikd.config.loader import config_path, load_config, read_toml
from hikd.config.models import Config, Validator
from hikd.errors import ConfigError, UserError
from hikd.logs import redact


def summary(config: Config) -> str:
    """One line describing what the configuration sets up."""
    devices = config.devices
    enabled = sum(1 for d in devices if d.enabled)
    parts = [f"{len(devices)} device{'s' if len(devices) != 1 else ''} ({enabled} enabled)"]
    parts.append(f"{len(config.listen)} listen port{'s' if len(config.listen) != 1 else ''}")
    parts.append(f"sinks: {', '.join(config.sinks) if config.sinks else 'none'}")
    parts.append(f"{len(config.jobs)} job{'s' if len(config.jobs) != 1 else ''}")
    return ", ".join(parts)


def notes(config: Config) -> list[str]:
    """Advice that is not an error."""
    result = []
    for i, device in enumerate(config.devices):
        if device.password_source == "config file":
            result.append(
                f"note: devices.{i}.password: a password in the config file is readable by "
                f"anyone who can read the file; prefer password_file or {device.password_env}"
            )
    if config.listen:
        result += _unresolved_names(config)
    return result


def _unresolved_names(config: Config) -> list[str]:
    """Host names that pushes are matched against and that do not resolve now: a note, as
    DNS may come up after hikd (which resolves them again every few minutes)."""
    from hikd.addresses import unresolved

    where = {f"listen.{i}.allowed": lst.allowed for i, lst in enumerate(config.listen)}
    for i, device in enumerate(config.devices):
        where[f"devices.{i}.allowed_addresses"] = device.allowed_addresses
    notes = []
    for key, entries in where.items():
        for name, error in unresolved(entries):
            notes.append(
                f"note: {key}: {name!r} does not resolve now ({error}); pushes from it are "
                "refused until it does"
            )
    return notes


def check_config_main(
    path: Path | None = None,
    extra_validators: Sequence[Validator] = (),
    *,
    raw_validators: Sequence[Callable[[dict[str, Any]], None]] = (),
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Load and validate the configuration; print ``ok: ...`` (0) or each problem (1).

    `extra_validators` run on the loaded config (e.g. the sinks registry validating each
    ``[sinks.*]`` section); they raise `ConfigError` (or another `UserError`). Every
    validator runs, so all problems are listed at once. No traceback for user mistakes.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    where = config_path(path)
    try:
        config = load_config(path)
    except ConfigError as exc:
        # The sections the model leaves raw (sinks, jobs) can still be checked from the
        # file, so that one run lists every problem.
        return _fail(exc.problems + _raw_problems(where, raw_validators), err)
    problems: list[str] = []
    for validate in extra_validators:
        try:
            validate(config)
        except ConfigError as exc:
            problems += exc.problems
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        return _fail(problems, err)
    for note in notes(config):
        print(redact(note), file=err)
    print(redact(f"ok: {where}: {summary(config)}"), file=out)
    return 0


def _raw_problems(where: Path, validators: Sequence[Callable[[dict[str, Any]], None]]) -> list[str]:
    try:
        data = read_toml(where)
    except ConfigError:
        return []  # already reported by load_config
    problems: list[str] = []
    for validate in validators:
        try:
            validate(data)
        except ConfigError as exc:
            problems += exc.problems
        except UserError as exc:
            problems.append(str(exc))
    return problems


def _fail(problems: list[str], err: TextIO) -> int:
    for problem in problems:
        print(redact(problem), file=err)
    return 1
