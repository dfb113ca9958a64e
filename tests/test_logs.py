"""hikd.logs: one pipeline for structlog and stdlib loggers, and secrets never in a line."""

from __future__ import annotations

import io
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest
import structlog

from hikd.logs import get_logger, redact, register_secret, setup_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging() changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)
        structlog.reset_defaults()


def new_secret() -> str:
    # Unique per test: the registry of secrets is process-wide and only grows.
    return "pw-" + secrets.token_hex(8)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class FakeTerminal(io.StringIO):
    # A StringIO that says it is a terminal: the real case (a TTY) cannot be captured.
    def isatty(self) -> bool:
        return True


def test_json_lines_parse_with_timestamp_level_logger_event_and_keys() -> None:
    out = io.StringIO()
    setup_logging("info", "json", out)
    get_logger("hikd.test").info("device online", device="nvr", channel=3)

    (line,) = json_lines(out)
    assert line["event"] == "device online"
    assert line["level"] == "info"
    assert line["logger"] == "hikd.test"
    assert line["device"] == "nvr" and line["channel"] == 3
    stamp = datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00"))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert list(line)[:4] == ["timestamp", "level", "logger", "event"]


def test_stdlib_loggers_go_through_the_same_pipeline() -> None:
    out = io.StringIO()
    setup_logging("info", "json", out)
    logging.getLogger("paho.mqtt.client").warning("connection lost: %s", "timeout")
    logging.getLogger("apscheduler").info("job added", extra={"job": "backup"})

    first, second = json_lines(out)
    assert first == {
        "timestamp": first["timestamp"],
        "level": "warning",
        "logger": "paho.mqtt.client",
        "event": "connection lost: timeout",
    }
    assert second["logger"] == "apscheduler" and second["job"] == "backup"


def test_level_filters_both_kinds_of_logger() -> None:
    out = io.StringIO()
    setup_logging("warning", "json", out)
    get_logger("hikd.test").info("hidden")
    logging.getLogger("other").info("hidden too")
    get_logger("hikd.test").warning("shown")
    assert [line["event"] for line in json_lines(out)] == ["shown"]


def test_calling_setup_twice_does_not_duplicate_lines() -> None:
    out = io.StringIO()
    setup_logging("info", "json", out)
    setup_logging("debug", "json", out)
    get_logger("hikd.test").debug("once")
    logging.getLogger("lib").info("once too")
    assert [line["event"] for line in json_lines(out)] == ["once", "once too"]


def test_auto_is_json_when_not_a_terminal_and_console_on_a_terminal() -> None:
    pipe = io.StringIO()
    setup_logging("info", "auto", pipe)
    get_logger("hikd.test").info("to a pipe")
    assert json_lines(pipe)[0]["event"] == "to a pipe"

    tty = FakeTerminal()
    setup_logging("info", "auto", tty)
    get_logger("hikd.test").info("to a terminal", device="nvr")
    text = tty.getvalue()
    assert "to a terminal" in text and "nvr" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_exception_with_traceback_is_one_json_line() -> None:
    out = io.StringIO()
    setup_logging("info", "json", out)
    try:
        raise RuntimeError("disk gone")
    except RuntimeError:
        get_logger("hikd.test").exception("download failed")
    (line,) = json_lines(out)
    assert "Traceback" in str(line["exception"]) and "disk gone" in str(line["exception"])


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_registered_secret_never_appears(fmt: str) -> None:
    password = new_secret()
    register_secret(password)
    out = io.StringIO()
    setup_logging("debug", fmt, out)
    log = get_logger("hikd.test")

    log.info(f"login as admin:{password}")  # in the event text
    log.info("login", password=password, nested={"pw": [password]})  # in kwargs
    log.info("positional %s", password)

    class Holder:
        def __repr__(self) -> str:
            return f"Holder({password})"

    log.info("object", obj=Holder())
    try:
        raise ConnectionError(f"auth failed for password {password}")
    except ConnectionError:
        log.exception("login failed")  # in an exception's message, with traceback
    logging.getLogger("paho").error("stdlib %s and %r", password, {"p": password})
    logging.getLogger("paho").error(f"stdlib f-string {password}")

    text = out.getvalue()
    assert password not in text
    assert text.count("***") >= 8
    assert "Traceback" in text or '"exception"' in text


def test_secret_with_characters_that_json_escapes_is_masked() -> None:
    password = 'q"uo\\te-' + secrets.token_hex(4) + "-é"
    register_secret(password)
    out = io.StringIO()
    setup_logging("info", "json", out)
    get_logger("hikd.test").info("x", password=password)
    logging.getLogger("lib").info("repr %r", password)
    text = out.getvalue()
    for spelling in (password, json.dumps(password)[1:-1], repr(password)[1:-1]):
        assert spelling not in text
    assert [line["password"] for line in json_lines(out)[:1]] == ["***"]


def test_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    short = new_secret()
    long = short + "-and-more"
    register_secret(short)
    register_secret(long)
    assert redact(f"a {long} b {short} c") == "a *** b *** c"


def test_short_values_are_not_masked() -> None:
    register_secret("abc")
    assert redact("abc abcd") == "abc abcd"


def test_register_from_many_threads_while_logging() -> None:
    out = io.StringIO()
    setup_logging("info", "json", out)
    log = get_logger("hikd.test")
    passwords = [new_secret() for _ in range(40)]
    errors: list[BaseException] = []

    def work(chunk: list[str]) -> None:
        try:
            for password in chunk:
                register_secret(password)
                log.info("registered", value=password)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(passwords[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    text = out.getvalue()
    assert len(text.splitlines()) == 40
    assert not any(password in text for password in passwords)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="log level"):
        setup_logging("verbose", "json", io.StringIO())
    with pytest.raises(ValueError, match="log format"):
        setup_logging("info", "xml", io.StringIO())
