"""The simulator's alarms: alertStream read by a plain socket client, pushes received by a
plain HTTP server, the control endpoint, scenarios and a killed simulator process."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import ALERT_KINDS

NS = "{http://www.isapi.org/ver20/XMLSchema}"
PASSWORD = "alarm-pass"
AUTH = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()


@dataclass
class Part:
    headers: dict[str, str]
    body: bytes

    @property
    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    def text(self, name: str) -> str:
        found = self.xml.find(f"{NS}{name}")
        assert found is not None, name
        return found.text or ""


class AlertStreamReader:
    """A raw alertStream client that checks the framing the vendor library relies on."""

    def __init__(self, port: int, *, auth: str = AUTH) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.sock.sendall(
            b"GET /ISAPI/Event/notification/alertStream HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: {auth}\r\n\r\n".encode()
        )
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.head = head.decode()

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError
        self.buf += data

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def part(self) -> Part:
        if self.buf.startswith(b"--boundary\r\n") or not self.buf:
            assert self._take(12) == b"--boundary\r\n"
        lines = self._until(b"\r\n\r\n").decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        body = self._take(int(headers["content-length"]))
        # The NEXT boundary must already be there: the library delivers a part only when
        # it has read the boundary after it (sdk-over-isapi.md part 1 §2).
        assert self._take(14) == b"\r\n--boundary\r\n"
        self.buf = b"--boundary\r\n" + self.buf
        return Part(headers, body)

    def alarm(self) -> Part:
        """The next part that is not the videoloss/inactive heartbeat."""
        while True:
            p = self.part()
            if b"<eventType>videoloss</eventType>" in p.body and b">inactive<" in p.body:
                continue
            return p

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s = Simulator(
        [
            SimDeviceConfig(name="nvr", password=PASSWORD, utc_offset_minutes=120, heartbeat_s=30),
            SimDeviceConfig(name="cam", password=PASSWORD, heartbeat_s=0.2),
        ]
    )
    try:
        yield s.start()
    finally:
        s.stop()


@pytest.fixture
def reader(sim: Simulator) -> Iterator[AlertStreamReader]:
    r = AlertStreamReader(sim.devices[0].port)
    try:
        assert sim.devices[0].wait_for_streams(1)
        yield r
    finally:
        r.close()


def test_stream_head_and_one_event_arrive_complete(
    sim: Simulator, reader: AlertStreamReader
) -> None:
    assert reader.status == 200
    assert "multipart/mixed; boundary=boundary" in reader.head
    sent = sim.devices[0].trigger("VMD", channel=2)
    part = reader.alarm()
    assert part.headers["content-type"].startswith("application/xml")
    assert part.xml.tag == f"{NS}EventNotificationAlert"
    assert part.text("eventType") == "VMD"
    assert part.text("eventState") == "active"
    assert part.text("channelID") == "2"
    assert part.text("dateTime").endswith("+02:00")
    assert part.text("macAddress") == sim.devices[0].config.mac_address
    assert int(part.text("hikdSimSeq")) == sent.seq
    assert int(part.text("hikdSimSentNs")) == sent.sent_ns <= time.monotonic_ns()
    assert sent.streams == 1


def test_sequence_numbers_follow_each_other(sim: Simulator, reader: AlertStreamReader) -> None:
    seqs = [sim.devices[0].trigger("IO", channel=1).seq for _ in range(5)]
    got = [int(reader.alarm().text("hikdSimSeq")) for _ in range(5)]
    assert got == seqs == list(range(seqs[0], seqs[0] + 5))


def test_every_known_type_and_an_unknown_one_is_well_formed(
    sim: Simulator, reader: AlertStreamReader
) -> None:
    types = [*ALERT_KINDS, "someFutureEvent"]
    for t in types:
        sim.devices[0].trigger(t, channel=3)
    for t in types:
        part = reader.alarm()
        assert part.text("eventType") == t
        assert part.text("eventDescription")
        if t == "IO":
            assert part.text("inputIOPortID") == "3"
        if t in ("linedetection", "fielddetection"):
            entry = part.xml.find(f"{NS}DetectionRegionList/{NS}DetectionRegionEntry")
            assert entry is not None
            assert entry.findtext(f"{NS}regionID") == "1"
            assert entry.findtext(f"{NS}detectionTarget") == "human"
            assert len(entry.findall(f"{NS}RegionCoordinatesList/{NS}RegionCoordinates")) >= 2


def test_smart_event_carries_region_and_target(sim: Simulator, reader: AlertStreamReader) -> None:
    sim.devices[0].trigger("linedetection", channel=1, region_id=3, target="vehicle")
    entry = reader.alarm().xml.find(f"{NS}DetectionRegionList/{NS}DetectionRegionEntry")
    assert entry is not None
    assert entry.findtext(f"{NS}regionID") == "3"
    assert entry.findtext(f"{NS}detectionTarget") == "vehicle"


def test_json_event_with_pictures(sim: Simulator, reader: AlertStreamReader) -> None:
    sim.devices[0].trigger("fielddetection", channel=4, pictures=2, fmt="json")
    part = reader.alarm()
    assert part.headers["content-type"].startswith("application/json")
    data = json.loads(part.body)
    assert data["eventType"] == "fielddetection"
    assert data["channelID"] == 4
    assert data["picturesNumber"] == 2
    assert data["DetectionRegionList"][0]["regionID"] == 1
    for _ in range(2):
        picture = reader.part()
        assert picture.headers["content-type"] == "image/jpeg"
        assert 'filename="' in picture.headers["content-disposition"]
        assert picture.body.startswith(b"\xff\xd8") and picture.body.endswith(b"\xff\xd9")


def test_big_picture(sim: Simulator, reader: AlertStreamReader) -> None:
    sim.devices[0].trigger("VMD", pictures=1, picture_size=3_000_127)
    assert reader.alarm().text("picturesNumber") == "1"
    assert len(reader.part().body) == 3_000_127


def test_heartbeat_keeps_an_idle_stream_alive(sim: Simulator) -> None:
    r = AlertStreamReader(sim.devices[1].port)  # heartbeat_s=0.2
    try:
        part = r.part()
        assert part.text("eventType") == "videoloss"
        assert part.text("eventState") == "inactive"
    finally:
        r.close()


def test_every_open_stream_gets_the_event(sim: Simulator, reader: AlertStreamReader) -> None:
    second = AlertStreamReader(sim.devices[0].port)
    try:
        assert sim.devices[0].wait_for_streams(2)
        assert sim.devices[0].trigger("PIR").streams == 2
        assert reader.alarm().text("eventType") == "PIR"
        assert second.alarm().text("eventType") == "PIR"
    finally:
        second.close()


@pytest.mark.parametrize("status", [403, 404, 500])
def test_arming_can_be_made_to_fail(sim: Simulator, status: int) -> None:
    sim.devices[0].alert_stream_status = status
    r = AlertStreamReader(sim.devices[0].port)
    try:
        assert r.status == status
    finally:
        r.close()


def test_stream_needs_a_login(sim: Simulator) -> None:
    r = AlertStreamReader(sim.devices[0].port, auth="Basic " + base64.b64encode(b"x:y").decode())
    try:
        assert r.status == 401
    finally:
        r.close()


def test_stop_cuts_the_stream(sim: Simulator, reader: AlertStreamReader) -> None:
    sim.stop()
    with pytest.raises((EOFError, ConnectionResetError)):
        reader.alarm()


def test_control_endpoint_triggers_from_loopback(sim: Simulator, reader: AlertStreamReader) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sim.devices[0].port, timeout=10)
    try:
        body = json.dumps({"type": "linedetection", "channel": 2, "fmt": "json"})
        conn.request("POST", "/hikd-sim/trigger", body=body)
        resp = conn.getresponse()
        result = json.loads(resp.read())
        assert resp.status == 200
        assert result["streams"] == 1
        conn.request("POST", "/hikd-sim/trigger", body=json.dumps({"type": "VMD", "bogus": 1}))
        bad = conn.getresponse()
        assert bad.status == 400
        assert "bogus" in json.loads(bad.read())["error"]
    finally:
        conn.close()
    assert json.loads(reader.alarm().body)["hikdSimSeq"] == result["seq"]


def test_scenario_sends_the_planned_count_to_every_device(sim: Simulator) -> None:
    readers = [AlertStreamReader(d.port) for d in sim.devices]
    try:
        for d in sim.devices:
            assert d.wait_for_streams(1)
        result = sim.run_scenario(400, ["VMD", "linedetection"], 0.5)
        assert result.planned == result.sent == 200
        assert result.stream_writes == 200
        assert result.by_device == {"nvr": 100, "cam": 100}
        assert result.by_type == {"VMD": 100, "linedetection": 100}
        for r, d in zip(readers, sim.devices, strict=True):
            seqs = [int(r.alarm().text("hikdSimSeq")) for _ in range(100)]
            first = result.first_seq[d.name]
            assert seqs == list(range(first, first + 100))
    finally:
        for r in readers:
            r.close()


def test_scenario_waits_for_a_reader_that_stopped_reading_then_gives_up(sim: Simulator) -> None:
    # A client that reads nothing: once a megabyte waits in the device's send buffer the
    # scenario stops sending, like a device whose TCP window is full, and gives up at its
    # deadline (duration + 2 s) rather than queue without bound.
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", sim.devices[0].port))
    stalled.sendall(
        b"GET /ISAPI/Event/notification/alertStream HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: {AUTH}\r\n\r\n".encode()
    )
    try:
        assert sim.devices[0].wait_for_streams(1)
        result = sim.run_scenario(2000, ["VMD"], 1.0, devices=1, pictures=16)
        assert 0 < result.sent < result.planned == 2000
        assert sim.devices[0].alarms.backlog > 1 << 20
        assert sim.devices[0].alarms.last_seq == result.first_seq["nvr"] + result.sent - 1
    finally:
        stalled.close()


# ----- push mode ------------------------------------------------------------------------


@dataclass
class Posted:
    path: str
    content_type: str
    body: bytes


class AlarmHost:
    """A plain HTTP server that records the POSTs a device makes. With `reset`, it answers
    like the vendor library's listen server: 200, then a RST (SO_LINGER 0)."""

    def __init__(self, *, reset: bool = False) -> None:
        self.posts: list[Posted] = []
        self.cond = threading.Condition()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with host.cond:
                    host.posts.append(Posted(self.path, self.headers["Content-Type"], body))
                    host.cond.notify_all()
                self.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                self.wfile.flush()
                if reset:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int) -> list[Posted]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.posts) >= count, 10)
            return list(self.posts)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def alarm_host() -> Iterator[AlarmHost]:
    h = AlarmHost()
    try:
        yield h
    finally:
        h.close()


def test_push_xml_json_and_multipart(sim: Simulator, alarm_host: AlarmHost) -> None:
    from hikd.sim.alerts import SimAlert

    dev = sim.devices[0]
    assert dev.push_to("127.0.0.1", alarm_host.port, SimAlert("VMD", channel=2)).status == 200
    dev.push_to("127.0.0.1", alarm_host.port, SimAlert("IO", fmt="json"), form="json")
    result = dev.push_to(
        "127.0.0.1",
        alarm_host.port,
        SimAlert("linedetection", pictures=2),
        path="/alarm",
        form="multipart",
    )
    assert result.delivered
    xml_post, json_post, multi = alarm_host.wait(3)
    assert xml_post.content_type.startswith("application/xml")
    assert ET.fromstring(xml_post.body).findtext(f"{NS}eventType") == "VMD"
    assert json.loads(json_post.body)["eventType"] == "IO"
    assert multi.path == "/alarm"
    assert multi.content_type.startswith("multipart/form-data; boundary=")
    boundary = multi.content_type.split("boundary=")[1].encode()
    sections = multi.body.split(b"--" + boundary)
    assert sections[-1] == b"--\r\n"
    assert b"<eventType>linedetection</eventType>" in sections[1]
    assert b"<picturesNumber>2</picturesNumber>" in sections[1]
    assert sum(b"Content-Type: image/jpeg" in s for s in sections) == 2


def test_push_survives_a_reset_after_the_answer(sim: Simulator) -> None:
    host = AlarmHost(reset=True)
    try:
        result = sim.devices[0].push_to("127.0.0.1", host.port)
        assert result.delivered
        assert len(host.wait(1)) == 1
    finally:
        host.close()


def test_push_to_nobody_says_why(sim: Simulator) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        result = sim.devices[0].push_to("127.0.0.1", port)
    assert not result.delivered
    assert "cannot connect" in result.error


def test_triggered_alarms_go_to_push_targets(sim: Simulator, alarm_host: AlarmHost) -> None:
    dev = sim.devices[0]
    dev.add_push_target("127.0.0.1", alarm_host.port, path="/hik", form="multipart")
    sent = dev.trigger("VMD", channel=3, pictures=1)
    assert sent.pushes == 1
    (post,) = alarm_host.wait(1)
    assert post.path == "/hik"
    assert f"<hikdSimSeq>{sent.seq}</hikdSimSeq>".encode() in post.body


def test_push_scenario(sim: Simulator, alarm_host: AlarmHost) -> None:
    result = sim.run_scenario(200, ["VMD"], 0.25, push_to=("127.0.0.1", alarm_host.port))
    assert (result.sent, result.pushed, result.push_failed) == (50, 50, 0), result
    assert len(alarm_host.wait(50)) == 50


# ----- the simulator as a process ------------------------------------------------------


def _start_process(*args: str) -> tuple[subprocess.Popen[str], list[int]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hikd.sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    ports = []
    assert proc.stdout is not None
    for _ in range(int(args[args.index("--devices") + 1]) if "--devices" in args else 1):
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        ports.append(int(line.split()[2]))
    return proc, ports


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def test_killed_process_cuts_the_stream_and_a_restart_forgets_sessions() -> None:
    proc, (port,) = _start_process("--port", "0", "--password", PASSWORD)
    try:
        r = AlertStreamReader(port)
        subprocess.run(
            [sys.executable, "-m", "hikd.sim", "trigger", "--port", str(port), "--type", "IO"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        assert r.alarm().text("eventType") == "IO"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with pytest.raises((EOFError, ConnectionResetError)):
            r.alarm()
        r.close()
    finally:
        _end(proc)
    proc2, (port2,) = _start_process("--port", str(port), "--password", PASSWORD)
    try:
        assert port2 == port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/ISAPI/System/deviceInfo", headers={"Cookie": "WebSession=old;"})
        assert conn.getresponse().status == 401
        conn.close()
    finally:
        proc2.send_signal(signal.SIGTERM)
        assert proc2.wait(10) == 0
        _end(proc2)
