"""The vendor library's own output, through hikd's log pipeline.

The library writes to file descriptor 2 from C (a line at every ``NET_DVR_Init``, README
"Vendor-library notes"), which would put a bare text line into a JSON log.
`route_native_stderr` makes fd 2 a pipe read by one thread that logs each line as an event
of the ``hikd.vendor`` logger, and gives Python's own writers (the log handler,
tracebacks, faulthandler after a crash in C) a copy of the original stderr, so they stay
visible even when the process dies before the reader has caught up.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
from typing import TextIO

import structlog

log = structlog.get_logger("hikd.vendor")

MAX_LINE = 4096
"""Longer lines are cut: the library's output is meant for a terminal, not a payload."""

_lock = threading.Lock()
_original: TextIO | None = None


def route_native_stderr() -> TextIO:
    """Route what C code writes to fd 2 into the log; return Python's new stderr. Idempotent."""
    global _original
    with _lock:
        if _original is not None:
            return _original
        old = sys.stderr
        old.flush()
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        encoding = getattr(old, "encoding", None) or "utf-8"
        stream = open(saved, "w", buffering=1, encoding=encoding, errors="backslashreplace")  # noqa: SIM115 - lives as long as the process
        sys.stderr = stream
        # A log handler made before this call writes to the old stream, now the pipe: it
        # would read its own lines back for ever.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(stream)
        # A crash in the vendor's C code: Python's traceback of every thread, on the real
        # stderr (the reader thread dies with the process).
        faulthandler.enable(file=stream, all_threads=True)
        threading.Thread(target=_read, args=(read_fd,), name="vendor-stderr", daemon=True).start()
        _original = stream
        return stream


def _read(fd: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > MAX_LINE:
            lines.append(pending)
            pending = b""
        for line in lines:
            text = line[:MAX_LINE].decode("utf-8", "replace").strip()
            if text:
                log.info("vendor library output", output=text)
