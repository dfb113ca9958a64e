"""Writing files so that a reader never sees half of one; directories hikd writes to."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hikd.errors import UserError


def write_atomically(path: Path, data: bytes, part: Path | None = None) -> None:
    """Write ``data`` to ``part`` (default ``<path>.part``), fsync, then rename onto ``path``.
    On any failure the partial file is removed and the error raised."""
    part = part or path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise


def make_dir(path: Path, key: str) -> Path:
    """Create the directory `path` (the config key `key` names it) and its parents; a
    `UserError` with one line saying what to do when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{key}: {_cannot(path, e)}") from None
    return path


def directory_problem(path: Path, key: str) -> str | None:
    """Why hikd could not create or write the directory `path`, found without creating it
    (``hikd check-config``); None when it could. As the user running the check."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = (
            "is not a directory" if existing == path else f"cannot be made: {existing} is a file"
        )
        return f"{key}: {path} {where}"
    try:
        # The one sure answer (permissions, read-only or pseudo file systems such as /proc):
        # make a directory there, and remove it at once.
        os.rmdir(tempfile.mkdtemp(prefix=".hikd-check-", dir=existing))
    except OSError as e:
        return f"{key}: {_cannot(path, e)}"
    return None


def _cannot(path: Path, error: OSError) -> str:
    return (
        f"cannot create or write {path} ({error.strerror or error}); create it and let the "
        "user hikd runs as write to it, or choose another directory"
    )
