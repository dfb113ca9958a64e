"""The syslog sink against real receivers on loopback (UDP, TCP) and in a temp dir (Unix
sockets); every message is parsed by an independent RFC 5424 parser."""

from __future__ import annotations

import os
import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from syslog_rfc5424_parser import SyslogMessage  # type: ignore[import-untyped]
from syslog_rfc5424_parser.constants import (  # type: ignore[import-untyped]
    SyslogFacility,
    SyslogSeverity,
)

from hikd.commands import Command, CommandResult, command_event
from hikd.events import DeviceRef, Event, health
from hikd.sinks.base import Sink, SinkContext, SinkUnavailable
from hikd.sinks.syslog.sink import SD_ID, SyslogConfig, SyslogSink, sd_escape, sentence, severity

NVR = DeviceRef("nvr", "DS7608NI0120190101CCWR123456789", "192.0.2.10")
ODD = DeviceRef('gate "north" \\ [east]')


def alarm(type_: str, state: Any, channel: int | None = 3, device: DeviceRef = NVR) -> Event:
    return Event(kind="alarm", type=type_, state=state, device=device, channel=channel)


def unescape(value: str) -> str:
    """The parser keeps PARAM-VALUE escapes as they are; undo them."""
    out, chars = [], iter(value)
    for c in chars:
        out.append(next(chars, "") if c == "\\" else c)
    return "".join(out)


def params(message: Any) -> dict[str, str]:
    return {k: unescape(v) for k, v in message.sd[SD_ID].items()}


def make_sink(tmp_path: Path, **config: Any) -> SyslogSink:
    settings: dict[str, Any] = {"hostname": "hikd-test", "timeout_s": 2, **config}
    return SyslogSink(SyslogConfig(**settings), SinkContext("syslog", tmp_path, {}))


# -- receivers -------------------------------------------------------------------------


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock
    finally:
        sock.close()


class TcpReceiver:
    """A syslog collector on a TCP port: accepts connections, splits frames."""

    def __init__(self, framing: str = "octet-counting") -> None:
        self.framing = framing
        self.port = 0
        self.messages: list[str] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None

    def start(self) -> TcpReceiver:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every connection (the thread closes them on its way out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _serve(self, listener: socket.socket) -> None:
        buffers: dict[socket.socket, bytes] = {}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([listener, *buffers], [], [], 0.05)
                for sock in readable:
                    if sock is listener:
                        conn, _ = listener.accept()
                        buffers[conn] = b""
                        continue
                    data = sock.recv(65536)
                    if not data:
                        sock.close()
                        del buffers[sock]
                        continue
                    buffers[sock] = self._frames(buffers[sock] + data)
        finally:
            for sock in buffers:
                sock.close()
            listener.close()

    def _frames(self, buffer: bytes) -> bytes:
        while True:
            if self.framing == "octet-counting":
                length, space, rest = buffer.partition(b" ")
                if not space or len(rest) < int(length):
                    return buffer
                frame, buffer = rest[: int(length)], rest[int(length) :]
            else:
                frame, newline, rest = buffer.partition(b"\n")
                if not newline:
                    return buffer
                buffer = rest
            with self._cond:
                self.messages.append(frame.decode())
                self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[str]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"got {len(self.messages)} of {count} messages")
            return list(self.messages)


@pytest.fixture
def tcp_receiver() -> Iterator[TcpReceiver]:
    receiver = TcpReceiver()
    try:
        yield receiver.start()
    finally:
        receiver.stop()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under ~107 bytes: a short temp dir, not tmp_path."""
    with tempfile.TemporaryDirectory(prefix="hikd-") as d:
        yield Path(d)


# -- what a message says ---------------------------------------------------------------


def test_udp_messages_parse_with_their_fields(udp_receiver: socket.socket, tmp_path: Path) -> None:
    port = udp_receiver.getsockname()[1]
    sink = make_sink(tmp_path, host="127.0.0.1", port=port, facility="local3")
    assert isinstance(sink, Sink)
    batch = [
        alarm("motion", "start", 3, ODD),
        alarm("motion", "stop", 3),
        alarm("illegal_access", "pulse", None),
        health(NVR, "offline", reason="session heartbeat to the device failed"),
        Event(
            kind="file",
            type="download_done",
            state="pulse",
            device=NVR,
            channel=33,
            files=("/srv/hikd/nvr/33/2024-05-01T10-00.mp4",),
        ),
        Event(
            kind="log",
            type="log",
            state="pulse",
            device=NVR,
            attributes={"description": "Remote: login"},
        ),
    ]
    try:
        sink.open()
        assert sink.send(batch) == len(batch)
        got = [SyslogMessage.parse(udp_receiver.recv(65535).decode()) for _ in batch]
    finally:
        sink.close()

    for message, event in zip(got, batch, strict=True):
        assert message.facility == SyslogFacility.local3
        assert message.version == 1
        assert message.hostname == "hikd-test"
        assert message.appname == "hikd"
        assert message.procid == os.getpid()
        assert message.msgid == event.kind
        assert datetime.fromisoformat(message.timestamp) == event.time
        p = params(message)
        assert (p["id"], p["kind"], p["type"], p["state"]) == (
            event.id,
            event.kind,
            event.type,
            event.state,
        )
        assert p["device"] == event.device.name
        assert p.get("channel") == (None if event.channel is None else str(event.channel))

    first, stop, illegal, offline, download, entry = got
    assert params(first)["device"] == 'gate "north" \\ [east]'  # escaped, read back whole
    assert first.msg == 'motion started on gate "north" \\ [east] channel 3'
    assert first.severity == SyslogSeverity.notice
    assert "serial" not in params(first)
    assert params(stop)["serial"] == NVR.serial
    assert stop.msg == "motion ended on nvr channel 3"
    assert stop.severity == SyslogSeverity.info
    assert illegal.msg == "illegal access on nvr"
    assert illegal.severity == SyslogSeverity.alert
    assert offline.msg == "nvr is offline: session heartbeat to the device failed"
    assert offline.severity == SyslogSeverity.warning
    assert download.msg == "download done on nvr channel 33: /srv/hikd/nvr/33/2024-05-01T10-00.mp4"
    assert download.severity == SyslogSeverity.info
    assert entry.msg == "log on nvr: Remote: login"
    assert entry.severity == SyslogSeverity.info


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (alarm("motion", "start"), "notice"),
        (alarm("line_crossing", "pulse"), "notice"),
        (alarm("tamper", "start"), "warning"),
        (alarm("tamper", "stop"), "info"),
        (alarm("video_loss", "start"), "warning"),
        (alarm("disk_error", "start", None), "err"),
        (alarm("illegal_access", "pulse", None), "alert"),
        # The decoder's names (the table once knew record_error, which nothing emits).
        (alarm("recording_failure", "start"), "err"),
        (alarm("smoke", "start"), "crit"),
        (alarm("bad_video", "start"), "warning"),
        (health(NVR, "online"), "info"),
        (health(NVR, "offline"), "warning"),
        (health(NVR, "auth_failed"), "err"),
        (health(NVR, "alarms_lost", count=3), "err"),
        (health(NVR, "arming_reconnecting", "start"), "warning"),
        (health(NVR, "arming_reconnecting", "stop"), "info"),
        (health(NVR, "relogin", "stop"), "info"),
        (health(NVR, "relogin", "stop", failed=True), "err"),  # could not log in again
        (health(NVR, "arming_stalled", "start"), "warning"),
        (health(NVR, "outbox_unwritable", "start"), "err"),
        (health(NVR, "listen_refused", count=4), "warning"),
        (Event(kind="file", type="download_failed", state="pulse", device=NVR), "err"),
    ],
)
def test_severities(event: Event, expected: str) -> None:
    assert SyslogSeverity(severity(event)).name == expected


def test_sd_escaping_and_sentences() -> None:
    assert sd_escape('a"b\\c]d\ne') == 'a\\"b\\\\c\\]d e'
    assert sentence(alarm("video_loss", "start", 5)) == "video loss started on nvr channel 5"
    assert sentence(alarm("disk_full", "start", None)) == "disk full started on nvr"
    assert sentence(alarm("face_snap", "pulse", 2)) == "face snap on nvr channel 2"
    assert sentence(health(NVR, "online")) == "nvr is online"
    assert sentence(health(NVR, "rearmed")) == "rearmed on nvr"
    command = Command("nvr", "output", 9, on=True)
    refused = command_event(command, CommandResult.refused("nvr has 2 alarm outputs"))
    assert (
        sentence(refused) == "command to nvr: switch output 9 on (refused: nvr has 2 alarm outputs)"
    )
    assert SyslogSeverity(severity(refused)).name == "warning"
    done = command_event(command, CommandResult.done())
    assert sentence(done) == "command to nvr: switch output 9 on (done)"
    assert SyslogSeverity(severity(done)).name == "notice"


def test_udp_long_message_is_cut_to_a_whole_character(
    udp_receiver: socket.socket, tmp_path: Path
) -> None:
    port = udp_receiver.getsockname()[1]
    sink = make_sink(tmp_path, host="127.0.0.1", port=port, max_datagram_bytes=600)
    event = health(NVR, "offline", reason="é" * 2000)
    try:
        assert sink.send([event]) == 1
        data = udp_receiver.recv(65535)
    finally:
        sink.close()
    assert len(data) <= 600
    message = SyslogMessage.parse(data.decode())  # still valid UTF-8 and RFC 5424
    assert params(message)["id"] == event.id
    assert message.msg.startswith("nvr is offline: éé")


# -- UDP outages ------------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # free, and nothing listens once closed


def udp_ids(receiver: socket.socket, want: set[str], timeout: float = 15.0) -> list[str]:
    """The event ids `receiver` gets, in order, until every id in `want` came. Datagrams
    are read as fast as they come and parsed once: a slow reader overflows its buffer."""
    got: list[str] = []
    receiver.settimeout(timeout)
    while not want <= set(got):
        data = [receiver.recv(65535)]
        receiver.setblocking(False)
        try:
            while True:
                data.append(receiver.recv(65535))
        except BlockingIOError:
            pass
        receiver.settimeout(timeout)
        got += [params(SyslogMessage.parse(d.decode()))["id"] for d in data]
    return got


def test_udp_receiver_down_counts_nothing_delivered(tmp_path: Path) -> None:
    """A refused datagram (ICMP port unreachable) is not delivered, on the first send and
    on every retry; once the receiver is back, everything arrives in order."""
    port = free_udp_port()
    sink = make_sink(tmp_path, host="127.0.0.1", port=port)
    batch = [alarm("motion", "start", c) for c in range(1, 4)]
    try:
        sink.open()
        for _ in range(3):  # a retry opened a fresh socket whose first send "succeeded"
            with pytest.raises(SinkUnavailable, match="refused"):
                sink.send(batch)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
            receiver.bind(("127.0.0.1", port))
            deliver_all(sink, batch)
            got = udp_ids(receiver, {e.id for e in batch})
    finally:
        sink.close()
    assert got == [e.id for e in batch]


def test_udp_outage_through_the_bus_loses_nothing_and_is_one_outage(tmp_path: Path) -> None:
    """330 events during a receiver outage were counted delivered and lost, and the sink's
    health started and stopped on every retry; now each arrives once the receiver is back,
    with one sink_unavailable start, one stop and one warning."""
    from structlog.testing import capture_logs

    from hikd.delivery.bus import EventBus
    from hikd.delivery.outbox import Outbox

    port = free_udp_port()
    sink = make_sink(tmp_path, host="127.0.0.1", port=port)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    changes: list[Event] = []
    bus = EventBus(outbox, [("syslog", sink)], changes.append, backoff_first=0.01, backoff_max=0.05)
    events = [alarm("motion", "pulse", c % 16 + 1) for c in range(100)]
    # The receiver stays bound until the bus has stopped: a send after it closed (the
    # sink_unavailable stop itself goes to syslog) would be a second outage.
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with capture_logs() as logs:
            bus.start()
            for event in events:
                bus.publish(event)
            deadline = time.monotonic() + 15
            while bus.stats()["sinks"]["syslog"]["failures"] < 10:  # retried while down
                assert time.monotonic() < deadline, bus.stats()
                time.sleep(0.01)
            receiver.bind(("127.0.0.1", port))
            got = udp_ids(receiver, {e.id for e in events})
            deadline = time.monotonic() + 15
            while len(changes) < 2:
                assert time.monotonic() < deadline, changes
                time.sleep(0.01)
    finally:
        bus.stop(timeout=2)
        receiver.close()
        outbox.close()
    assert [e.id for e in events] == [i for i in got if i in {e.id for e in events}]
    assert [(e.type, e.state) for e in changes] == [
        ("sink_unavailable", "start"),
        ("sink_unavailable", "stop"),
    ]
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1, warnings


# -- TCP -------------------------------------------------------------------------------


def deliver_all(sink: SyslogSink, events: list[Event], tries: int = 10) -> None:
    """What the outbox worker does: send until everything is acknowledged."""
    pending = list(events)
    for _ in range(tries):
        if not pending:
            return
        try:
            pending = pending[sink.send(pending) :]
        except SinkUnavailable:
            continue
    assert not pending, f"{len(pending)} events never delivered"


def test_tcp_receiver_restart_loses_nothing(tcp_receiver: TcpReceiver, tmp_path: Path) -> None:
    sink = make_sink(tmp_path, transport="tcp", host="127.0.0.1", port=tcp_receiver.port)
    first = [alarm("motion", "start", c) for c in range(1, 4)]
    second = [alarm("motion", "stop", c) for c in range(1, 4)]
    try:
        sink.open()
        assert sink.send(first) == 3
        tcp_receiver.wait_for(3)

        tcp_receiver.stop()  # the collector goes away...
        with pytest.raises(SinkUnavailable, match=r"cannot send to syslog at tcp://127\.0\.0\.1"):
            sink.send(second)
        tcp_receiver.start()  # ...and comes back on the same port
        deliver_all(sink, second)
        got = tcp_receiver.wait_for(6)
    finally:
        sink.close()
    ids = [params(SyslogMessage.parse(line))["id"] for line in got]
    assert set(ids) == {e.id for e in first + second}
    assert ids[3:] == [e.id for e in second]  # in order after the reconnect


def test_tcp_non_transparent_framing(tmp_path: Path) -> None:
    receiver = TcpReceiver(framing="non-transparent").start()
    sink = make_sink(
        tmp_path, transport="tcp", host="127.0.0.1", port=receiver.port, framing="non-transparent"
    )
    event = health(NVR, "offline", reason="line one\nline two")
    try:
        assert sink.send([event, alarm("motion", "start")]) == 2
        got = receiver.wait_for(2)
    finally:
        sink.close()
        receiver.stop()
    first = SyslogMessage.parse(got[0])
    assert first.msg == "nvr is offline: line one line two"
    assert params(first)["id"] == event.id


def test_tcp_nobody_listening(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once closed
    sink = make_sink(tmp_path, transport="tcp", host="127.0.0.1", port=port)
    with pytest.raises(SinkUnavailable, match="refused"):
        sink.open()
    with pytest.raises(SinkUnavailable):
        sink.send([alarm("motion", "start")])
    sink.close()


# -- Unix sockets ----------------------------------------------------------------------


def test_unix_datagram(short_dir: Path, tmp_path: Path) -> None:
    path = short_dir / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(5)
        sink = make_sink(tmp_path, transport="unix", socket_path=str(path))
        event = alarm("tamper", "start", 2)
        try:
            sink.open()
            assert sink.send([event]) == 1
            message = SyslogMessage.parse(receiver.recv(65535).decode())
        finally:
            sink.close()
    assert params(message)["id"] == event.id
    assert message.severity == SyslogSeverity.warning
    assert message.facility == SyslogFacility.daemon


def test_unix_stream_fallback(short_dir: Path, tmp_path: Path) -> None:
    path = short_dir / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        listener.settimeout(5)
        sink = make_sink(tmp_path, transport="unix", socket_path=str(path))
        batch = [alarm("motion", "start", 1), alarm("motion", "stop", 1)]
        try:
            assert sink.send(batch) == 2
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                data = b""
                while data.count(b"\n") < 2:
                    chunk = conn.recv(65536)
                    assert chunk, "connection closed early"
                    data += chunk
        finally:
            sink.close()
    lines = data.decode().splitlines()
    assert [params(SyslogMessage.parse(line))["id"] for line in lines] == [e.id for e in batch]


def test_unix_socket_missing(short_dir: Path, tmp_path: Path) -> None:
    sink = make_sink(tmp_path, transport="unix", socket_path=str(short_dir / "nothing"))
    with pytest.raises(SinkUnavailable, match="No such file"):
        sink.open()


# -- config ----------------------------------------------------------------------------


def test_config() -> None:
    default = SyslogConfig()
    assert (default.transport, default.port, default.facility) == ("udp", 514, 3)
    assert default.socket_path == Path("/dev/log")
    assert default.framing == "octet-counting"
    assert default.hostname == socket.gethostname()
    assert SyslogConfig.model_validate({"facility": "local7"}).facility == 23
    assert SyslogConfig(facility=16).facility == 16
    assert SyslogConfig.model_validate({"facility": "4"}).facility == 4
    for bad in ({"facility": "nope"}, {"facility": 24}, {"transport": "tls"}, {"colour": 1}):
        with pytest.raises(ValidationError):
            SyslogConfig(**bad)
