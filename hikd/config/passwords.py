"""Where a device's password comes from, resolved once at load time.

Per device, the first of these that is set wins:

1. ``password`` in the config file (allowed, discouraged: the file is often world-readable);
2. the environment variable ``HIKD_PASSWORD_<NAME>`` (name upper-cased, ``-`` -> ``_``);
3. ``password_file``: the file's first line, stripped;
4. a systemd credential (``LoadCredential=``/``SetCredential=``):
   ``$CREDENTIALS_DIRECTORY/<name>.password``, else ``$CREDENTIALS_DIRECTORY/hikd-<name>``.

Every password found is registered with `hikd.logs.register_secret`, so it is masked in
every log line; `SecretStr` keeps it out of reprs and error messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from hikd.config.models import DeviceConfig
from hikd.errors import ConfigError
from hikd.logs import register_secret

CREDENTIAL_FILE_NAMES = ("{name}.password", "hikd-{name}")
"""Looked up in this order in $CREDENTIALS_DIRECTORY."""


def read_secret_file(path: Path, key: str) -> SecretStr:
    """The first line of `path`, stripped, registered as a secret.

    Raises `ConfigError` naming `key` (e.g. ``devices.0.password_file``) when the file is
    missing, unreadable or empty. Sinks use it for their own ``password_file`` keys.
    """
    try:
        with path.open(encoding="utf-8") as file:
            first = file.readline()
    except FileNotFoundError:
        raise ConfigError([f"{key}: {path} does not exist"]) from None
    except PermissionError:
        raise ConfigError(
            [f"{key}: cannot read {path}: permission denied (hikd runs as a user who must read it)"]
        ) from None
    except IsADirectoryError:
        raise ConfigError([f"{key}: {path} is a directory, not a file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError([f"{key}: cannot read {path}: {reason}"]) from None
    value = first.strip()
    if not value:
        raise ConfigError([f"{key}: {path} is empty (the password must be on its first line)"])
    register_secret(value)
    return SecretStr(value)


def credential_paths(device_name: str, env: Mapping[str, str]) -> list[Path]:
    """The systemd credential files that may hold this device's password."""
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return []
    return [Path(directory) / n.format(name=device_name) for n in CREDENTIAL_FILE_NAMES]


def resolve_password(device: DeviceConfig, key: str, env: Mapping[str, str]) -> DeviceConfig:
    """`device` with its password resolved, or unchanged (disabled and no password).

    `key` is the device's config path (``devices.0``) for error messages.
    """
    secret, source = _find(device, key, env)
    if secret is None:
        if not device.enabled:
            return device
        raise ConfigError(
            [
                f"{key}.password: no password for device '{device.name}': set password_file, "
                f"{device.password_env}, or a systemd credential "
                f"{CREDENTIAL_FILE_NAMES[0].format(name=device.name)}"
            ]
        )
    resolved = device.model_copy(update={"password": secret})
    resolved._password_source = source
    return resolved


def _find(device: DeviceConfig, key: str, env: Mapping[str, str]) -> tuple[SecretStr | None, str]:
    if device.password is not None:
        value = device.password.get_secret_value()
        if not value:
            raise ConfigError([f"{key}.password: is empty"])
        register_secret(value)
        return device.password, "config file"
    from_env = env.get(device.password_env, "")
    if from_env:
        register_secret(from_env)
        return SecretStr(from_env), device.password_env
    if device.password_file is not None:
        path = device.password_file
        return read_secret_file(path, f"{key}.password_file"), str(path)
    for path in credential_paths(device.name, env):
        if path.exists():
            return read_secret_file(path, f"{key}.password (systemd credential)"), str(path)
    return None, ""
