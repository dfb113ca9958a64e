"""`hikd run` as a user runs it, with the real vendor library, hikd.sim devices and a real
mosquitto: the fixtures and helpers the end-to-end tests share (a plugin of conftest.py, so
its fixtures `broker`, `subscribe` and `run_hikd` need no import).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hikd.sim import Simulator
from tests.mosquitto import Mosquitto
from tests.support import devices_toml

SECRET = "Deliver-Pass!w0rd"
"""The password of every simulated device (`run_hikd` passes it in the environment)."""
EVENTS = "hikd/+/events"
START_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 60.0


# -- a broker that survives its own restart ---------------------------------------------
@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto with persistence: on a restart it keeps retained messages, the
    subscriber's persistent session and the messages queued for it, so whatever the
    subscriber misses is hikd's loss, not the test broker's."""
    b = Mosquitto(tmp_path / "broker")
    store = tmp_path / "broker" / "store"
    store.mkdir()
    text = b.config_path.read_text().replace(
        "persistence false\n", f"persistence true\npersistence_location {store}/\n"
    )
    # mosquitto drops QoS 1 messages beyond 1000 queued per client by default, even for a
    # connected one: the backlog hikd re-sends after an outage would overflow it.
    b.config_path.write_text(text + "max_queued_messages 0\n")
    with b:
        yield b


class LosslessSubscriber:
    """A QoS 1 subscriber with a persistent session (fixed client id, clean_session=False)
    that reconnects by itself (paho's loop thread): across a broker restart the broker
    keeps its subscriptions and the messages queued for it."""

    def __init__(self, broker: Mosquitto, topics: Iterable[str]) -> None:
        self.broker = broker
        self.topics = list(topics)
        self.messages: list[tuple[str, bytes]] = []
        self._ids: set[str] = set()
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"delivery-test-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self._client.reconnect_delay_set(1, 2)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        # The session keeps the subscription; subscribing again costs nothing and also
        # covers a broker that lost it.
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        with self._cond:
            self.messages.append((msg.topic, payload))
            if msg.topic.endswith("/events"):
                self._ids.add(json.loads(payload)["id"])
            self._cond.notify_all()

    def start(self) -> LosslessSubscriber:
        self._client.connect(self.broker.host, self.broker.port, keepalive=60)
        self._client.loop_start()
        if not self._subscribed.wait(START_TIMEOUT_S):
            raise RuntimeError("the test subscriber got no SUBACK")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def event_ids(self) -> set[str]:
        with self._cond:
            return set(self._ids)

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p in self.messages if t == topic]

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self._cond.wait(min(remaining, 0.2))


@pytest.fixture
def subscribe(broker: Mosquitto) -> Iterator[Callable[..., LosslessSubscriber]]:
    started: list[LosslessSubscriber] = []

    def start(*topics: str) -> LosslessSubscriber:
        sub = LosslessSubscriber(broker, topics)
        started.append(sub)
        return sub.start()

    try:
        yield start
    finally:
        for sub in started:
            sub.stop()


# -- hikd as a user runs it ---------------------------------------------------------------
class HikdProcess:
    """One `hikd run` process; its output goes to a file (a full pipe would block it)."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hikd", "run", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def run_hikd(tmp_path: Path) -> Iterator[Callable[[Path, Simulator], HikdProcess]]:
    """run_hikd(config, sim) -> a running `hikd run`, stopped after the test."""
    started: list[HikdProcess] = []

    def run(config: Path, sim: Simulator) -> HikdProcess:
        env = {f"HIKD_PASSWORD_{d.name.upper().replace('-', '_')}": SECRET for d in sim.devices}
        process = HikdProcess(config, env, tmp_path / f"hikd-{len(started)}.log")
        started.append(process)
        return process

    try:
        yield run
    finally:
        for process in started:
            process.stop()


def write_config(path: Path, sim: Simulator, state: Path, broker: Mosquitto, hold_s: float) -> Path:
    lines = [
        "[daemon]",
        f'state_dir = "{state}"',
        "[logging]",
        'format = "json"',
        "[alarms.hold_s]",
        f"default = {hold_s}",
    ]
    lines += devices_toml(sim)
    lines += [
        "[sinks.disk]",
        f'path = "{state / "events"}"',
        "[sinks.mqtt]",
        f'host = "{broker.host}"',
        f"port = {broker.port}",
        f'client_id = "hikd-{uuid.uuid4().hex[:8]}"',
        'instance_id = "test"',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def disk_events(state: Path) -> list[dict[str, Any]]:
    """What hikd's disk sink wrote: complete lines only (hikd may be writing one now)."""
    events = []
    for path in sorted((state / "events").glob("*.jsonl")):
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        events += [json.loads(line) for line in complete.splitlines() if line.strip()]
    return events


def alarm_starts(state: Path) -> set[str]:
    return {e["id"] for e in disk_events(state) if e["kind"] == "alarm" and e["state"] == "start"}


def wait_all_delivered(sub: LosslessSubscriber, state: Path, hikd: HikdProcess) -> set[str]:
    """Wait until every event id in the disk sink has reached the subscriber; returns them."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        produced = {e["id"] for e in disk_events(state)}
        missing = produced - sub.event_ids()
        if not missing:
            return produced
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{len(missing)} of {len(produced)} events hikd wrote to disk never reached "
                f"the MQTT subscriber, e.g. {sorted(missing)[:3]}\n{hikd.output()}"
            )
        time.sleep(0.2)
