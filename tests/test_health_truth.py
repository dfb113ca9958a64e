"""The retained MQTT health tells the truth: one topic per concern and a summary.

The real vendor library polls hikd.sim (status job, session checks); every event goes
through the real MQTT sink to a real mosquitto; what a late subscriber finds retained is
what is true now — a periodic status poll never hides a failed disk or an offline
device, and a recovery ends the failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hikd.devices.session import DeviceSession
from hikd.events import DeviceRef, Event, health
from hikd.health import HealthBoard
from hikd.recorders.status import StatusConfig, StatusJob
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, SimDisk, Simulator
from hikd.state import StateStore
from tests.mosquitto import Mosquitto, retained
from tests.sinks.mqtt.test_mqtt import SinkFactory, broker, make_sink
from tests.standin.jobs import Events, job_context
from tests.support import device_config, free_port

pytest_plugins = ["tests.standin.fixtures"]
__all__ = ["broker", "make_sink"]  # the MQTT fixtures of test_sink_mqtt, shared


def health_now(broker: Mosquitto) -> dict[str, Any]:
    """Every retained health topic of device ``nvr``, decoded."""
    kept = retained(broker, "hikd/nvr/health/#")
    prefix = "hikd/nvr/health"
    return {
        t.removeprefix(prefix).lstrip("/") or "summary": json.loads(m.payload)
        for t, m in kept.items()
    }


def test_a_status_poll_never_hides_a_failure_and_a_recovery_ends_it(
    sdk: Library,
    start_sim: Callable[..., Simulator],
    broker: Mosquitto,
    make_sink: SinkFactory,
    state_store: StateStore,
) -> None:
    sink = make_sink(broker)
    sink.open()
    port = free_port()
    config = SimDeviceConfig(name="nvr", port=port, disks=[SimDisk(id=1), SimDisk(id=2)])
    sim = start_sim(config)
    session_events = Events()
    session = DeviceSession(sdk, device_config(sim), session_events)
    session.login_once()
    job = StatusJob(StatusConfig())

    def poll() -> None:
        ctx, events = job_context(session, state_store, job="status")
        job.run(ctx)
        batch = [*session_events, *events]
        session_events.clear()
        assert sink.send(batch) == len(batch)

    try:
        poll()
        sim.devices[0].set_disk_status(2, "error")
        poll()
        poll()  # the periodic poll again: no news, but a status event
        now = health_now(broker)
        assert now["disk/2"]["state"] == "problem"
        assert now["disk/2"]["problems"][0]["type"] == "disk_error"
        assert now["disk/1"]["state"] == "ok"
        assert now["status"]["state"] == "ok"
        assert now["summary"]["state"] == "problem"
        assert now["summary"]["problems"] == ["disk/2"]

        sim.stop()  # the device goes away
        poll()
        now = health_now(broker)
        assert now["connectivity"]["state"] == "problem"
        assert now["summary"]["problems"] == ["connectivity", "disk/2"]

        sim = start_sim(config)  # back, with its disk repaired
        poll()
        now = health_now(broker)
        assert now["connectivity"]["state"] == "ok"
        assert now["disk/2"]["state"] == "ok"
        assert now["summary"] == {
            "state": "ok",
            "problems": [],
            "concerns": {"connectivity": "ok", "disk/1": "ok", "disk/2": "ok", "status": "ok"},
        }
    finally:
        session.close()


NVR = DeviceRef("nvr", "SERIAL", "127.0.0.1:80")


def board_after(*events: Event) -> dict[str, str]:
    board = HealthBoard()
    for event in events:
        board.apply(event)
    return board.summary()["concerns"]  # type: ignore[no-any-return]


def test_each_concern_has_its_own_state() -> None:
    assert board_after(health(NVR, "armed"), health(NVR, "disarmed")) == {"arming": "problem"}
    assert board_after(
        health(NVR, "online"),
        health(NVR, "armed"),
        health(NVR, "arming_reconnecting", "start"),
        health(NVR, "alarms_lost", count=3),  # a one-off note: no concern
        Event(kind="health", type="channel_not_recording", state="start", device=NVR, channel=3),
        Event(kind="health", type="channel_not_recording", state="start", device=NVR, channel=4),
        Event(kind="health", type="channel_not_recording", state="stop", device=NVR, channel=3),
    ) == {"arming": "problem", "connectivity": "ok", "recording": "problem"}
    assert board_after(
        health(NVR, "auth_failed", retries_left=3),
        health(NVR, "arming_reconnecting", "start"),
        health(NVR, "arming_reconnecting", "stop"),
        health(NVR, "sink_unavailable", "start", sink="mqtt"),
        health(NVR, "sink_unavailable", "stop", sink="mqtt"),
        health(NVR, "status", available=False, reason="189"),
    ) == {"arming": "ok", "connectivity": "problem", "sink/mqtt": "ok", "status": "problem"}
