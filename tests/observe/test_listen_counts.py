"""The listen front's numbers where a user looks (README "The listen front"): `hikd status`
(and ``--json``), /metrics, and the ``listen_counts`` health event. `hikd run` with the real
vendor library in its device host, hikd.sim pushing, a sender that is not allowed, a request
that is not an alarm."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.cli.status import ask_daemon, render
from hikd.config.observe import socket_path
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import SimAlert
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess, disk_events
from tests.observe.test_metrics import scrape, value
from tests.support import free_port, wait_until


def post(port: int, body: bytes, source: str = "127.0.0.1") -> bytes:
    """One request from `source`; the status line's code (b"" when the connection was cut)."""
    request = (
        b"POST / HTTP/1.1\r\nHost: hikd\r\nContent-Type: application/xml\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as c:
        try:
            c.sendall(request)
            return c.recv(4096).split(b" ")[1]
        except (ConnectionError, IndexError):
            return b""


def test_status_metrics_and_health_say_what_the_listen_front_did(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator([SimDeviceConfig(name="door", password=SECRET)]).start()
    try:
        device, port, metrics, state = sim.devices[0], free_port(), free_port(), tmp_path / "state"
        run = tmp_path / "run"
        config = tmp_path / "hikd.toml"
        config.write_text(
            f'[daemon]\nstate_dir = "{state}"\nruntime_dir = "{run}"\n[logging]\nformat = "json"\n'
            f"[metrics]\nenabled = true\nport = {metrics}\n"
            f'[sinks.disk]\npath = "{state / "events"}"\n'
            f'[[devices]]\nname = "door"\nhost = "127.0.0.1"\nport = {device.port}\narm = false\n'
            f'[[listen]]\naddress = "127.0.0.1"\nport = {port}\nallowed = ["127.0.0.1"]\n'
        )
        hikd = run_hikd(config, sim)
        answered: list[int | None] = []

        def push() -> bool:
            answered.append(device.push_to("127.0.0.1", port, SimAlert(type="VMD")).status)
            return answered[-1] == 200

        wait_until(push, "the front relaying", START_TIMEOUT_S)
        for _ in range(2):
            push()
        accepted = answered.count(200)
        assert post(port, b"<Nothing/>") == b"400"  # vetted: not an alarm
        for _ in range(2):  # cut off before a byte is read, twice: one sender
            assert post(port, b"<x/>", source="127.0.0.2") == b""

        def front() -> dict[str, Any]:
            doc = ask_daemon(None, {"get": "status"}, path=socket_path(run))
            assert doc is not None
            (row,) = doc["listen"]
            return dict(row)

        with contextlib.suppress(AssertionError):
            wait_until(lambda: front()["kept"] == 0, "the pushes stored", 30)
        assert front()["kept"] == 0, (front(), hikd.output())
        row = front()
        assert row["port"] == port and row["accepted"] == accepted, row
        assert row["refused"] == {
            "not an alarm (no EventNotificationAlert or eventType)": 1,
            "not allowed": 2,
        }
        assert row["dropped_senders"] == 1 and row["kept_bytes"] == 0 and row["resent"] == 0
        doc = ask_daemon(None, {"get": "status"}, path=socket_path(run))
        assert doc is not None
        text = render(doc)
        assert "listen port" in text and "dropped senders" in text, text

        samples = scrape(metrics)
        assert value(samples, "hikd_listen_accepted_total", port=str(port)) == accepted
        assert value(samples, "hikd_listen_dropped_senders", port=str(port)) == 1
        assert value(samples, "hikd_listen_kept_pushes", port=str(port)) == 0

        hikd.stop()  # the last numbers go out as a health event at the stop
        (counts,) = [e for e in disk_events(state) if e["type"] == "listen_counts"]
        assert counts["device"]["name"] == "hikd"
        assert counts["attributes"]["accepted"] == accepted
        assert counts["attributes"]["dropped_senders"] == 1
    finally:
        sim.stop()
