"""The control socket: ``hikd status`` asks the running daemon what it is doing.

A Unix socket in the runtime directory (``<runtime_dir>/hikd.sock``; systemd's
``RuntimeDirectory=hikd``), mode 0660: the service's user and group may ask, nobody else.
One request per connection, one JSON line each way (``{"get": "status"}`` -> the status
document); no framework. A client that says nothing within `CLIENT_TIMEOUT_S` is dropped,
so it cannot hold up the next.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from hikd.logs import get_logger

log = get_logger(__name__)

CLIENT_TIMEOUT_S = 2.0
MAX_REQUEST_BYTES = 4096

Answer = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    def __init__(self, path: Path, answer: Answer) -> None:
        self.path = path
        self._answer = answer
        self._sock: socket.socket | None = None
        self._inode: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> bool:
        """Listen; False (and one log line) when it cannot: hikd runs on without it."""
        try:
            sock = self._bind()
        except OSError as e:
            log.warning(
                "control socket: cannot listen; `hikd status` will not reach this daemon",
                path=str(self.path),
                error=e.strerror or str(e),
            )
            return False
        if sock is None:
            return False
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="hikd-control", daemon=True)
        self._thread.start()
        return True

    def _bind(self) -> socket.socket | None:
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                log.warning(
                    "control socket: another hikd answers on it; `hikd status` reaches that "
                    "one (give each hikd its own [daemon] runtime_dir)",
                    path=str(self.path),
                )
                return None
            self.path.unlink()  # left behind by a hikd that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            # Before listen(): until then nobody can connect, so the mode is set in time.
            os.chmod(self.path, 0o660)
            self._inode = os.stat(self.path).st_ino
            sock.listen(8)
            sock.settimeout(0.5)  # to notice stop()
        except BaseException:
            sock.close()
            raise
        return sock

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError as e:
                if self._stopping.is_set():
                    return
                # Out of file descriptors (EMFILE) or memory: the client waits in the
                # backlog; giving up here would leave `hikd status` unanswered until restart.
                log.warning("control socket: cannot accept a connection", error=str(e))
                self._stopping.wait(1.0)
                continue
            with conn:
                try:
                    self._handle(conn)
                except Exception:
                    log.exception("control socket: a request failed")

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_TIMEOUT_S)
        data = b""
        try:
            while b"\n" not in data and len(data) < MAX_REQUEST_BYTES:
                chunk = conn.recv(MAX_REQUEST_BYTES)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return
        try:
            request = json.loads(data.split(b"\n", 1)[0] or b"{}")
            if not isinstance(request, dict):
                raise ValueError("not an object")
            answer = self._answer(request)
        except ValueError as e:
            answer = {"error": f"bad request: {e}"}
        with contextlib.suppress(OSError):  # the client went away: its loss
            conn.sendall(json.dumps(answer, default=_jsonable).encode() + b"\n")

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            # Only our own: a second hikd may have taken the name since.
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._inode:
                    self.path.unlink()


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
