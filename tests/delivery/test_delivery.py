"""Delivery through the whole daemon: `hikd run` processes with the real vendor library,
hikd.sim devices and a real mosquitto (architecture.md, "Delivery" and "MQTT layout").

What a user relies on: events on the right topics with the right payloads, retain flags
and QoS; Home Assistant discovery, republished on HA's birth message; and at-least-once
delivery: every event hikd wrote to its disk sink also reaches an MQTT subscriber, across
a broker outage and across a SIGKILL of hikd with a backlog in the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.delivery.outbox import OUTBOX_FILE, Outbox
from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import (
    EVENTS,
    SECRET,
    START_TIMEOUT_S,
    HikdProcess,
    LosslessSubscriber,
    alarm_starts,
    disk_events,
    wait_all_delivered,
    write_config,
)
from tests.mosquitto import Mosquitto, Subscriber, retained
from tests.support import wait_until

STATUS = "hikd/status"
RATE = 200
TYPES = ("VMD", "linedetection")


# -- 1. the MQTT layout -------------------------------------------------------------------
def test_topics_payloads_retain_qos_and_discovery(
    tmp_path: Path,
    start_sim: Callable[..., Simulator],
    broker: Mosquitto,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", password=SECRET))
    dev = sim.devices[0]
    serial = dev.config.serial_number
    state = tmp_path / "state"
    config = write_config(tmp_path / "hikd.toml", sim, state, broker, hold_s=60)
    # Subscribed at QoS 2, so each message arrives at the QoS hikd published it with.
    with Subscriber(broker, ["hikd/#", "homeassistant/#"], qos=2) as sub:
        hikd = run_hikd(config, sim)
        try:
            sub.wait_for(
                lambda ms: any(
                    m.topic == "hikd/nvr/availability" and m.payload == b"online" for m in ms
                ),
                "hikd/nvr/availability online",
                START_TIMEOUT_S,
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n{hikd.output()}") from None
        assert dev.wait_for_streams(1, timeout=START_TIMEOUT_S), hikd.output()

        def alarm_events(state_: str) -> list[dict[str, Any]]:
            found = [json.loads(m.payload) for m in sub.on("hikd/nvr/events")]
            return [e for e in found if e["kind"] == "alarm" and e["state"] == state_]

        sent = dev.trigger("VMD", channel=2)
        sub.wait_for(lambda ms: bool(alarm_events("start")), "the motion start", 15)
        sub.wait_for(
            lambda ms: any(m.topic == "hikd/nvr/2/motion" and m.payload == b"ON" for m in ms),
            "hikd/nvr/2/motion ON",
            15,
        )
        dev.trigger("VMD", channel=2, state="inactive")
        sub.wait_for(lambda ms: bool(alarm_events("stop")), "the motion stop", 15)
        sub.wait_for(lambda ms: sub.last("hikd/nvr/2/motion").payload == b"OFF", "OFF", 15)

        (start,) = alarm_events("start")
        assert start["type"] == "motion" and start["channel"] == 2
        assert start["device"]["name"] == "nvr" and start["device"]["serial"] == serial
        assert start["attributes"]["hikd_sim_seq"] == sent.seq
        assert {"id", "time", "received", "attributes", "raw", "files"} <= start.keys()
        (stop,) = alarm_events("stop")
        assert stop["attributes"]["start_id"] == start["id"]
        assert stop["attributes"]["ended_by"] == "device"
        for topic in ("hikd/nvr/events", "hikd/nvr/2/motion", STATUS, "hikd/nvr/availability"):
            assert {m.qos for m in sub.on(topic)} == {1}, topic

        # What a late subscriber (Home Assistant after a restart) is told: only the
        # retained picture, never an old event.
        held = retained(broker, "hikd/#")
        assert held[STATUS].payload == b"online"
        assert held["hikd/nvr/availability"].payload == b"online"
        assert held["hikd/nvr/2/motion"].payload == b"OFF"
        assert held["hikd/nvr/1/motion"].payload == b"OFF"  # announced before any alarm
        assert json.loads(held["hikd/nvr/health"].payload)["state"] == "ok"
        assert json.loads(held["hikd/nvr/health/arming"].payload)["state"] == "ok"
        assert not [t for t in held if t.endswith("/events")]

        discovery = retained(broker, "homeassistant/#")
        configs = {t: json.loads(m.payload) for t, m in discovery.items()}
        motion = configs[f"homeassistant/binary_sensor/hikd_{serial}_2_motion/config"]
        assert motion["unique_id"] == f"hikd_{serial}_2_motion"
        assert motion["state_topic"] == "hikd/nvr/2/motion"
        assert (motion["payload_on"], motion["payload_off"]) == ("ON", "OFF")
        assert motion["device_class"] == "motion"
        assert motion["availability_mode"] == "all"
        assert {a["topic"] for a in motion["availability"]} == {STATUS, "hikd/nvr/availability"}
        for topic, payload in configs.items():
            component, uid = topic.split("/")[1:3]
            assert payload["unique_id"] == uid, topic
            if uid.startswith(f"hikd_{serial}_"):
                # The recorder, or one of its channels (a camera reached through it).
                device = payload["device"]
                assert device["identifiers"][0].startswith(serial), topic
                assert device.get("via_device", serial) == serial, topic
            else:
                assert payload["device"]["identifiers"] == ["hikd_test"], topic  # hikd itself
            assert payload.get("availability") or uid == "hikd_test_connectivity", topic
            assert payload["default_entity_id"].startswith(f"{component}."), topic
        assert f"homeassistant/binary_sensor/hikd_{serial}_connectivity/config" in configs
        assert f"homeassistant/sensor/hikd_{serial}_health/config" in configs

        # Home Assistant restarted and forgot everything: its birth message gets every
        # discovery config again.
        sub.clear()
        sub.publish("homeassistant/status", "online")
        sub.wait_for(
            lambda ms: set(configs) <= {m.topic for m in ms},
            "every discovery config again after the birth message",
            15,
        )


# -- 2. a broker outage -------------------------------------------------------------------
def test_every_event_arrives_across_a_broker_outage(
    tmp_path: Path,
    start_sim: Callable[..., Simulator],
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = start_sim(
        SimDeviceConfig(name="nvr-a", password=SECRET),
        SimDeviceConfig(name="nvr-b", password=SECRET),
    )
    state = tmp_path / "state"
    # Hold 0: every alarm the simulator sends is its own start (and stop), so there are
    # thousands of distinct events to lose.
    config = write_config(tmp_path / "hikd.toml", sim, state, broker, hold_s=0)
    sub = subscribe(EVENTS)
    hikd = run_hikd(config, sim)
    for dev in sim.devices:
        assert dev.wait_for_streams(1, timeout=START_TIMEOUT_S), hikd.output()
    sub.wait_for(
        lambda: len(sub.event_ids()) >= 2 * len(sim.devices), "the online events", START_TIMEOUT_S
    )

    sent = sim.run_scenario(RATE, TYPES, duration=3.0).sent
    broker.stop()
    sent += sim.run_scenario(RATE, TYPES, duration=10.0).sent
    broker.start()  # same port, same store
    sent += sim.run_scenario(RATE, TYPES, duration=3.0).sent

    # Every alarm the devices sent became an event on disk ...
    wait_until(lambda: len(alarm_starts(state)) >= sent, f"{sent} alarm starts on disk", 30)
    assert len(alarm_starts(state)) == sent
    # ... and every event on disk reached the subscriber.
    produced = wait_all_delivered(sub, state, hikd)
    assert len(produced) > 2 * sent
    outage = [
        e
        for e in disk_events(state)
        if e["type"] == "sink_unavailable" and e["attributes"].get("sink") == "mqtt"
    ]
    assert {e["state"] for e in outage} == {"start", "stop"}, "hikd did not notice the outage"


# -- 3. SIGKILL with a backlog ------------------------------------------------------------
def test_sigkill_with_a_backlog_then_restart_delivers_everything(
    tmp_path: Path,
    start_sim: Callable[..., Simulator],
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", password=SECRET))
    state = tmp_path / "state"
    config = write_config(tmp_path / "hikd.toml", sim, state, broker, hold_s=0)
    sub = subscribe(EVENTS, STATUS)

    def status() -> bytes:
        found = sub.payloads(STATUS)
        return found[-1] if found else b""

    first = run_hikd(config, sim)
    assert sim.devices[0].wait_for_streams(1, timeout=START_TIMEOUT_S), first.output()
    sub.wait_for(lambda: status() == b"online" and bool(sub.event_ids()), "online", 15)

    # SIGSTOP, not a stop: hikd stays connected (so the broker is there to see it die and
    # publish its last will) but gets no PUBACK, so its events pile up in the outbox.
    broker.pause()
    try:
        sent = sim.run_scenario(RATE, TYPES, duration=2.0).sent
        wait_until(lambda: len(alarm_starts(state)) >= sent, f"{sent} alarm starts on disk", 30)
        first.kill()
    finally:
        broker.resume()
    assert len(alarm_starts(state)) == sent

    with Outbox(state / OUTBOX_FILE) as outbox:
        backlog = {event.id for _, event in outbox.read("mqtt", outbox.cursor("mqtt"), 10**7)}
    assert len(backlog) >= sent, "hikd was killed without a backlog: the test proves nothing"

    # The broker saw the connection die: the last will says offline, retained.
    sub.wait_for(lambda: status() == b"offline", "the last will on hikd/status", 15)
    assert retained(broker, STATUS)[STATUS].payload == b"offline"
    # What the dead hikd had written to its socket arrived before its will (one ordered
    # connection); the rest of the backlog (beyond its one in-flight batch) only the
    # outbox can deliver now.
    assert backlog - sub.event_ids(), "the whole backlog arrived without a restart"

    second = run_hikd(config, sim)
    sub.wait_for(lambda: status() == b"online", "hikd/status online after the restart", 30)
    produced = wait_all_delivered(sub, state, second)
    assert backlog <= produced <= sub.event_ids()
    assert retained(broker, STATUS)[STATUS].payload == b"online"
