"""The plain RTSP client of bench/bench_download.py: DESCRIBE / SETUP / PLAY per recording,
the RTP payload written as H.264 (RFC 6184), the end asked for every 50 ms.

    python bench/plain_rtsp.py PASSWORD PORT OUT_DIR URL...
"""

from __future__ import annotations

import hashlib
import re
import select
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any


def plain_fetch(host: str, port: int, url: str, out: Path, password: str) -> None:
    """DESCRIBE / SETUP / PLAY, write the H.264 of the RTP payload (RFC 6184) to `out`,
    ask for the end every 50 ms; done when a reply says ``Connection: close``."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    state: dict[str, Any] = {"cseq": 0, "auth": None, "buf": b""}

    def send(method: str, headers: dict[str, str]) -> None:
        state["cseq"] += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {state['cseq']}"]
        if state["auth"]:
            realm, nonce = state["auth"]
            response = _md5(
                f"{_md5(f'admin:{realm}:{password}')}:{nonce}:{_md5(f'{method}:{url}')}"
            )
            lines.append(
                f'Authorization: Digest username="admin", realm="{realm}", nonce="{nonce}", '
                f'uri="{url}", response="{response}"'
            )
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def reply() -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in state["buf"]:
            state["buf"] += sock.recv(65536)
        head, _, state["buf"] = state["buf"].partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        while len(state["buf"]) < length:
            state["buf"] += sock.recv(65536)
        state["buf"] = state["buf"][length:]
        return int(lines[0].split()[1]), headers

    def request(method: str, headers: dict[str, str]) -> dict[str, str]:
        send(method, headers)
        status, got = reply()
        if status == 401:
            challenge = got.get("www-authenticate", "")
            realm = re.search(r'realm="([^"]*)"', challenge)
            nonce = re.search(r'nonce="([^"]*)"', challenge)
            assert realm and nonce
            state["auth"] = (realm[1], nonce[1])
            send(method, headers)
            status, got = reply()
        assert status == 200, (method, status)
        return got

    request("DESCRIBE", {"Accept": "application/sdp"})
    setup = request("SETUP", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
    session = setup["session"].split(";")[0]
    send("PLAY", {"Session": session, "Range": "npt=0.000-"})
    data, pos = state["buf"], 0
    next_ask = time.monotonic() + 0.05
    with out.open("wb") as f:
        while True:
            while len(data) - pos >= 4:
                if data[pos : pos + 1] == b"$":
                    length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
                    if len(data) - pos < 4 + length:
                        break
                    if data[pos + 1] == 0:
                        f.write(_annex_b(data[pos + 4 : pos + 4 + length]))
                    pos += 4 + length
                    continue
                end = data.find(b"\r\n\r\n", pos)
                if end < 0:
                    break
                head = data[pos:end].decode("latin-1").lower()
                pos = end + 4
                if "connection: close" in head:
                    sock.close()
                    return
            data, pos = data[pos:], 0
            now = time.monotonic()
            if now >= next_ask:
                send("HEARTBEAT", {"Session": session})
                next_ask = now + 0.05
            if select.select([sock], [], [], max(0.0, next_ask - now))[0]:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return
                data += chunk


def _annex_b(packet: bytes) -> bytes:
    payload = packet[12 + 4 * (packet[0] & 0x0F) :]
    if payload[0] & 0x1F == 28:  # FU-A
        start = b""
        if payload[1] & 0x80:
            start = b"\x00\x00\x00\x01" + bytes([(payload[0] & 0xE0) | (payload[1] & 0x1F)])
        return start + payload[2:]
    return b"\x00\x00\x00\x01" + payload


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


if __name__ == "__main__":
    password, port, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    for n, url in enumerate(sys.argv[4:]):
        plain_fetch("127.0.0.1", port, url, out / f"{n}.h264", password)
