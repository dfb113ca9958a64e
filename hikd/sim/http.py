"""A small HTTP/1.1 server connection for the simulated devices, on asyncio streams.

Why not http.server or aiohttp: the vendor library needs three things they do not give
(sdk-over-isapi.md part 2 §0 and part 1 §5):

* every reply in ONE write (headers and body in one buffer); otherwise the library's
  delayed ACK costs about 44 ms per request;
* TCP_NODELAY on every accepted socket (Nagle adds 10-40 ms to each alert);
* a connection whose first bytes are not an HTTP request line closed at once: adaptive
  login (byLoginMode=2) probes the private binary protocol first and would otherwise wait
  for its 5 s receive timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("hikd.sim")

XML = 'application/xml; charset="UTF-8"'
JSON = 'application/json; charset="UTF-8"'
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
SERVER = "App-webs/"

REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

_METHOD_START = re.compile(rb"[A-Z]{1,16}(?: |$)")
_REQUEST_LINE = re.compile(r"([A-Z]{1,16}) (\S+) HTTP/(1\.[01])")


class NotHttp(Exception):
    """The peer did not send an HTTP request (e.g. the private-protocol login probe)."""


@dataclass(slots=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    """Header names in lower case; a repeated header keeps its last value."""
    body: bytes
    peer: str
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path or "/"
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def keep_alive(self) -> bool:
        conn = self.header("connection").lower()
        if self.version == "1.0":
            return "keep-alive" in conn
        return "close" not in conn


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = XML
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False

    def encode(self, keep_alive: bool) -> bytes:
        """Status line, headers and body as one buffer, for one write."""
        lines = [
            f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Unknown')}",
            f"Date: {formatdate(usegmt=True)}",
            f"Server: {SERVER}",
            f"Connection: {'keep-alive' if keep_alive and not self.close else 'close'}",
        ]
        if self.content_type is not None:
            lines.append(f"Content-Type: {self.content_type}")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class Connection:
    """One accepted TCP (or TLS) connection: reads requests, writes whole replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._buf = bytearray()
        peer = writer.get_extra_info("peername")
        self.peer: str = peer[0] if isinstance(peer, tuple) else ""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def closing(self) -> bool:
        return self.writer.transport.is_closing()

    def write(self, data: bytes) -> None:
        """One transport write: with an empty send buffer this is one send() call."""
        if not self.writer.transport.is_closing():
            self.writer.write(data)

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (the peer is not reading)."""
        return self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        await self.writer.drain()

    def abort(self) -> None:
        """Close at once, unsent data dropped: what a killed device does."""
        self.writer.transport.abort()

    async def _read_more(self) -> bool:
        try:
            data = await self.reader.read(65536)
        except (ConnectionError, OSError):
            return False
        if not data:
            return False
        self._buf += data
        return True

    async def read_request(self) -> Request | None:
        """The next request, or None when the peer closed. Raises NotHttp / ValueError."""
        while True:
            while self._buf[:2] == b"\r\n":
                del self._buf[:2]
            if self._buf and not _METHOD_START.match(bytes(self._buf[:17])):
                raise NotHttp
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buf) > MAX_HEAD:
                raise ValueError("request head too large")
            if not await self._read_more():
                return None
        head = bytes(self._buf[:end]).decode("latin-1")
        del self._buf[: end + 4]
        line, _, rest = head.partition("\r\n")
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            raise NotHttp
        headers: dict[str, str] = {}
        for raw in rest.split("\r\n"):
            name, sep, value = raw.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise ValueError("chunked request bodies are not supported")
        length = int(headers.get("content-length", "0") or "0")
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        while len(self._buf) < length:
            if not await self._read_more():
                return None
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return Request(match[1], match[2], match[3], headers, body, self.peer)

    async def wait_closed_by_peer(self) -> None:
        """Read and drop whatever the peer sends until it closes (alert streams)."""
        self._buf.clear()
        while await self._read_more():
            self._buf.clear()


Handler = Callable[[Request, Connection], Awaitable[Response | None]]
"""Answers one request. None means the handler took the connection over (it wrote its own
reply, e.g. an alert stream) and the connection is closed when it returns."""


async def serve_connection(conn: Connection, handler: Handler) -> None:
    """Answer requests on `conn` until the peer closes or asks to close."""
    try:
        while True:
            try:
                request = await conn.read_request()
            except NotHttp:
                return
            except ValueError as exc:
                conn.write(Response(400, str(exc).encode(), "text/plain", close=True).encode(False))
                return
            if request is None:
                return
            try:
                response = await handler(request, conn)
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("simulator bug answering %s %s", request.method, request.target)
                response = Response(500, b"simulator error", "text/plain", close=True)
            if response is None:
                return
            keep = request.keep_alive and not response.close
            conn.write(response.encode(keep))
            if not keep:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if not conn.closing:
            conn.writer.close()
