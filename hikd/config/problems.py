"""Turn pydantic's validation errors into the one-line problems a user reads.

Each problem is ``key.path: what is wrong (got value)``, the path as the user wrote it in
the TOML file (list items by 0-based index: ``devices.1.port``). A value is echoed only
when it is short, scalar and not a credential.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from hikd.config.models import is_secret_key
from hikd.errors import ConfigError
from hikd.logs import register_secret

M = TypeVar("M", bound=BaseModel)

_TYPE_MESSAGES = {
    "missing": "required, but not set",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string (in quotes)",
    "list_type": 'must be a list, like ["a", "b"]',
    "dict_type": "must be a table (a [section] or { key = value })",
    "model_type": "must be a table (a [section] or { key = value })",
    "model_attributes_type": "must be a table (a [section] or { key = value })",
    "path_type": "must be a path (a string)",
}


def _path(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def _shown(value: Any) -> str | None:
    """The value as the user would recognise it, or None when it should not be echoed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    return None


def _known_keys(model: type[BaseModel] | None, loc: Sequence[int | str]) -> list[str]:
    """The keys the section at `loc` accepts (walks nested models, lists and dicts)."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if annotation is None:
            return []
        if isinstance(part, int):
            args = getattr(annotation, "__args__", ())
            annotation = args[0] if args else None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            annotation = field.annotation if field else None
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; list[X] stays list[X]."""
    args = getattr(annotation, "__args__", ())
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else None
    return annotation


def problem_line(
    error: ErrorDetails | Mapping[str, Any],
    prefix: str = "",
    model: type[BaseModel] | None = None,
    env_names: Mapping[str, str] | None = None,
) -> str:
    """One pydantic error as ``path: message``."""
    loc = tuple(error["loc"])
    path = _path(loc)
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    kind = error["type"]
    ctx = error.get("ctx") or {}
    secret = any(is_secret_key(str(part)) for part in loc)
    show_value = not secret

    if kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        message = "unknown key"
        close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
        if close:
            message += f"; did you mean '{close[0]}'?"
        elif known:
            message += f" (known keys: {', '.join(known)})"
        show_value = False
    elif kind == "literal_error":
        message = f"must be one of {ctx.get('expected', '?')}"
    elif kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", error["msg"]))
    elif kind in _TYPE_MESSAGES:
        message = _TYPE_MESSAGES[kind]
        show_value = show_value and kind != "missing"
    else:
        text = str(error["msg"])
        message = text[:1].lower() + text[1:]

    shown = _shown(error.get("input")) if show_value else None
    if shown is not None:
        message += f" (got {shown})"
    env = _env_source(loc, env_names or {})
    if env:
        message += f" (from environment variable {env})"
    return f"{path}: {message}" if path else message


def _env_source(loc: Sequence[int | str], env_names: Mapping[str, str]) -> str | None:
    """The environment variable that set the value at `loc` (or a section holding it)."""
    for end in range(len(loc), 0, -1):
        name = env_names.get(_path(loc[:end]).lower())
        if name:
            return name
    return None


def problems_from(
    error: ValidationError,
    prefix: str = "",
    model: type[BaseModel] | None = None,
    env_names: Mapping[str, str] | None = None,
) -> list[str]:
    return [problem_line(e, prefix, model, env_names) for e in error.errors()]


def register_secrets_in(value: Any) -> None:
    """Register every credential inside a validated model or raw dict with the log masker."""
    if isinstance(value, SecretStr):
        register_secret(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            field_value = getattr(value, name)
            if isinstance(field_value, str) and is_secret_key(name):
                register_secret(field_value)
            else:
                register_secrets_in(field_value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str) and is_secret_key(str(key)):
                register_secret(item)
            else:
                register_secrets_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            register_secrets_in(item)


def validate_section(model: type[M], data: Any, path: str) -> M:
    """Validate one raw config section (e.g. ``config.sinks["mqtt"]``) with `model`.

    Raises `ConfigError` whose problems carry the full key path (``sinks.mqtt.port: ...``).
    Credentials in the result (SecretStr fields, keys named like password/token/secret)
    are registered with `hikd.logs.register_secret`.
    """
    try:
        section = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, path, model)) from None
    register_secrets_in(section)
    return section
