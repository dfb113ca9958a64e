"""Pictures that come with an alarm: one folder per device and day, one file per
picture, named after the event it belongs to."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from hikd.listeners.decode.context import DecodeContext
from hikd.sdk.raw import RawPicture

_UNSAFE = re.compile(r"[^0-9A-Za-z._-]+")


def _safe_name(name: str) -> str:
    safe = _UNSAFE.sub("_", name).strip("._") or "device"
    return safe[:100]


def picture_bytes(data: bytes) -> bytes:
    """The picture without the CRLF the library leaves after each multipart part
    (dwPicLen = JPEG length + 2, like dwAlarmDataLen for the body)."""
    if data.endswith(b"\xff\xd9\r\n"):
        return data[:-2]
    return data


def save_pictures(
    pictures: list[RawPicture], ctx: DecodeContext, event_id: str, when: datetime
) -> tuple[list[str], list[dict[str, Any]]]:
    """Write the pictures as ``<picture_dir>/<device>/<yyyy-mm-dd>/<event id>-<n>.jpg``
    (whole files only: written aside, then renamed). A failed write is recorded in the
    picture's entry; it never loses the alarm."""
    files: list[str] = []
    info: list[dict[str, Any]] = []
    for n, pic in enumerate(pictures, start=1):
        data = picture_bytes(pic.data)
        entry: dict[str, Any] = {
            "filename": pic.filename,
            "pic_type": pic.pic_type,
            "size": len(data),
        }
        if ctx.picture_dir is not None:
            folder = Path(ctx.picture_dir) / _safe_name(ctx.device.name) / f"{when:%Y-%m-%d}"
            path = folder / f"{event_id}-{n}.jpg"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".jpg.part")
                partial.write_bytes(data)
                os.replace(partial, path)
            except OSError as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
            else:
                entry["path"] = str(path)
                files.append(str(path))
        info.append(entry)
    return files, info
