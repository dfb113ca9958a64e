"""The listen front against what the hostile-sender tests (test_front.py) leave out: many
senders at once, a port check, and multipart bodies as the library would misread them.
`hikd run` with the real vendor library and hikd.sim."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.listeners.front import MAX_CONNECTIONS, MAX_PER_SENDER
from hikd.sim import SimDeviceConfig, Simulator, hostile
from hikd.sim.alerts import SimAlert
from hikd.sim.push import PushResult
from tests.listeners.test_front import DEVICE, PASSWORD, Hikd, events, write_config
from tests.listeners.test_front import run_hikd as run_hikd  # the fixture
from tests.support import free_port, wait_for


def start(
    tmp_path: Path,
    start_sim: Callable[..., Simulator],
    run_hikd: Callable[[Path], Hikd],
    limits: str = "",
) -> tuple[Hikd, Any, int, Path]:
    sim = start_sim(SimDeviceConfig(name="pusher", password=PASSWORD, ip_channels=4))
    device = sim.devices[0]
    port = free_port()
    config = write_config(tmp_path, device.port, port, 'allowed = ["127.0.0.0/24"]\n' + limits)
    return run_hikd(config), device, port, tmp_path / "state"


def motion_starts(state: Path) -> list[int]:
    return sorted(
        e["channel"] for e in events(state) if e["type"] == "motion" and e["state"] == "start"
    )


def test_a_device_that_pushes_while_every_place_is_taken_waits_its_turn(
    tmp_path: Path, start_sim: Callable[..., Simulator], run_hikd: Callable[[Path], Hikd]
) -> None:
    """More senders at once than the front reads requests of (each place can hold a body of
    max_body_bytes): the next push waits for a place instead of a `503` that, the guide says
    nothing of a device sending again, lost the alarm (a power cut's end, every camera)."""
    # The crowd's requests stay unfinished for the whole test (the front gives their places
    # up after read_timeout_s).
    hikd, device, port, state = start(tmp_path, start_sim, run_hikd, "read_timeout_s = 120\n")
    senders = [f"127.0.0.{10 + i}" for i in range(MAX_CONNECTIONS // MAX_PER_SENDER + 1)]
    crowd: list[socket.socket] = []
    answer: list[PushResult] = []
    try:
        for source in senders:  # each holds its places with a request it does not finish
            crowd += [hostile.connect(DEVICE, port, source) for _ in range(MAX_PER_SENDER)]
        time.sleep(1.0)  # the front has taken them all (else the push below gets a place)
        pushing = threading.Thread(
            target=lambda: answer.append(device.push_to(DEVICE, port, SimAlert(channel=2)))
        )
        pushing.start()
        time.sleep(1.0)  # it waits for a place
        assert answer == [], answer  # (before: 503 at once)
    finally:
        for sock in crowd:
            with contextlib.suppress(OSError):
                sock.close()
    pushing.join(30)
    assert [a.status for a in answer] == [200], answer
    assert wait_for(lambda: motion_starts(state) == [2], timeout=30), hikd.output()[-3000:]
    assert hikd.stop() == 0, hikd.output()[-3000:]


def test_a_connection_closed_before_a_byte_is_no_refusal(
    tmp_path: Path, start_sim: Callable[..., Simulator], run_hikd: Callable[[Path], Hikd]
) -> None:
    """A port check (a TCP connect, then close) from an allowed address: not a refused push,
    no log line; one that sent part of a request and closed is."""
    hikd, device, port, state = start(tmp_path, start_sim, run_hikd)
    for _ in range(3):
        socket.create_connection((DEVICE, port), timeout=10).close()
    assert device.push_to(DEVICE, port, SimAlert(channel=1)).status == 200
    hostile.connect(DEVICE, port, "127.0.0.7").close()  # "POST / HTTP/1.1\r\n", then closed

    def refused() -> list[dict[str, Any]]:
        return [e["attributes"] for e in events(state) if e["type"] == "listen_refused"]

    assert wait_for(lambda: motion_starts(state) == [1] and refused() != [], timeout=30)
    assert hikd.stop() == 0, hikd.output()[-3000:]
    assert [(r["sender"], r["reason"]) for r in refused()] == [
        ("127.0.0.7", "connection closed before the request was complete")
    ]
    log = [json.loads(line) for line in hikd.output().splitlines() if line.startswith("{")]
    assert [e["sender"] for e in log if e["event"] == "pushed alarm refused"] == ["127.0.0.7"]


ALERT = (
    b"<EventNotificationAlert><channelID>3</channelID><eventType>VMD</eventType>"
    b"<eventState>active</eventState></EventNotificationAlert>"
)
JPEG = b"\xff\xd8\xff\xe0" + bytes(64) + b"\xff\xd9"


def test_a_multipart_with_its_picture_first_is_delivered_as_its_alarm(
    tmp_path: Path, start_sim: Callable[..., Simulator], run_hikd: Callable[[Path], Hikd]
) -> None:
    """The library takes a multipart's first part for the alarm (a picture first: the
    picture's bytes came as the alarm, and the alarm was lost). The front relays the alarm
    document first, then the pictures as they came."""
    hikd, _device, port, state = start(tmp_path, start_sim, run_hikd)
    body = hostile.multipart([("image/jpeg", JPEG), ("application/xml", ALERT)])
    assert hostile.send(DEVICE, port, body, source=DEVICE).status == 200
    assert wait_for(lambda: motion_starts(state) == [3], timeout=30), hikd.output()[-3000:]
    assert hikd.stop() == 0, hikd.output()[-3000:]


def test_http_a_device_may_send_and_what_it_may_not(
    tmp_path: Path, start_sim: Callable[..., Simulator], run_hikd: Callable[[Path], Hikd]
) -> None:
    """Framings the hostile-sender test leaves out, each with its answer; what is answered
    `200` is delivered once, and an allowed device's alarms keep arriving in between."""
    hikd, device, port, state = start(tmp_path, start_sim, run_hikd)
    alert = ALERT.replace(b"<channelID>3<", b"<channelID>1<")
    post = hostile.post(alert)
    head, body = post.split(b"\r\n\r\n", 1)

    def send(data: bytes) -> int | None:
        return hostile.send(DEVICE, port, data, source=DEVICE).status

    # Two requests on one connection: the first is answered (Connection: close), the second
    # is not read (a client sends it again on a new connection).
    assert send(post + post.replace(b"<channelID>1<", b"<channelID>4<")) == 200
    # Expect: 100-continue: "100 Continue" first, then the answer.
    with socket.create_connection((DEVICE, port), timeout=10) as sock:
        sock.sendall(
            head.replace(b"\r\nContent-Length", b"\r\nExpect: 100-continue\r\nContent-Length")
            + b"\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        assert b"HTTP/1.1 200 OK" in sock.recv(100)
    assert device.push_to(DEVICE, port, SimAlert(channel=2)).status == 200
    # A header folded over two lines (obsolete in HTTP/1.1): 400.
    assert send(post.replace(b"Host: alarm-host\r\n", b"Host: alarm-\r\n host\r\n")) == 400
    # Chunked, with odd chunk sizes and a trailer: 411 (the library reads no chunked body).
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(alert[i : i + 7]), alert[i : i + 7]) for i in range(0, len(alert), 7)
    )
    assert (
        send(
            head.replace(b"Content-Length: %d" % len(alert), b"Transfer-Encoding: chunked")
            + b"\r\n\r\n"
            + chunked
            + b"0\r\nX-Trailer: 1\r\n\r\n"
        )
        == 411
    )
    # Half-closed after the request (`send` shuts its side): answered all the same.
    assert send(post.replace(b"<channelID>1<", b"<channelID>3<")) == 200

    def starts() -> list[int]:
        return motion_starts(state)

    assert wait_for(lambda: starts() == [1, 2, 3], timeout=30), (starts(), hikd.output()[-3000:])
    assert hikd.stop() == 0, hikd.output()[-3000:]
    assert starts() == [1, 2, 3]  # channel 4 (pipelined) never, channel 1 once
