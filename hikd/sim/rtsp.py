"""The device's RTSP server for playback downloads (NET_DVR_GetFileByTime_V40).

What the library does (sdk-over-isapi.md part 2 b): DESCRIBE with the time range in the
query (Digest auth, RFC 2069, if asked), SETUP with the SDP's a=control appended to the
base URL, PLAY, then a custom `HEARTBEAT` request every 5 s. The data is RTP over
interleaved channel 0 carrying H.264 (single NAL and FU-A, marker bit on each frame's last
packet): the real sample video of `video.py`, timestamps from the device's clock, or
noise slices with `content = "noise"`. The library reports progress 100 only when a
reply carries `Connection: close`, so once the stream is fully sent the next HEARTBEAT
reply says so; closing the socket, an RTCP BYE or a cut stream leave its progress at 0
forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import secrets
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from hikd.sim import digest, video
from hikd.sim.digest import digest_user
from hikd.sim.parts import DevicePart
from hikd.sim.recordings import parse_compact

FPS = 25
MAX_PAYLOAD = 1400
# A small valid baseline SPS/PPS pair; slices are random non-zero bytes (no start codes).
SPS = bytes.fromhex("6742c01edb0280bfe5c04400000300040000030032c00e1d18c9")
PPS = bytes.fromhex("68ce0f2c80")
# The 40-byte IMKH header Hikvision puts in the SDP: system_format 4 (RTP), video H.264.
MEDIA_HEADER = "494D4B48010200000400000100000000000000000000000000000000000000000000000000000000"


@dataclass
class RtspKnobs:
    """Per-device download behaviour a test can change at any time."""

    cut_after_bytes: int | None = None
    cuts_left: int | None = None
    """How many streams to cut (None: every one); counts down."""
    """Drop the connection after this many stream bytes (a cut download)."""
    bytes_per_second: int | None = None
    """Pace the stream (a slow device); None sends as fast as the socket takes it."""
    end_signal: bool = True
    """Answer the HEARTBEAT after the last byte with `Connection: close` (end of stream)."""
    max_stream_bytes: int = 64 * 1024 * 1024
    short_streams: int = 0
    """Streams (counting down) that leave out their first second: the file the vendor library
    wrote held no more, under load, in 3 of 150 downloads (README "Vendor-library notes");
    the library cannot be made to do it at will, so the device does it here."""


@dataclass
class RtspRequest:
    method: str
    url: str
    headers: dict[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class RtspStats:
    requests: list[tuple[str, str]] = field(default_factory=list)
    streams_started: int = 0
    streams_completed: int = 0
    streams_cut: int = 0
    bytes_sent: int = 0
    frames_sent: int = 0


def h264_frames(total: int, frame_size: int, seed: str) -> Iterator[tuple[Sequence[bytes], int]]:
    """(NAL units, RTP timestamp) per frame until about `total` bytes: an IDR with SPS/PPS
    every second, P slices between. Slice bytes are never 0, so no start code appears."""
    rng = random.Random(seed)
    sent = 0
    n = 0
    while sent < total:
        size = max(8, min(frame_size, total - sent))
        body = rng.randbytes(size).replace(b"\x00", b"\x01")
        # NAL header 0x65: IDR slice (with SPS/PPS once a second), 0x41: non-IDR slice.
        nals = [SPS, PPS, b"\x65" + body] if n % FPS == 0 else [b"\x41" + body]
        sent += sum(len(x) for x in nals)
        yield nals, (n * 90000 // FPS) & 0xFFFFFFFF
        n += 1


def rtp_packets(nals: Sequence[bytes], timestamp: int, seq: int, ssrc: int) -> list[bytes]:
    """RTP packets (RFC 6184) of one frame, each framed for interleaved channel 0."""
    payloads: list[bytes] = []
    for nal in nals:
        if len(nal) <= MAX_PAYLOAD:
            payloads.append(nal)
            continue
        header = nal[0]
        indicator = (header & 0xE0) | 28  # FU-A
        data = nal[1:]
        for offset in range(0, len(data), MAX_PAYLOAD):
            chunk = data[offset : offset + MAX_PAYLOAD]
            start = 0x80 if offset == 0 else 0
            end = 0x40 if offset + MAX_PAYLOAD >= len(data) else 0
            payloads.append(bytes([indicator, start | end | (header & 0x1F)]) + chunk)
    out = []
    for i, payload in enumerate(payloads):
        marker = 0x80 if i == len(payloads) - 1 else 0
        rtp = struct.pack(
            ">BBHII", 0x80, marker | 96, (seq + i) & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
        )
        packet = rtp + payload
        out.append(b"$\x00" + struct.pack(">H", len(packet)) + packet)
    return out


class RtspServer:
    """One device's RTSP listener and its sessions."""

    def __init__(self, device: DevicePart) -> None:
        self.device = device
        self.knobs = RtspKnobs()
        self.stats = RtspStats()
        self.server: asyncio.Server | None = None
        self.port: int | None = None
        """The bound port, once listening."""
        self.realm = f"Login to {device.config.serial_number}"
        self._writers: set[asyncio.StreamWriter] = set()
        self._starting = asyncio.Lock()
        self._stopped = False

    async def ensure_started(self) -> int:
        """Listen (once) and return the port. Devices with rtsp_port 0 open it on first
        use, so that 256 idle devices hold 256 sockets, not 512."""
        async with self._starting:
            if self.port is None:
                if self._stopped:
                    raise ConnectionError("the device is stopped")
                cfg = self.device.config
                self.server = await asyncio.start_server(
                    self._serve, cfg.host, cfg.rtsp_port, reuse_address=True, backlog=256
                )
                self.port = self.server.sockets[0].getsockname()[1]
            return self.port

    def stop(self) -> None:
        self._stopped = True
        if self.server is not None:
            self.server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers.add(writer)
        session = _Session(self, writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if not await session.answer(request):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            session.cancel()
            self._writers.discard(writer)
            writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> RtspRequest | None:
    """The next RTSP request; interleaved data from the client (RTCP) is skipped."""
    while True:
        first = await reader.read(1)
        if not first:
            return None
        if first == b"$":
            header = await reader.readexactly(3)
            await reader.readexactly(struct.unpack(">H", header[1:])[0])
            continue
        head = first + await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("RTSP/"):
            return None
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length:
            await reader.readexactly(length)
        return RtspRequest(parts[0], parts[1], headers)


class _Session:
    """One RTSP connection: its session id, its stream task and whether it has ended."""

    def __init__(self, server: RtspServer, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        self.session_id = str(secrets.randbelow(90_000_000) + 10_000_000)
        self.nonce = secrets.token_hex(16)
        self.url = ""
        self.task: asyncio.Task[None] | None = None
        self.finished = False

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _reply(
        self, request: RtspRequest, status: str, extra: list[str], body: bytes = b""
    ) -> None:
        lines = [f"RTSP/1.0 {status}", f"CSeq: {request.header('cseq') or '0'}"]
        lines += extra
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async def answer(self, request: RtspRequest) -> bool:
        """Answer one request; False ends the connection."""
        server = self.server
        server.stats.requests.append((request.method, request.url))
        cfg = server.device.config
        if request.method in ("DESCRIBE", "SETUP", "PLAY") and cfg.rtsp_auth:
            password = server.device.accounts.users.get(cfg.username, "")
            users = {cfg.username: password}
            auth = request.header("authorization")
            if digest_user(auth, request.method, users, server.realm, self.nonce) is None:
                asked = digest.challenge(server.realm, self.nonce, qop=False)
                self._reply(request, "401 Unauthorized", [f"WWW-Authenticate: {asked}"])
                return True
        session = f"Session: {self.session_id};timeout=60"
        if request.method == "OPTIONS" and not self.finished:
            public = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER"
            self._reply(request, "200 OK", [public])
        elif request.method == "DESCRIBE":
            self.url = request.url
            sdp = self._sdp(request.url).encode()
            self._reply(
                request,
                "200 OK",
                ["Content-Type: application/sdp", f"Content-Base: {request.url}"],
                sdp,
            )
        elif request.method == "SETUP":
            transport = request.header("transport") or "RTP/AVP/TCP;unicast;interleaved=0-1"
            self._reply(request, "200 OK", [session, f"Transport: {transport};ssrc=1A2B3C4D"])
        elif request.method == "PLAY":
            self._reply(request, "200 OK", [session, "Range: npt=0.000-"])
            if self.task is None:
                self.task = asyncio.get_running_loop().create_task(self._stream())
        elif request.method == "TEARDOWN":
            self._reply(request, "200 OK", [session])
            return False
        elif self.finished and server.knobs.end_signal:
            # The only end-of-stream signal the library understands (part 2 b).
            self._reply(request, "200 OK", [session, "Connection: close"])
        else:  # HEARTBEAT, GET_PARAMETER, SET_PARAMETER, OPTIONS while streaming
            self._reply(request, "200 OK", [session])
        return True

    def _sdp(self, url: str) -> str:
        return (
            "v=0\r\n"
            f"o=- {self.session_id} 1 IN IP4 {self.server.device.host}\r\n"
            "s=Media Presentation\r\n"
            "e=NONE\r\n"
            "b=AS:5050\r\n"
            "t=0 0\r\n"
            f"a=control:{url}\r\n"
            "m=video 0 RTP/AVP 96\r\n"
            "c=IN IP4 0.0.0.0\r\n"
            "b=AS:5000\r\n"
            "a=recvonly\r\n"
            "a=x-dimensions:320,240\r\n"
            "a=control:trackID=1\r\n"
            "a=rtpmap:96 H264/90000\r\n"
            "a=fmtp:96 profile-level-id=42C01E; packetization-mode=1\r\n"
            f"a=Media_header:MEDIAINFO={MEDIA_HEADER};\r\n"
            "a=appversion:1.0\r\n"
        )

    def _span(self) -> tuple[datetime, datetime]:
        """The time range the URL asks for (60 s when it names none)."""
        query = parse_qs(urlsplit(self.url).query)
        try:
            return parse_compact(query["starttime"][0]), parse_compact(query["endtime"][0])
        except (KeyError, ValueError):
            now = datetime(2024, 1, 1)
            return now, now + timedelta(seconds=59)

    def _frames(self) -> Iterator[tuple[Sequence[bytes], int]]:
        """The frames to send for the requested range: the real sample video, or noise of
        duration x bytes_per_second (at most ~20,000 frames: big streams stay cheap)."""
        start, end = self._span()
        plan = self.server.device.config.recordings
        if plan.content == "video":
            return video.frames(start, end)
        seconds = max(1, int((end - start).total_seconds()) + 1)
        total = min(seconds * plan.bytes_per_second, self.server.knobs.max_stream_bytes)
        frame_size = max(200, plan.bytes_per_second // FPS, total // 20_000)
        return h264_frames(total, frame_size, f"{self.server.device.name}{self.url}")

    async def _stream(self) -> None:
        server = self.server
        knobs = server.knobs
        server.stats.streams_started += 1
        sent = 0
        seq = 0
        started = asyncio.get_running_loop().time()
        frames = self._frames()
        if knobs.short_streams > 0:
            knobs.short_streams -= 1
            frames = itertools.islice(frames, FPS, None)
        for nals, timestamp in frames:
            packets = rtp_packets(nals, timestamp, seq, 0x1A2B3C4D)
            seq += len(packets)
            data = b"".join(packets)
            limit = knobs.cut_after_bytes if knobs.cuts_left != 0 else None
            if limit is not None and sent + len(data) > limit:
                if knobs.cuts_left is not None:
                    knobs.cuts_left -= 1
                self.writer.write(data[: max(0, limit - sent)])
                server.stats.bytes_sent += max(0, limit - sent)
                server.stats.streams_cut += 1
                self.writer.transport.abort()
                return
            self.writer.write(data)
            sent += len(data)
            server.stats.bytes_sent += len(data)
            server.stats.frames_sent += 1
            await self.writer.drain()
            if knobs.bytes_per_second:
                due = started + sent / knobs.bytes_per_second
                delay = due - asyncio.get_running_loop().time()
                if delay > 0:
                    await asyncio.sleep(delay)
        self.finished = True
        server.stats.streams_completed += 1
