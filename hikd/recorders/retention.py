"""Retention of a job's output folder: by age and by total size.

Age is the file's modification time; recorders set it to the end of the recording (or
clip) when they move a file into place, so "keep 7 days" means seven days of footage,
not seven days since hikd fetched it. Over the size limit the oldest files go first.
Partial downloads (``*.part``) are left alone unless they are older than a day: a
download in progress is not retention's business, a crash's leftover is.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

PART_SUFFIX = ".part"
STALE_PART_S = 86_400.0


@dataclass(frozen=True, slots=True)
class RetentionResult:
    removed_files: int
    removed_bytes: int
    kept_files: int
    kept_bytes: int


def apply_retention(
    root: Path,
    keep_days: float | None = None,
    keep_bytes: int | None = None,
    now: float | None = None,
) -> RetentionResult:
    """Delete files under `root` older than `keep_days` and, oldest first, as many as it
    takes to bring the total to at most `keep_bytes`. Empty folders left behind go too."""
    now = time.time() if now is None else now
    files: list[tuple[float, int, Path]] = []
    removed = removed_bytes = 0
    if not root.is_dir():
        return RetentionResult(0, 0, 0, 0)
    for path in root.rglob("*"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if not path.is_file():
            continue
        if path.name.endswith(PART_SUFFIX):
            if now - st.st_mtime > STALE_PART_S and _unlink(path):
                removed += 1
                removed_bytes += st.st_size
            continue
        files.append((st.st_mtime, st.st_size, path))
    files.sort()
    keep: list[tuple[float, int, Path]] = []
    for mtime, size, path in files:
        if keep_days is not None and now - mtime > keep_days * 86_400 and _unlink(path):
            removed += 1
            removed_bytes += size
        else:
            keep.append((mtime, size, path))
    total = sum(size for _, size, _ in keep)
    if keep_bytes is not None:
        while keep and total > keep_bytes:
            _, size, path = keep.pop(0)
            if _unlink(path):
                removed += 1
                removed_bytes += size
            total -= size
    if removed:
        _remove_empty_dirs(root)
    return RetentionResult(removed, removed_bytes, len(keep), total)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _remove_empty_dirs(root: Path) -> None:
    for directory, _subdirs, _files in os.walk(root, topdown=False):
        if Path(directory) != root:
            with contextlib.suppress(OSError):
                os.rmdir(directory)  # fails, as it should, when not empty
