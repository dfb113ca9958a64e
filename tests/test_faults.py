"""The fault test of issue 8: while alarms flow, the broker is killed and restarted, a
device's session is killed (the device forgets it and closes its alert streams) and the
simulated device itself is killed and restarted on the same port. Every alarm hikd
accepted reaches the disk sink and the MQTT subscriber, with the same id.

Bounded (a few hundred alarms, one device, one broker, loopback) and under a minute.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import (
    EVENTS,
    SECRET,
    START_TIMEOUT_S,
    HikdProcess,
    LosslessSubscriber,
    disk_events,
    wait_all_delivered,
    write_config,
)
from tests.mosquitto import Mosquitto
from tests.support import wait_until

RATE_S = 0.01
"""One alarm every 10 ms (the trigger loop's pause)."""


class AlarmFlow:
    """Triggers motion alarms on the current device from a thread, whatever happens to it
    (a trigger on a stopped simulator fails and the loop goes on)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.written = 0  # alarms written into at least one open alert stream
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarm-flow", daemon=True)

    def _run(self) -> None:
        channel = 0
        while not self._stop.wait(RATE_S):
            channel = channel % 4 + 1
            try:
                sent = self.sim.devices[0].trigger("VMD", channel=channel)
            except Exception:  # the simulator is down right now
                continue
            if sent.streams:
                self.written += 1

    def __enter__(self) -> AlarmFlow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def alarm_ids(events: list[dict[str, object]]) -> set[str]:
    return {str(e["id"]) for e in events if e["kind"] == "alarm"}


def settled(
    sub: LosslessSubscriber, state: Path, hikd: HikdProcess
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events on disk and those received over MQTT, once every event on disk has reached
    the subscriber, the alarms of both sides are the same, and that still holds a second
    later (nothing more came in between)."""
    last: tuple[set[str], set[str]] | None = None
    deadline = time.monotonic() + 60
    while True:
        wait_all_delivered(sub, state, hikd)
        written = disk_events(state)
        received = [json.loads(p) for p in sub.payloads("hikd/nvr/events")]
        now = ({str(e["id"]) for e in written}, alarm_ids(received))
        if now == last and alarm_ids(written) == now[1]:
            return written, received
        if time.monotonic() >= deadline:
            return written, received  # the caller's assertions say what differs
        last = now
        time.sleep(1.0)


def test_broker_device_and_session_killed_while_alarms_flow(
    tmp_path: Path,
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    device = SimDeviceConfig(name="nvr", password=SECRET)
    sims: list[Simulator] = [Simulator([device]).start()]
    try:
        state = tmp_path / "state"
        config = write_config(tmp_path / "hikd.toml", sims[0], state, broker, hold_s=0)
        with config.open("a") as f:  # recover quickly: the faults come one after the other
            f.write("\n[sdk]\nreconnect_interval_ms = 500\n[arming]\nretry_s = 1\n")
        sub = subscribe(EVENTS)
        hikd = run_hikd(config, sims[0])
        assert sims[0].devices[0].wait_for_streams(1, timeout=START_TIMEOUT_S), hikd.output()

        def accepted() -> int:
            return len(alarm_ids(disk_events(state)))

        def outages(state: Path) -> int:
            return sum(e["type"] == "sink_unavailable" for e in disk_events(state))

        def more_accepted(than: int, what: str) -> int:
            """hikd accepts alarms again after a fault: the flow goes on."""
            wait_until(lambda: accepted() >= than + 20, what, 30)
            return accepted()

        with AlarmFlow(sims[0]) as flow:
            seen = more_accepted(0, "alarms before any fault")

            broker.stop()  # 1. the broker dies and comes back (same port, same store)
            seen = more_accepted(seen, "alarms while the broker is down")
            # Down until hikd has said so: the MQTT sink waits for the broker up to
            # publish_timeout_s before it reports an outage, and a batch cut by the outage
            # may end with part of it delivered (no report), so 20 alarms may come sooner.
            wait_until(lambda: outages(state) > 0, "the broker outage reported", 30)
            broker.start()

            dev = sims[0].devices[0]  # 2. the device forgets the session, drops the streams
            dev.forget_sessions()
            dev.alarms.close_streams()
            seen = more_accepted(seen, "alarms after the session was killed")

            port = dev.port  # 3. the device dies and another starts on its port
            sims[0].stop()
            restarted = Simulator([device.model_copy(update={"port": port})]).start()
            sims.append(restarted)
            flow.sim = restarted
            assert restarted.devices[0].wait_for_streams(1, timeout=30), hikd.output()
            seen = more_accepted(seen, "alarms from the restarted device")
        assert hikd.process.poll() is None, hikd.output()
        assert flow.written > 0

        # hikd goes on publishing for a while after the flow stops (alarms' stops, alarms
        # read back from the device's log after the gaps): compare one settled picture.
        written, received = settled(sub, state, hikd)
        on_disk = alarm_ids(written)
        assert {str(e["id"]) for e in written} <= sub.event_ids()
        by_id = {e["id"]: e for e in written}
        assert len(by_id) == len(written), "an event written twice to disk"
        assert alarm_ids(received) == on_disk
        # and hikd saw each fault: the broker outage as the MQTT sink's one outage
        outage = [
            (e["state"], e["attributes"].get("sink"))
            for e in by_id.values()
            if e["type"] == "sink_unavailable"
        ]
        assert outage == [("start", "mqtt"), ("stop", "mqtt")]
    finally:
        for sim in sims:
            sim.stop()
