"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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
