"""Errors a user can cause: each ends in one clear line, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake or condition the user can fix. `str()` is the one line to print."""

    exit_code = 1


class ConfigError(UserError):
    """The configuration is invalid. Each problem is one line: `key.path: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))
