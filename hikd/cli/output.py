"""What the commands print: tables, sizes, times and a progress line."""

from __future__ import annotations

import argparse
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO, TypeAlias

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What each command module's ``add_parser`` is given (``hikd.cli.main``)."""


def config_arg(parser: argparse.ArgumentParser) -> None:
    """The ``--config`` option every command that reads the configuration has."""
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        help="configuration file (TOML); default: $HIKD_CONFIG or /etc/hikd/hikd.toml",
    )


def size(n: int) -> str:
    """``412.0 MB``: a byte count the way a person reads it."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def wall(dt: datetime) -> str:
    """A time as a clock shows it, without its offset."""
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Rows as left-aligned columns; the first row is the heading."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


class ProgressLine:
    """``files 3/10, 41.2 MB`` on one terminal line, redrawn at most 10 times a second."""

    def __init__(self, total: int, stream: TextIO, live: bool) -> None:
        self.total = total
        self.stream = stream
        self.live = live
        self.done = 0
        self.failed = 0
        self.finished_bytes = 0
        self._current: dict[str, int] = {}
        self._lock = threading.Lock()
        self._drawn = 0.0

    def update(self, key: str, size: int) -> None:
        with self._lock:
            self._current[key] = size
        self._draw()

    def finish(self, key: str, size: int, ok: bool) -> None:
        with self._lock:
            self._current.pop(key, None)
            if ok:
                self.done += 1
                self.finished_bytes += size
            else:
                self.failed += 1
        self._draw(force=True)

    def text(self) -> str:
        with self._lock:
            got = self.finished_bytes + sum(self._current.values())
            failed = f", {self.failed} failed" if self.failed else ""
            return f"files {self.done}/{self.total}{failed}, {size(got)}"

    def _draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        self.stream.write("\r\x1b[K" + self.text())
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
