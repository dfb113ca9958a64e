"""The device as an HTTP client: POSTing alarms to an alarm host ("HTTP listening" mode).

One connection per POST, as devices do. The vendor library's listen server answers
`200 OK` and closes with a RST (SO_LINGER 0), so a reset after the request was written is
normal and may even hide the 200 (sdk-over-isapi.md part 1 §4).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

PUSH_TIMEOUT_S = 10.0
_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


@dataclass(frozen=True, slots=True)
class PushResult:
    status: int | None
    """The HTTP status the host answered, None if none was read."""
    reset: bool = False
    """The host reset the connection after the whole request was written."""
    error: str = ""
    """Why the request could not be written (refused, timeout, ...); empty when it was."""

    @property
    def delivered(self) -> bool:
        """The whole request reached the host and it did not refuse it."""
        if self.error:
            return False
        return self.status is None or 200 <= self.status < 300


async def post(
    host: str,
    port: int,
    path: str,
    make_body: Callable[[], tuple[str, bytes]],
    timeout: float = PUSH_TIMEOUT_S,
    source: str = "",
) -> PushResult:
    """POST to http://host:port/path on a new connection, in one write, from the address
    `source` (empty: the system picks it).

    `make_body` gives (content type, body); it is called once connected, so that a send
    time stamped in the body is the time of the write.
    """
    local = (source, 0) if source else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=local), timeout
        )
    except (OSError, TimeoutError) as exc:
        return PushResult(None, error=f"cannot connect to {host}:{port}: {exc or 'timeout'}")
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    content_type, body = make_body()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        writer.write(head + body)
        try:
            await asyncio.wait_for(writer.drain(), timeout)
        except (ConnectionError, OSError) as exc:
            return PushResult(
                None, error=f"{host}:{port} closed before the request was sent: {exc}"
            )
        except TimeoutError:
            return PushResult(None, error=f"{host}:{port} did not take the request in {timeout} s")
        received = b""
        try:
            async with asyncio.timeout(timeout):
                while len(received) < 4096:
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    received += chunk
                    if b"\r\n" in received:
                        break
        except ConnectionResetError:
            match = _STATUS.match(received)
            return PushResult(int(match[1]) if match else None, reset=True)
        except TimeoutError:
            pass
        match = _STATUS.match(received)
        return PushResult(int(match[1]) if match else None)
    finally:
        writer.transport.abort()
