"""Logging for hikd: one structlog pipeline for structlog and stdlib loggers, with secrets masked.

Every record, whether it comes from a structlog logger (hikd) or a stdlib `logging` logger
(paho, apscheduler, warnings), is rendered by one `ProcessorFormatter` on one handler of the
root logger: JSON lines when the output is not a terminal (systemd's journal, files), a
readable console format on a terminal.

Masking of secrets is the last step, on the rendered line itself, so nothing can slip
through: not a kwarg, not an exception message inside a traceback, not the repr of an
object, not a third-party library's message. `register_secret()` is generic: device
passwords, the MQTT password, API tokens all go through it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from typing import Any, Final, TextIO
from urllib.parse import quote

import structlog
from structlog.typing import EventDict, Processor

__all__ = ["LEVELS", "get_logger", "redact", "register_secret", "setup_logging"]

LEVELS: Final = ("debug", "info", "warning", "error")
MASK: Final = "***"
MIN_SECRET_LENGTH: Final = 4
"""Shorter values are not masked: masking "on" or "123" would garble unrelated text."""

_lock = threading.Lock()
_secrets: set[str] = set()
# Replaced as a whole under `_lock`; readers take the reference without locking
# (an attribute read is atomic), so `redact()` never waits on `register_secret()`.
_pattern: re.Pattern[str] | None = None
_handler: logging.Handler | None = None


def _spellings(value: str) -> set[str]:
    """The ways `value` can show up in a rendered line.

    The JSON renderer escapes quotes, backslashes and non-ASCII characters, repr() escapes
    quotes and backslashes, and URLs percent-encode: a password such as `pa"ss\\é` never
    appears verbatim in a JSON line, so the escaped forms are masked too.
    """
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        quote(value, safe=""),
    }
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register_secret(value: str) -> None:
    """Mask `value` (and its escaped spellings) as ``***`` in every log line from now on.

    Values shorter than 4 characters are ignored. Thread-safe; registering the same value
    again costs nothing.
    """
    global _pattern
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        forms = _spellings(value) - _secrets
        if not forms:
            return
        _secrets.update(forms)
        # Longest first: when one secret contains another, the whole of it is masked.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(MASK, text)


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """Renders like ProcessorFormatter, then masks secrets in the finished line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _leading_keys(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """Put timestamp, level, logger and event first: a JSON line reads left to right."""
    head = {key: event.pop(key) for key in _LEADING if key in event}
    head.update(event)
    return head


def _drop_message(_logger: Any, _name: str, event: EventDict) -> EventDict:
    # logging.Formatter leaves the rendered text on the record as `message`; ExtraAdder
    # would copy it next to `event`, which already holds it.
    event.pop("message", None)
    return event


_LEADING: Final = ("timestamp", "level", "logger", "event")


def _shared_processors() -> list[Processor]:
    """Steps applied to both structlog and stdlib records before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _wants_console(fmt: str, stream: TextIO) -> bool:
    if fmt == "console":
        return True
    if fmt == "json":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def setup_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging through one handler on `stream` (default stderr).

    `level` is one of debug/info/warning/error; `fmt` is "auto" (console on a terminal,
    JSON lines otherwise), "json" or "console". Calling it again replaces the previous
    handler, so handlers never pile up.
    """
    global _handler
    level = level.lower()
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)} (got {level!r})")
    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"log format must be auto, json or console (got {fmt!r})")
    out = stream if stream is not None else sys.stderr

    renderer: Processor
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if _wants_console(fmt, out):
        # ConsoleRenderer formats exc_info itself (a readable traceback).
        isatty = getattr(out, "isatty", None)
        renderer = structlog.dev.ConsoleRenderer(
            colors=bool(isatty is not None and isatty()),
        )
    else:
        # One line per record: the traceback becomes the "exception" string field.
        final.append(structlog.processors.format_exc_info)
        final.append(_leading_keys)
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    final.append(renderer)

    formatter = _RedactingFormatter(
        # ExtraAdder: stdlib callers' `extra={...}` become key=value pairs.
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder(), _drop_message],
        processors=final,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    with _lock:
        if _handler is not None:
            root.removeHandler(_handler)
        _handler = handler
        root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)

    # The structlog side only prepares the event dict and hands it to stdlib logging; the
    # rendering lives in the handler's formatter. This chain never changes between calls, so
    # caching loggers on first use is safe even when setup_logging() runs again.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named `name` (use the module's ``__name__``)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial_values)
    return logger
