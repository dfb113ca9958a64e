"""Recording download and search through hikd, each against a reference in the same run.

    .venv/bin/python bench/bench_recordings.py [--mb 48] [--rate-mbps 0] [--rounds 3]

The simulator runs in its own process. Two measures:

1. Download throughput: the same stream (one recording's time span) fetched by hikd
   (`hikd.devices.capabilities.recordings.download`: GetFileByTime_V40 + PLAYSTART + polling) and by
   a tiny raw RTSP client in this file (DESCRIBE/SETUP/PLAY, read until the device says
   the stream has ended). Throughput = bytes of the stream / wall time. Two hikd figures:
   "transfer" stops the clock when the library has written its last byte, "complete" when
   GetDownloadPos says 100. The second includes the library's wait for the end-of-stream
   signal, which it only asks for with its RTSP HEARTBEAT every 5 s (sdk-over-isapi.md
   part 2 b): hikd cannot shorten that, so the raw client asks every 50 ms. Target for the
   transfer: >= 0.8x.
2. Search of 4,500 recordings: hikd's `search_recordings` vs the library's bare
   FindFile_V40 / FindNextFile_V40 loop through cffi. Target: <= 2x.

Numbers only, no asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import re
import select
import socket
import statistics
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-Passw0rd"
SEGMENT_S = 600
SEARCH_COUNT = 4500


# -- the simulator in its own process ---------------------------------------------------------


def _serve(conn: Any, bytes_per_second: int, rate: int | None) -> None:
    from hikd.sim import SimDeviceConfig, Simulator
    from hikd.sim.config import RecordingPlan

    stream = SimDeviceConfig(
        name="stream",
        password=PASSWORD,
        rtsp_auth=True,
        recordings=RecordingPlan(
            per_channel=2,
            segment_s=SEGMENT_S,
            bytes_per_second=bytes_per_second,
            channels=[1],
            still_recording=False,
        ),
    )
    many = SimDeviceConfig(
        name="many",
        password=PASSWORD,
        recordings=RecordingPlan(per_channel=SEARCH_COUNT, segment_s=60, channels=[1]),
    )
    sim = Simulator([stream, many]).start()
    device = sim.devices[0]
    device.rtsp.knobs.max_stream_bytes = 1 << 31
    device.rtsp.knobs.bytes_per_second = rate
    rec = device.recording_list(1)[0]
    conn.send(
        {
            "stream_port": device.port,
            "rtsp_port": device.rtsp_port,
            "many_port": sim.devices[1].port,
            "start": rec.start.isoformat(),
            "end": rec.end.isoformat(),
        }
    )
    conn.recv()  # until the parent says stop
    sim.stop()


# -- the raw RTSP reference -----------------------------------------------------------------------


class RawRtsp:
    """DESCRIBE / SETUP / PLAY over one TCP connection, then read the interleaved stream
    until a reply carries ``Connection: close`` (the device's end of stream)."""

    def __init__(self, host: str, port: int, user: str, password: str) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.user, self.password = user, password
        self.cseq = 0
        self.auth: tuple[str, str] | None = None
        self.buffer = b""

    def _send(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", "User-Agent: bench"]
        if self.auth is not None:
            realm, nonce = self.auth
            ha1 = _md5(f"{self.user}:{realm}:{self.password}")
            ha2 = _md5(f"{method}:{url}")
            response = _md5(f"{ha1}:{nonce}:{ha2}")
            lines.append(
                f'Authorization: Digest username="{self.user}", realm="{realm}", '
                f'nonce="{nonce}", uri="{url}", response="{response}"'
            )
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _reply(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        self.buffer = self.buffer[length:]
        return int(lines[0].split()[1]), headers

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> dict[str, str]:
        self._send(method, url, headers or {})
        status, reply = self._reply()
        if status == 401 and self.auth is None:
            challenge = reply.get("www-authenticate", "")
            realm = re.search(r'realm="([^"]*)"', challenge)
            nonce = re.search(r'nonce="([^"]*)"', challenge)
            assert realm and nonce, challenge
            self.auth = (realm[1], nonce[1])
            self._send(method, url, headers or {})
            status, reply = self._reply()
        assert status == 200, (method, status)
        return reply

    def fetch(self, url: str) -> tuple[int, float]:
        """Stream bytes (with their 4-byte interleave headers) and seconds from PLAY to
        the last byte."""
        self.request("DESCRIBE", url, {"Accept": "application/sdp"})
        setup = self.request(
            "SETUP", url + "trackID=1", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
        )
        session = setup["session"].split(";")[0]
        started = time.perf_counter()
        self._send("PLAY", url, {"Session": session, "Range": "npt=0.000-"})
        received = 0
        last_byte = started
        next_ask = started + 0.05
        data = self.buffer
        self.buffer = b""
        pos = 0
        while True:
            # Parse what is buffered: interleaved frames and RTSP replies.
            while True:
                if len(data) - pos < 4:
                    break
                if data[pos : pos + 1] == b"$":
                    length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
                    if len(data) - pos < 4 + length:
                        break
                    received += 4 + length
                    last_byte = time.perf_counter()
                    pos += 4 + length
                    continue
                end = data.find(b"\r\n\r\n", pos)
                if end < 0:
                    break
                head = data[pos:end].decode("latin-1").lower()
                pos = end + 4
                if "connection: close" in head:
                    self.sock.close()
                    return received, last_byte - started
            data = data[pos:]
            pos = 0
            now = time.perf_counter()
            if now >= next_ask:
                self._send("HEARTBEAT", url, {"Session": session})
                next_ask = now + 0.05
            ready, _, _ = select.select([self.sock], [], [], max(0.0, next_ask - now))
            if ready:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return received, last_byte - started
                data += chunk


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# -- measures ---------------------------------------------------------------------------------


def compact(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%SZ")


def raw_once(info: dict[str, Any]) -> tuple[int, float]:
    start = datetime.fromisoformat(info["start"])
    end = datetime.fromisoformat(info["end"])
    url = (
        f"rtsp://127.0.0.1:{info['rtsp_port']}/ISAPI/Streaming/tracks/101/"
        f"?starttime={compact(start)}&endtime={compact(end)}"
    )
    return RawRtsp("127.0.0.1", info["rtsp_port"], "admin", PASSWORD).fetch(url)


def hikd_once(session: Any, info: dict[str, Any], folder: Path) -> tuple[float, float, int]:
    from hikd.devices.capabilities.stream_download import download_stream

    start = datetime.fromisoformat(info["start"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(info["end"]).replace(tzinfo=UTC)
    target = folder / "bench.part"
    last_growth = [0.0]

    def grew(_size: int) -> None:
        last_growth[0] = time.perf_counter()

    began = time.perf_counter()
    got = download_stream(
        session, target, 1, start, end, stall_timeout_s=30, progress=grew, poll_s=0.01
    )
    size = got.size
    done = time.perf_counter()
    target.unlink()
    return last_growth[0] - began, done - began, size


def bare_search(sdk: Any, user_id: int, since: datetime, until: datetime) -> int:
    """The library alone: FindFile_V40 + FindNextFile_V40 until 1003, FindClose_V30."""
    from hikd.sdk.ffi import ffi

    cond = ffi.new("NET_DVR_FILECOND_V40 *")
    cond.lChannel = 1
    cond.dwFileType = 0
    cond.dwIsLocked = 0xFF
    for t, dt in ((cond.struStartTime, since), (cond.struStopTime, until)):
        t.dwYear, t.dwMonth, t.dwDay = dt.year, dt.month, dt.day
        t.dwHour, t.dwMinute, t.dwSecond = dt.hour, dt.minute, dt.second
    handle = sdk.lib.NET_DVR_FindFile_V40(user_id, cond)
    assert handle >= 0, sdk.last_error()
    data = ffi.new("NET_DVR_FINDDATA_V40 *")
    count = 0
    while True:
        result = sdk.lib.NET_DVR_FindNextFile_V40(handle, data)
        if result == 1000:
            count += 1
        elif result == 1002:
            time.sleep(0.001)
        else:
            break
    sdk.lib.NET_DVR_FindClose_V30(handle)
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=48.0, help="stream size per download")
    parser.add_argument(
        "--rate-mbps", type=float, default=0.0, help="pace the device (MB/s; 0 = unpaced)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    bytes_per_second = max(1, int(args.mb * 1e6 / SEGMENT_S))
    rate = int(args.rate_mbps * 1e6) or None
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, bytes_per_second, rate), daemon=True)
    proc.start()
    info = parent.recv()

    from hikd.config import DeviceConfig
    from hikd.devices.capabilities.recordings import search_recordings
    from hikd.devices.session import DeviceSession
    from hikd.sdk.library import Library

    sdk = Library.open()
    sessions = []
    try:
        for name, port in (("stream", info["stream_port"]), ("many", info["many_port"])):
            config = DeviceConfig(name=name, host="127.0.0.1", port=port, password=PASSWORD)
            session = DeviceSession(sdk, config, lambda _e: None)
            session.login_once()
            sessions.append(session)
        stream, many = sessions

        raw: list[tuple[int, float]] = []
        ours: list[tuple[float, float, int]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                raw.append(raw_once(info))
                ours.append(hikd_once(stream, info, Path(tmp)))
        stream_bytes = statistics.median(b for b, _ in raw)
        raw_s = statistics.median(s for _, s in raw)
        transfer_s = statistics.median(t for t, _, _ in ours)
        complete_s = statistics.median(c for _, c, _ in ours)
        written = statistics.median(w for _, _, w in ours)
        print(f"download of one {stream_bytes / 1e6:.1f} MB stream, median of {args.rounds}")
        print(f"  raw RTSP client:      {raw_s:.3f} s  {stream_bytes / raw_s / 1e6:7.1f} MB/s")
        print(
            f"  hikd, transfer:       {transfer_s:.3f} s  "
            f"{stream_bytes / transfer_s / 1e6:7.1f} MB/s  ratio {raw_s / transfer_s:.2f}x"
        )
        print(
            f"  hikd, complete:       {complete_s:.3f} s  "
            f"{stream_bytes / complete_s / 1e6:7.1f} MB/s  ratio {raw_s / complete_s:.2f}x "
            "(includes the library's <= 5 s end-of-stream heartbeat)"
        )
        print(f"  the library wrote {written / 1e6:.1f} MB (its own PS container, not the stream)")

        now = datetime.now(UTC).replace(tzinfo=None)
        since, until = now - timedelta(hours=90), now + timedelta(hours=1)
        assert many.user_id is not None
        bare_times, hikd_times = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            n_bare = bare_search(sdk, many.user_id, since, until)
            bare_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            n_hikd = len(
                search_recordings(many, 1, since.replace(tzinfo=UTC), until.replace(tzinfo=UTC))
            )
            hikd_times.append(time.perf_counter() - t0)
        bare_s, hikd_s = statistics.median(bare_times), statistics.median(hikd_times)
        print(f"search, median of {args.rounds}")
        print(f"  bare FindFile loop:   {bare_s:.3f} s  {n_bare} recordings")
        print(
            f"  hikd search:          {hikd_s:.3f} s  {n_hikd} recordings  "
            f"ratio {hikd_s / bare_s:.2f}x"
        )
    finally:
        for session in sessions:
            session.close()
        sdk.cleanup()
        parent.send("stop")
        proc.join(10)


if __name__ == "__main__":
    main()
