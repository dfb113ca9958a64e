"""Load ``hikd.toml`` plus ``HIKD_*`` environment overrides into a checked `Config`.

Sources, strongest first: environment variables ``HIKD_<SECTION>__<KEY>`` (pydantic-settings,
``__`` between levels; lists such as ``HIKD_DEVICES`` take JSON), then the TOML file, then
the defaults. Every mistake becomes one line ``key.path: message`` in a `ConfigError`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    SettingsError,
)

from hikd.config.models import Config, DeviceConfig, ListenConfig
from hikd.config.passwords import resolve_password
from hikd.config.problems import problems_from, register_secrets_in
from hikd.config.sources import Inputs, inputs
from hikd.errors import ConfigError
from hikd.plain_config import password_env_name

DEFAULT_PATH = Path("/etc/hikd/hikd.toml")
ENV_PREFIX = "HIKD_"
# Variables hikd reads itself, not settings: the config path, device passwords, and
# the directory of the vendor library (hikd.sdk.library).
_NOT_SETTINGS = re.compile(r"^HIKD_(CONFIG|SDK_DIR|PASSWORD_.+)$", re.IGNORECASE)


def config_path(path: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """`path`, else $HIKD_CONFIG, else /etc/hikd/hikd.toml."""
    if path is not None:
        return path
    env = os.environ if env is None else env
    from_env = env.get("HIKD_CONFIG", "")
    return Path(from_env) if from_env else DEFAULT_PATH


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and complete the configuration; raise `ConfigError` listing every problem.

    `env` defaults to os.environ. Device passwords are resolved (see
    `hikd.config.passwords`) and every secret is registered with the log masker.
    """
    env = dict(os.environ if env is None else env)
    path = config_path(path, env)
    file_data = read_toml(path)

    problems = _misspelt_env_names(env) + _list_item_env_names(env)
    settings_env = {k: v for k, v in env.items() if not _LIST_ITEM.match(k)}
    token = inputs.set(Inputs(file_data, settings_env))
    try:
        config = Config()
    except ValidationError as exc:
        raise ConfigError(
            problems + problems_from(exc, model=Config, env_names=_env_names(env))
        ) from None
    except SettingsError as exc:
        raise ConfigError([*problems, _settings_problem(exc)]) from None
    finally:
        inputs.reset(token)

    problems += _device_problems(config.devices) + _listen_problems(config.listen)
    devices: list[DeviceConfig] = []
    for index, device in enumerate(config.devices):
        try:
            devices.append(resolve_password(device, f"devices.{index}", env))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    register_secrets_in(config.sinks)
    register_secrets_in(config.jobs)
    return config.model_copy(update={"devices": devices})


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or a `ConfigError` saying what is wrong with it (one line)."""
    where = f"config file {path}"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{where}: not found; create it (start from hikd.example.toml), "
                "or pass --config PATH or set HIKD_CONFIG"
            ]
        ) from None
    except PermissionError:
        raise ConfigError(
            [f"{where}: permission denied; hikd's user must be able to read it"]
        ) from None
    except IsADirectoryError:
        raise ConfigError([f"{where}: is a directory; give the path of the .toml file"]) from None
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read it: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{where}: line {line}: not UTF-8 text"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: {_toml_message(str(exc))}"]) from None


_TOML_POSITION = re.compile(
    r"^(?P<msg>.*?)\s*\(at (?:line (?P<line>\d+), column (?P<col>\d+)|(?P<end>end of document))\)$"
)


def _toml_message(text: str) -> str:
    """tomllib's "Expected '=' ... (at line 12, column 5)" as
    "line 12: expected '=' ... (column 5)"."""
    match = _TOML_POSITION.match(text)
    if match is None:
        return text[:1].lower() + text[1:]
    msg = match.group("msg")
    msg = msg[:1].lower() + msg[1:]
    if match.group("end"):
        return f"at the end of the file: {msg}"
    return f"line {match.group('line')}: {msg} (column {match.group('col')})"


def _env_names(env: Mapping[str, str]) -> dict[str, str]:
    """Config path ("sdk.log_level") -> the HIKD_ variable that sets it."""
    names = {}
    for name in env:
        if name.upper().startswith(ENV_PREFIX) and not _NOT_SETTINGS.match(name):
            names[name[len(ENV_PREFIX) :].lower().replace("__", ".")] = name
    return names


def _misspelt_env_names(env: Mapping[str, str]) -> list[str]:
    """HIKD_SDK_LOG_LEVEL (one underscore) is silently ignored by pydantic-settings: say so."""
    problems = []
    for name in env:
        upper = name.upper()
        if _NOT_SETTINGS.match(name):
            continue  # HIKD_SDK_DIR, HIKD_CONFIG, HIKD_PASSWORD_*: read elsewhere on purpose
        for section in Config.model_fields:
            head = f"{ENV_PREFIX}{section.upper()}_"
            if upper.startswith(head) and not upper.startswith(head + "_"):
                fixed = head + "_" + upper[len(head) :]
                problems.append(f"{name}: not a hikd setting; did you mean {fixed}?")
    return problems


# Lists of tables cannot be changed item by item from the environment (pydantic-settings
# would read HIKD_DEVICES__0__PORT as a table named "0" and report a puzzling type error).
_LIST_ITEM = re.compile(r"^HIKD_(DEVICES|LISTEN|JOBS)__", re.IGNORECASE)


def _list_item_env_names(env: Mapping[str, str]) -> list[str]:
    problems = []
    for name in env:
        match = _LIST_ITEM.match(name)
        if match:
            whole = f"{ENV_PREFIX}{match.group(1).upper()}"
            problems.append(
                f"{name}: a list cannot be changed item by item from the environment; "
                f"set {whole} to the whole list as JSON, or edit the config file"
            )
    return problems


def _settings_problem(exc: SettingsError) -> str:
    match = re.search(r'field "(\w+)"', str(exc))
    field = match.group(1) if match else "?"
    kind = "list" if field in ("devices", "listen", "jobs") else "table"
    return (
        f"{ENV_PREFIX}{field.upper()}: not valid JSON; a whole {kind} set by one environment "
        f"variable must be JSON (or set single keys with {ENV_PREFIX}{field.upper()}__KEY=value)"
    )


def _device_problems(devices: list[DeviceConfig]) -> list[str]:
    problems = []
    names: dict[str, int] = {}
    env_names: dict[str, int] = {}
    endpoints: dict[tuple[str, int], int] = {}
    for i, device in enumerate(devices):
        if device.name in names:
            first = names[device.name]
            problems.append(f"devices.{i}.name: '{device.name}' is already used by devices.{first}")
        else:
            names[device.name] = i
            env_name = password_env_name(device.name)
            if env_name in env_names:
                other = devices[env_names[env_name]].name
                problems.append(
                    f"devices.{i}.name: '{device.name}' and '{other}' would both read their "
                    f"password from {env_name}; rename one"
                )
            env_names.setdefault(env_name, i)
        endpoint = (device.host.lower(), device.port)
        if endpoint in endpoints:
            other = devices[endpoints[endpoint]].name
            problems.append(
                f"devices.{i}: {device.host} port {device.port} is already device '{other}'"
            )
        endpoints.setdefault(endpoint, i)
    return problems


_ANY_ADDRESS = ("0.0.0.0", "::")


def _listen_problems(servers: list[ListenConfig]) -> list[str]:
    problems = []
    for i, server in enumerate(servers):
        for j in range(i):
            other = servers[j]
            same_address = (
                server.address == other.address
                or server.address in _ANY_ADDRESS
                or other.address in _ANY_ADDRESS
            )
            if server.port == other.port and same_address:
                problems.append(
                    f"listen.{i}.port: port {server.port} is already used by listen.{j}"
                )
                break
    return problems
