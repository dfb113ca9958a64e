"""A hostile network sender for an alarm host's listen port: what crashed the vendor library.

Each request is raw bytes sent from a chosen loopback source address (all of 127/8 is the
loopback interface), so one machine plays allowed devices and strangers. The cases are the
ones measured against ``NET_DVR_StartListen_V30`` (README "Vendor-library notes"): deep
nesting, malformed HTTP, slow senders and oversized bodies.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass

CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None
    """The HTTP status answered; None when the host answered nothing."""
    reset: bool = False
    """The host reset the connection."""


def post(body: bytes, content_type: str = "application/xml", path: str = "/") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: alarm-host\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def nested_xml(depth: int) -> bytes:
    """``<E>`` and `depth` nested ``<a>`` elements: the vendor parser recurses per level."""
    return b"<E>" + b"<a>" * depth + b"</a>" * depth + b"</E>"


def nested_json(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def multipart(parts: list[tuple[str, bytes]], boundary: str = "MIME_boundary") -> bytes:
    """A multipart/form-data POST of (content type, data) parts."""
    body = b""
    for i, (content_type, data) in enumerate(parts):
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="part{i}"\r\n'
            f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        body += data + CRLF
    body += f"--{boundary}--\r\n".encode()
    return post(body, f"multipart/form-data; boundary={boundary}")


def broken_multipart(boundary: bytes = b"MIME_boundary", rest: bytes = b"x" * 23) -> bytes:
    """A multipart POST whose part never ends its headers: one of these crashes the
    vendor's listen server (SIGSEGV), whatever the boundary, empty included."""
    body = b"--" + boundary + b"\r\n" + rest
    return (
        b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary="
        + boundary
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def malformed_requests(seed: int, count: int) -> list[bytes]:
    """Requests that are not well-formed: mutations of a valid alarm POST (bytes flipped,
    cut, duplicated, header lines broken), broken multipart bodies with random boundaries,
    and plain garbage."""
    rng = random.Random(seed)
    valid = post(b"<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>")
    out: list[bytes] = []
    for _ in range(count):
        data = bytearray(valid)
        how = rng.randrange(6)
        if how == 5:
            boundary = rng.randbytes(rng.randint(0, 80)).replace(b"\r", b"").replace(b"\n", b"")
            out.append(broken_multipart(boundary, rng.randbytes(rng.randint(0, 40))))
            continue
        if how == 0:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif how == 1:
            data = data[: rng.randrange(len(data))]
        elif how == 2:
            cut = rng.randrange(len(data))
            data[cut:cut] = data[rng.randrange(len(data)) :][: rng.randint(1, 200)]
        elif how == 3:
            data = data.replace(b": ", b":" + bytes([rng.randrange(256)]) * rng.randint(1, 300))
        else:
            data = bytearray(rng.randbytes(rng.randint(1, 2000)))
        out.append(bytes(data))
    return out


def send(
    host: str,
    port: int,
    data: bytes,
    source: str = "127.0.0.1",
    timeout: float = 10.0,
    *,
    then_wait: bool = True,
) -> Answer:
    """Connect from `source`, send `data`, and read the answer (not waiting for one when
    `then_wait` is False: the connection is closed after the write)."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect((host, port))
        try:
            sock.sendall(data)
            if not then_wait:
                return Answer(None)
            sock.shutdown(socket.SHUT_WR)
            return _answer(sock)
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                raise
            # Reset by the host (ECONNRESET, EPIPE; ENOTCONN from shutdown after a reset).
            return Answer(None, reset=True)


def connect(host: str, port: int, source: str) -> socket.socket:
    """A connection that sends nothing (the caller closes it)."""
    sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
    sock.sendall(b"POST / HTTP/1.1\r\n")
    return sock


def send_slowly(
    host: str, port: int, data: bytes, source: str, pause_s: float, timeout: float = 30.0
) -> Answer:
    """Send `data` one byte per `pause_s` until the host answers or closes."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect((host, port))
        deadline = time.monotonic() + timeout
        try:
            for byte in data:
                sock.sendall(bytes([byte]))
                sock.settimeout(pause_s)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                return _answer(sock, chunk)
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            return _answer(sock)
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                raise
            return Answer(None, reset=True)


def _answer(sock: socket.socket, received: bytes = b"") -> Answer:
    try:
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    except ConnectionError:
        return Answer(_status(received), reset=True)
    return Answer(_status(received))


def _status(data: bytes) -> int | None:
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return int(parts[1])
    return None
