"""Alarms end to end: the real vendor library, hikd.sim, the daemon and the disk sink.

Arming (SetupAlarmChan_V41) and listening (StartListen_V30) both run through the real
library; every event is read back from the disk sink's JSON lines, as a user would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hikd.config import load_config
from hikd.daemon import Daemon
from hikd.sdk.library import Library
from hikd.sdk.raw import RawAlarm
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import SimAlert
from tests.shim import ROUTES, use_route
from tests.support import free_port, wait_for

PASSWORD = "Alarm-Test-1"


def read_events(directory: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                events.append(json.loads(line))
    return events


class Running:
    def __init__(self, daemon: Daemon, events_dir: Path) -> None:
        self.daemon = daemon
        self.events_dir = events_dir
        self.stopped = False

    def stop(self) -> None:
        """Stop the daemon now (as a restart of hikd does); the fixture then leaves it."""
        if not self.stopped:
            self.stopped = True
            self.daemon.stop()

    def events(self, **match: Any) -> list[dict[str, Any]]:
        found = read_events(self.events_dir)
        return [e for e in found if all(e.get(k) == v for k, v in match.items())]

    def wait_event(self, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        assert wait_for(lambda: bool(self.events(**match)), timeout), (
            f"no event {match}; got {[(e['type'], e['state']) for e in self.events()]}"
        )
        return self.events(**match)[0]


@pytest.fixture
def run_daemon(
    sdk: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Running]]:
    runs: list[Running] = []

    def start(
        sim: Simulator | None, extra: str = "", arm: bool = True, device_extra: str = ""
    ) -> Running:
        state = tmp_path / "state"
        events_dir = tmp_path / "events"
        lines = [
            "[daemon]",
            f'state_dir = "{state}"',
            "[alarms.hold_s]",
            "default = 3",
            "[sinks.disk]",
            f'path = "{events_dir}"',
            extra,
        ]
        for dev in sim.devices if sim else []:
            monkeypatch.setenv(f"HIKD_PASSWORD_{dev.name.upper()}", PASSWORD)
            lines += [
                "[[devices]]",
                f'name = "{dev.name}"',
                'host = "127.0.0.1"',
                f"port = {dev.port}",
                f"arm = {'true' if arm else 'false'}",
                "reconnect_min_s = 0.2",
                device_extra,
            ]
        path = tmp_path / "hikd.toml"
        path.write_text("\n".join(lines) + "\n")
        daemon = Daemon(load_config(path), sdk=sdk)
        running = Running(daemon, events_dir)
        runs.append(running)
        daemon.start()
        return running

    try:
        yield start
    finally:
        for running in runs:
            running.stop()


def nvr(name: str = "nvr", **overrides: Any) -> SimDeviceConfig:
    values: dict[str, Any] = {
        "name": name,
        "password": PASSWORD,
        "ip_channels": 4,
        "alarm_inputs": 2,
        "utc_offset_minutes": 60,
    }
    values.update(overrides)
    return SimDeviceConfig(**values)


# (simulator event type, channel, format, pictures) -> (hikd type, channel in the event)
ARMING_CASES = [
    ("VMD", 1, "xml", 0, "motion", 1),
    ("linedetection", 2, "json", 1, "line_crossing", 2),
    ("fielddetection", 3, "xml", 2, "intrusion", 3),
    ("tamperdetection", 4, "json", 0, "tamper", 4),
    ("IO", 2, "xml", 0, "io", None),
    ("facedetection", 1, "xml", 1, "face_detection", 1),
    ("regionEntrance", 2, "json", 0, "region_entrance", 2),
    ("PIR", 1, "json", 0, "pir", 1),
    ("diskfull", 1, "xml", 0, "disk_full", None),
    ("totallyNewThing", 3, "xml", 0, "unknown", 3),
]


@pytest.mark.parametrize("route", ROUTES)
def test_arming_delivers_every_event_type_to_the_disk_sink(
    start_sim: Callable[..., Simulator],
    run_daemon: Callable[..., Running],
    monkeypatch: pytest.MonkeyPatch,
    route: str,
) -> None:
    """On both routes of the alarm callback (C and Python), pictures included."""
    use_route(route, monkeypatch)
    sim = start_sim(nvr())
    device = sim.devices[0]
    running = run_daemon(sim)
    assert running.daemon.pipeline is not None
    assert running.daemon.pipeline.callback_route == route
    assert device.wait_for_streams(1, timeout=15), "the daemon did not arm the device"
    armed = running.wait_event(type="armed")
    assert armed["device"]["serial"] == device.config.serial_number

    for sim_type, channel, fmt, pictures, _type, _channel in ARMING_CASES:
        device.trigger(type=sim_type, channel=channel, state="active", pictures=pictures, fmt=fmt)

    for sim_type, _ch, _fmt, pictures, hikd_type, channel in ARMING_CASES:
        event = running.wait_event(
            type=hikd_type, state="start" if hikd_type != "unknown" else "pulse"
        )
        assert event["kind"] == "alarm", (sim_type, event)
        assert event["device"]["name"] == "nvr"
        assert event["device"]["serial"] == device.config.serial_number
        if channel is not None:
            assert event["channel"] == channel, (sim_type, event)
        time = datetime.fromisoformat(event["time"])
        assert time.utcoffset() is not None and time.utcoffset().total_seconds() == 3600
        assert datetime.fromisoformat(event["received"]).tzinfo is not None
        assert len(event["files"]) == pictures, (sim_type, event["files"])
        for picture in event["files"]:
            data = Path(picture).read_bytes()
            # A whole JPEG, without the CRLF the library leaves after each part.
            assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9"), picture
    io = running.events(type="io")[0]
    assert io["attributes"]["alarm_input"] == 2
    unknown = running.events(type="unknown")[0]
    assert "totallyNewThing" in json.dumps(unknown)

    # A device that says the alarm ended: a stop follows the start.
    device.trigger(type="VMD", channel=1, state="inactive")
    stop = running.wait_event(type="motion", state="stop")
    assert stop["channel"] == 1


def test_repeated_actives_are_one_start_and_a_stop_after_the_hold(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    sim = start_sim(nvr())
    device = sim.devices[0]
    running = run_daemon(sim)
    assert device.wait_for_streams(1, timeout=15)
    for _ in range(5):
        device.trigger(type="VMD", channel=2, state="active")
    stop = running.wait_event(type="motion", state="stop", timeout=20)
    assert stop["attributes"].get("ended_by") == "hold_timeout"
    assert len(running.events(type="motion", state="start")) == 1


@pytest.mark.parametrize("route", ROUTES)
def test_listen_mode_accepts_allowed_senders_and_drops_the_others(
    start_sim: Callable[..., Simulator],
    run_daemon: Callable[..., Running],
    monkeypatch: pytest.MonkeyPatch,
    route: str,
) -> None:
    use_route(route, monkeypatch)
    sim = start_sim(nvr("pusher"))
    device = sim.devices[0]
    open_port, closed_port = free_port(), free_port()
    listen = (
        f'[[listen]]\naddress = "127.0.0.1"\nport = {open_port}\nallowed = ["127.0.0.1"]\n'
        f'[[listen]]\naddress = "127.0.0.1"\nport = {closed_port}\nallowed = ["192.0.2.7"]\n'
    )
    running = run_daemon(sim, extra=listen, arm=False)
    assert running.daemon.pipeline is not None
    assert running.daemon.pipeline.callback_route == route
    heard: list[RawAlarm] = []  # what the callback copied, as the decoder takes it
    running.daemon.pipeline.part_watchers.append(lambda _device, raw: heard.append(raw))
    for form, pictures in (("xml", 0), ("json", 0), ("multipart", 1)):
        alert = SimAlert(
            type="linedetection",
            channel=3,
            pictures=pictures,
            fmt="json" if form == "json" else "xml",
        )
        device.push_to("127.0.0.1", open_port, alert, form=form)  # type: ignore[arg-type]
    # Three pushes of the same active alarm: one start, and the multipart one's picture
    # reaches the sink as a pulse of the open alarm.
    start = running.wait_event(type="line_crossing", state="start")
    assert start["device"]["name"] == "pusher" and start["channel"] == 3
    pulse = running.wait_event(type="line_crossing", state="pulse")
    assert pulse["attributes"]["repeat_of"] == start["id"]
    assert len(pulse["files"]) == 1 and Path(pulse["files"][0]).read_bytes()[:2] == b"\xff\xd8"
    assert len(running.events(type="line_crossing", state="start")) == 1
    # The library passes each StartListen_V30's pUser to its callback: the C route reads
    # the listen port from it (the Python route from its callback object).
    assert {(raw.source, raw.listen_port) for raw in heard} == {("listen", open_port)}
    closed = running.daemon.listeners[1].front
    assert closed is not None and all(s.alive() for s in running.daemon.listeners)

    result = device.push_to("127.0.0.1", closed_port, SimAlert(type="VMD", channel=1))
    assert result.status is None  # cut off before its request was read: no answer
    assert closed.refused_by_sender["127.0.0.1"] == 1
    refused = running.wait_event(type="listen_refused")
    assert refused["attributes"]["sender"] == "127.0.0.1"
    assert refused["attributes"]["reason"] == "not allowed"

    # A program on this machine that skips the front and talks to the library's loopback
    # port: the library takes it, hikd drops it (it cannot tell who sent it).
    library_port = running.daemon.listeners[0].library_port
    device.push_to("127.0.0.1", library_port, SimAlert(type="VMD", channel=2))
    pipeline = running.daemon.pipeline
    assert pipeline is not None
    assert wait_for(lambda: pipeline.counters["listen_unvetted"] == 1)
    assert not running.events(type="motion")


def test_killed_device_reconnects_and_arming_resumes_by_itself(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    port = free_port()
    sim = start_sim(nvr("phoenix", port=port))
    running = run_daemon(sim)
    assert sim.devices[0].wait_for_streams(1, timeout=15)
    sim.devices[0].trigger(type="VMD", channel=1)
    running.wait_event(type="motion", state="start")

    sim.stop()  # like SIGKILL: every connection cut, sessions forgotten
    running.wait_event(type="arming_reconnecting", state="start", timeout=20)

    reborn = start_sim(nvr("phoenix", port=port))
    assert reborn.devices[0].wait_for_streams(1, timeout=30), "arming did not resume"
    running.wait_event(type="rearmed", timeout=20)
    reborn.devices[0].trigger(type="fielddetection", channel=2)
    event = running.wait_event(type="intrusion", state="start")
    assert event["device"]["name"] == "phoenix"


def test_a_device_that_refuses_arming_is_retried_and_holds_up_no_other(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    sim = start_sim(nvr("refuser"), nvr("willing"))
    refuser, willing = sim.devices
    refuser.alert_stream_status = 404  # no alertStream: the library says error 23
    running = run_daemon(sim, extra="[arming]\nretry_s = 0.5\n")
    failed = running.wait_event(type="arming_failed")
    assert failed["device"]["name"] == "refuser" and failed["attributes"]["code"] == 23
    # The other device was armed and delivers meanwhile.
    assert willing.wait_for_streams(1, timeout=15)
    willing.trigger(type="VMD", channel=1)
    running.wait_event(type="motion", state="start")
    # Once the device accepts, the retry arms it without a restart.
    refuser.alert_stream_status = 200
    assert refuser.wait_for_streams(1, timeout=15)
    assert wait_for(
        lambda: any(e["device"]["name"] == "refuser" for e in running.events(type="armed"))
    )
