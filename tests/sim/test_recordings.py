"""The simulator's recorder side: search paging, downloads (ISAPI and RTSP), device log,
work status, alarm input status, snapshots, configuration file and state knobs."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import socket
import struct
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.config import RecordingPlan

PASSWORD = "rec-pass"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
END = datetime(2024, 5, 2, 0, 0, 0)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s = Simulator(
        [
            SimDeviceConfig(
                name="nvr",
                password=PASSWORD,
                ip_channels=2,
                alarm_inputs=2,
                recordings=RecordingPlan(
                    per_channel=100,
                    segment_s=600,
                    end=END,
                    content="noise",
                    bytes_per_second=50_000,
                ),
            ),
        ]
    )
    try:
        yield s.start()
    finally:
        s.stop()


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=AUTH)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def search_body(track: int, start: str, end: str, position: int) -> bytes:
    # Exactly the shape libhcnetsdk sends (sdk-over-isapi.md part 2 a), misspelling included.
    return (
        "<CMSearchDescription>\n<searchID>{65D7400F-00A5-F444-B9E0-A736700F1755}</searchID>\n"
        f"<trackIDList>\n<trackID>{track}</trackID>\n</trackIDList>\n"
        f"<timeSpanList>\n<timeSpan>\n<startTime>{start}</startTime>\n<endTime>{end}</endTime>\n"
        "</timeSpan>\n</timeSpanList>\n<contentTypeList>\n<contentType>video</contentType>\n"
        "</contentTypeList>\n<maxResults>40</maxResults>\n"
        f"<searchResultPostion>{position}</searchResultPostion>\n</CMSearchDescription>"
    ).encode()


def search_all(port: int, track: int, start: str, end: str) -> list[dict[str, str]]:
    items: list[dict[str, str]] = []
    position = 0
    while True:
        body = search_body(track, start, end, position)
        status, body = request(port, "POST", "/ISAPI/ContentMgmt/search", body)
        assert status == 200
        text = body.decode()
        page = re.findall(r"<searchMatchItem>(.*?)</searchMatchItem>", text, re.S)
        assert re.search(r"<numOfMatches>(\d+)<", text)[1] == str(len(page))  # type: ignore[index]
        for item in page:
            items.append(dict(re.findall(r"<(\w+)>([^<]*)</\1>", item)))
        state = re.search(r"<responseStatusStrg>([^<]*)<", text)[1]  # type: ignore[index]
        if state != "MORE":
            assert len(page) <= 40
            return items
        assert len(page) == 40
        position += 40


def test_search_pages_by_40_with_more_and_the_open_segment_last(sim: Simulator) -> None:
    port = sim.devices[0].port
    items = search_all(port, 201, "2024-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
    assert len(items) == 100
    assert all(i["trackID"] == "201" for i in items)
    first, last = items[0], items[-1]
    assert first["startTime"] == "2024-05-01T07:30:00Z"  # 99 closed segments of 10 min before END
    assert first["endTime"] == "2024-05-01T07:39:59Z"
    assert last["startTime"] == "2024-05-02T00:00:00Z"  # the one still being recorded
    uri = items[5]["playbackURI"].replace("&amp;", "&")
    assert "/Streaming/tracks/201/?starttime=20240501T082000Z&endtime=20240501T082959Z" in uri
    assert re.search(r"&name=ch02_\d{11}&size=30000000$", uri)


def test_search_limits_to_the_time_span(sim: Simulator) -> None:
    items = search_all(sim.devices[0].port, 101, "2024-05-01T23:00:00Z", "2024-05-01T23:15:00Z")
    assert [i["startTime"] for i in items] == ["2024-05-01T23:00:00Z", "2024-05-01T23:10:00Z"]


def test_search_without_matches(sim: Simulator) -> None:
    status, body = request(
        sim.devices[0].port,
        "POST",
        "/ISAPI/ContentMgmt/search",
        search_body(101, "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", 0),
    )
    assert status == 200
    assert b"<responseStatusStrg>NO MATCHES</responseStatusStrg>" in body


def test_a_channel_that_stops_recording_closes_its_segment(sim: Simulator) -> None:
    dev = sim.devices[0]
    assert dev.recording_list(1)[-1].open
    dev.set_recording(1, False)
    assert not dev.recording_list(1)[-1].open
    status = json.loads(request(dev.port, "GET", "/ISAPI/System/workingstatus?format=json")[1])
    chans = {c["chanNo"]: c for c in status["WorkingStatus"]["ChanStatus"]}
    assert chans[1]["record"] == 0 and chans[2]["record"] == 1


def test_isapi_download_is_byte_exact(sim: Simulator) -> None:
    dev = sim.devices[0]
    rec = dev.recording_list(2)[10]
    uri = (
        f"rtsp://127.0.0.1/Streaming/tracks/201/?starttime=x&amp;endtime=y&amp;name={rec.name}"
        f"&amp;size={rec.size}"
    )
    body = f"<downloadRequest><playbackURI>{uri}</playbackURI></downloadRequest>".encode()
    status, data = request(dev.port, "GET", "/ISAPI/ContentMgmt/download", body)
    assert status == 200
    assert len(data) == rec.size == 30_000_000
    assert data == dev.recording_bytes(rec.name)


def test_log_search_pages_and_records_logins(sim: Simulator) -> None:
    dev = sim.devices[0]
    request(dev.port, "GET", "/ISAPI/System/deviceInfo")  # Basic auth: not a session login
    now = datetime.now() + timedelta(hours=int(dev.config.utc_offset_minutes / 60))
    body = (
        "<CMSearchDescription><searchID>A</searchID><metaId>log.std-cgi.com</metaId>"
        "<timeSpanList><timeSpan>"
        f"<startTime>{(now - timedelta(days=2)):%Y-%m-%dT%H:%M:%S}Z</startTime>"
        f"<endTime>{(now + timedelta(days=1)):%Y-%m-%dT%H:%M:%S}Z</endTime>"
        "</timeSpan></timeSpanList><maxResults>40</maxResults>"
        "<searchResultPostion>{pos}</searchResultPostion></CMSearchDescription>"
    )
    dev.trigger("VMD", channel=1)
    entries: list[str] = []
    pos = 0
    while True:
        status, reply = request(
            dev.port,
            "POST",
            "/ISAPI/ContentMgmt/logSearch",
            body.replace("{pos}", str(pos)).encode(),
        )
        assert status == 200
        entries += re.findall(r"<metaId>([^<]*)</metaId>", reply.decode())
        if b"<responseStatusStrg>MORE<" not in reply:
            break
        pos += 40
    assert len(entries) == 51  # 50 background entries + the motion alarm
    assert all(e.startswith("log.std-cgi.com/") for e in entries)
    # The channel ends the path, as real devices write it (README "Backfill").
    assert entries[-1] == "log.std-cgi.com/Alarm/motionStart/1"


def test_status_endpoints_follow_the_knobs(sim: Simulator) -> None:
    dev = sim.devices[0]
    dev.trigger("IO", channel=2, state="active")
    _, io = request(dev.port, "GET", "/ISAPI/System/IO/inputs/status")
    states = re.findall(r"<inputIOPortID>(\d)</inputIOPortID>.*?<ioState>(\w+)<", io.decode(), re.S)
    assert states == [("1", "inactive"), ("2", "active")]
    dev.set_disk_status(1, "error")
    _, hdd = request(dev.port, "GET", "/ISAPI/ContentMgmt/Storage/hdd")
    assert b"<status>error</status>" in hdd
    status = json.loads(request(dev.port, "GET", "/ISAPI/System/workingstatus?format=json")[1])
    assert status["WorkingStatus"]["HDStatus"][0]["status"] == 2
    assert status["WorkingStatus"]["IOStatus"][1]["ioState"] == 1
    with pytest.raises(ValueError):
        dev.set_disk_status(1, "melted")  # type: ignore[arg-type]


def test_control_endpoint_flips_knobs(sim: Simulator) -> None:
    dev = sim.devices[0]
    body = json.dumps({"disk_status": {"1": "unformatted"}, "recording": {"2": False}})
    status, reply = request(dev.port, "POST", "/hikd-sim/set", body.encode())
    assert status == 200, reply
    assert dev.config.disks[0].status == "unformatted"
    assert not dev.recording_list(2)[-1].open
    status, reply = request(dev.port, "POST", "/hikd-sim/set", b'{"bogus": 1}')
    assert status == 400 and b"unknown setting" in reply


def test_snapshot_and_configuration_file_are_byte_exact(sim: Simulator) -> None:
    dev = sim.devices[0]
    status, jpeg = request(dev.port, "GET", "/ISAPI/Streaming/channels/201/picture")
    assert status == 200
    assert jpeg == dev.snapshot(2) != dev.snapshot(1)
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
    assert request(dev.port, "GET", "/ISAPI/Streaming/channels/901/picture")[0] == 404
    status, config = request(dev.port, "GET", "/ISAPI/System/configurationData")
    assert status == 200 and config == dev.configuration_data()


def test_admin_accesses_tell_the_rtsp_port(sim: Simulator) -> None:
    dev = sim.devices[0]
    _, body = request(dev.port, "GET", "/ISAPI/Security/adminAccesses")
    rtsp = re.search(r"<protocol>RTSP</protocol>\s*<portNo>(\d+)<", body.decode())
    assert rtsp is not None and int(rtsp[1]) == dev.rtsp_port != dev.port


# ----- RTSP ----------------------------------------------------------------------------


class RtspClient:
    """What the library's playback client does (sdk-over-isapi.md part 2 b)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.cseq = 0

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            return False
        self.buf += data
        return bool(data)

    def send(self, method: str, url: str, headers: dict[str, str] | None = None) -> None:
        self.cseq += 1
        lines = [
            f"{method} {url} RTSP/1.0",
            f"CSeq: {self.cseq}",
            "User-Agent: NKPlayer-1.00.00.081112",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def reply(self) -> tuple[str, dict[str, str], bytes]:
        """The next reply, skipping interleaved data before it."""
        while True:
            while len(self.buf) < 4:
                assert self._fill()
            if self.buf[:1] == b"$":
                length = struct.unpack(">H", self.buf[2:4])[0]
                while len(self.buf) < 4 + length:
                    assert self._fill()
                self.buf = self.buf[4 + length :]
                continue
            while b"\r\n\r\n" not in self.buf:
                assert self._fill()
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {
                k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
            }
            length = int(headers.get("content-length", "0"))
            while len(self.buf) < length:
                assert self._fill()
            body, self.buf = self.buf[:length], self.buf[length:]
            return lines[0], headers, body

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> tuple[str, dict[str, str], bytes]:
        self.send(method, url, headers)
        return self.reply()

    def rtp(self, until_bytes: int | None = None) -> list[bytes]:
        """Interleaved RTP packets until the peer closes (or until_bytes of RTP payload)."""
        packets: list[bytes] = []
        total = 0
        while until_bytes is None or total < until_bytes:
            while len(self.buf) < 4:
                if not self._fill():
                    return packets
            assert self.buf[:2] == b"$\x00"
            length = struct.unpack(">H", self.buf[2:4])[0]
            while len(self.buf) < 4 + length:
                if not self._fill():
                    return packets
            packets.append(self.buf[4 : 4 + length])
            total += length - 12
            self.buf = self.buf[4 + length :]
        return packets

    def close(self) -> None:
        self.sock.close()


def digest(method: str, uri: str, realm: str, nonce: str) -> str:
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    # RFC 2069 (no qop), with the plain password: what the library sends.
    response = md5(f"{md5(f'admin:{realm}:{PASSWORD}')}:{nonce}:{md5(f'{method}:{uri}')}")
    return (
        f'Digest username="admin", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}"'
    )


def open_playback(sim: Simulator) -> tuple[RtspClient, str, str]:
    dev = sim.devices[0]
    client = RtspClient(dev.rtsp_port)
    url = (
        f"rtsp://127.0.0.1:{dev.rtsp_port}/ISAPI/Streaming/tracks/101/"
        "?starttime=20240501T000000Z&endtime=20240501T000059Z"
    )
    status, headers, _ = client.request("DESCRIBE", url, {"Accept": "application/sdp"})
    assert status == "RTSP/1.0 401 Unauthorized"
    params = dict(re.findall(r'(\w+)="([^"]*)"', headers["www-authenticate"]))
    auth = {"Authorization": digest("DESCRIBE", url, params["realm"], params["nonce"])}
    status, headers, sdp = client.request("DESCRIBE", url, {"Accept": "application/sdp", **auth})
    assert status == "RTSP/1.0 200 OK"
    assert b"a=rtpmap:96 H264/90000" in sdp and b"a=Media_header:MEDIAINFO=494D4B48" in sdp
    control = re.findall(rb"a=control:(\S+)", sdp)[-1].decode()
    setup_url = f"{url}/{control}"  # the library appends the control naively
    auth = {"Authorization": digest("SETUP", setup_url, params["realm"], params["nonce"])}
    status, headers, _ = client.request(
        "SETUP", setup_url, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0", **auth}
    )
    assert status == "RTSP/1.0 200 OK"
    session = headers["session"].split(";")[0]
    auth = {"Authorization": digest("PLAY", url, params["realm"], params["nonce"])}
    client.send("PLAY", url, {"Session": session, "Range": "npt=0.000000-0.000000", **auth})
    return client, url, session


def test_rtsp_playback_streams_h264_and_signals_the_end(sim: Simulator) -> None:
    client, url, session = open_playback(sim)
    try:
        status, _, _ = client.reply()
        assert status == "RTSP/1.0 200 OK"
        expected = 60 * 50_000  # 1 minute x bytes_per_second
        packets = client.rtp(until_bytes=expected)
        payload = sum(len(p) - 12 for p in packets)
        assert expected <= payload < expected * 1.1
        assert all(p[0] == 0x80 and p[1] & 0x7F == 96 for p in packets)
        assert packets[0][12] & 0x1F == 7  # SPS first
        assert any(p[1] & 0x80 for p in packets)  # frame ends marked
        assert any(p[12] & 0x1F == 28 for p in packets)  # FU-A fragments
        deadline = time.monotonic() + 10
        while sim.devices[0].rtsp.stats.streams_completed < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status, headers, _ = client.request("HEARTBEAT", url, {"Session": session})
        assert status == "RTSP/1.0 200 OK"
        assert headers.get("connection") == "close"
    finally:
        client.close()


def test_rtsp_stream_cut_midway(sim: Simulator) -> None:
    sim.devices[0].rtsp.knobs.cut_after_bytes = 100_000
    client, _, _ = open_playback(sim)
    try:
        client.reply()
        packets = client.rtp()
        assert sum(len(p) + 4 for p in packets) <= 100_000
        assert sim.devices[0].rtsp.stats.streams_cut == 1
    finally:
        client.close()


def test_rtsp_heartbeat_before_the_end_keeps_the_connection(sim: Simulator) -> None:
    sim.devices[0].rtsp.knobs.bytes_per_second = 20_000  # slow: ~150 s for this range
    client, url, session = open_playback(sim)
    try:
        client.reply()
        client.rtp(until_bytes=10_000)
        status, headers, _ = client.request("HEARTBEAT", url, {"Session": session})
        assert status == "RTSP/1.0 200 OK"
        assert "connection" not in headers
    finally:
        client.close()
