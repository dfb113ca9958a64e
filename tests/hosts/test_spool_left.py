"""Pushes a listen port answered `200` and no device host stored, kept in its spool, when the
port is no longer in the configuration at the next start (removed, or moved to another
port): relayed through a port that is configured, or, without any, one line that says what
to do. `hikd run` with the real vendor library and hikd.sim; the spool as a run before would
leave it (`hikd.listeners.spool`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.listeners.relayed import Relayed
from hikd.listeners.spool import Spool
from hikd.listeners.spool_file import pending, spool_path
from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess, disk_events
from tests.hosts.configs import pushing_device_config
from tests.support import free_port, wait_until

DEVICE = "door"


def alert(number: int) -> bytes:
    return (
        b"<EventNotificationAlert><channelID>1</channelID><eventType>VMD</eventType>"
        b"<eventState>active</eventState><push_no>%d</push_no></EventNotificationAlert>" % number
    )


def leave_spool(state: Path, port: int, numbers: list[int]) -> Path:
    """The spool a run before leaves for `port`: pushes answered, not stored."""
    state.mkdir(parents=True, exist_ok=True)
    spool = Spool(spool_path(state, port))
    spool.open()
    for number in numbers:
        spool.add(Relayed("127.0.0.1", "/", "application/xml", alert(number), 1, time.monotonic()))
    spool.sync()
    spool.close()
    return spool.path


def log_lines(hikd: HikdProcess, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in hikd.output().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event", "").startswith(event)]


def test_a_removed_listen_ports_pushes_are_relayed_through_the_port_configured_now(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator([SimDeviceConfig(name=DEVICE, password=SECRET)]).start()
    try:
        state, old_port, port = tmp_path / "state", free_port(), free_port()
        left = leave_spool(state, old_port, [1, 2, 3])
        config = tmp_path / "hikd.toml"
        config.write_text(pushing_device_config(config, DEVICE, sim.devices[0].port, port))
        hikd = run_hikd(config, sim)

        def delivered() -> list[int]:
            return sorted(
                int(e["attributes"]["push_no"])
                for e in disk_events(state)
                if e["kind"] == "alarm" and "push_no" in e.get("attributes", {})
            )

        wait_until(lambda: delivered() == [1, 2, 3], "the left pushes on disk", START_TIMEOUT_S)
        # Like any push read back after a stop, marked: a host may have stored it before.
        assert all(
            e["attributes"].get("resent") for e in disk_events(state) if e["kind"] == "alarm"
        )
        (line,) = log_lines(hikd, "pushed alarms kept for a listen port that is no longer")
        assert (line["port"], line["count"]) == (old_port, 3), line
        assert not left.exists()  # taken over by the port configured now, not twice
        wait_until(
            lambda: not pending(spool_path(state, port).read_bytes()), "stored and forgotten", 30
        )
    finally:
        sim.stop()


def test_without_a_listen_port_one_line_says_what_to_do_and_nothing_is_deleted(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator([SimDeviceConfig(name=DEVICE, password=SECRET)]).start()
    try:
        state, old_port = tmp_path / "state", free_port()
        left = leave_spool(state, old_port, [1, 2])
        before = left.read_bytes()
        config = tmp_path / "hikd.toml"
        text = pushing_device_config(config, DEVICE, sim.devices[0].port, old_port)
        config.write_text(text[: text.index("[[listen]]")])
        hikd = run_hikd(config, sim)
        event = "pushed alarms answered on a listen port that is no longer configured"
        wait_until(lambda: log_lines(hikd, event) != [], "the warning", START_TIMEOUT_S)
        (line,) = log_lines(hikd, event)
        assert (line["port"], line["count"], line["path"]) == (old_port, 2, str(left)), line
        assert "[[listen]]" in line["hint"]
        hikd.stop()
        assert left.read_bytes() == before
    finally:
        sim.stop()
