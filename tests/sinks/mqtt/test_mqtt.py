"""The MQTT sink against a real mosquitto: topics, payloads, retain flags, QoS, the last
will, broker outages and restarts (at-least-once), and the config model."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import hikd.files as atomic_write
from hikd.events import DeviceRef, Event, health
from hikd.sinks.base import Sink, SinkContext, SinkUnavailable
from hikd.sinks.mqtt.sink import MqttConfig, MqttSink
from tests.mosquitto import Mosquitto, Subscriber, retained
from tests.support import wait_for

NVR = DeviceRef("nvr", "DS7608NI0120190101CCWR123456789", "192.0.2.10")
SinkFactory = Callable[..., MqttSink]


def alarm(type_: str, state: Any, channel: int | None = 1, device: DeviceRef = NVR) -> Event:
    return Event(kind="alarm", type=type_, state=state, device=device, channel=channel)


def online(device: DeviceRef = NVR, **facts: Any) -> Event:
    return health(device, "online", serial=device.serial, model="DS-7608NI-K2", **facts)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[SinkFactory]:
    made: list[MqttSink] = []

    def make(broker: Mosquitto, state_dir: Path | None = None, **config: Any) -> MqttSink:
        settings: dict[str, Any] = {
            "host": broker.host,
            "port": broker.port,
            "client_id": f"hikd-test-{uuid.uuid4().hex[:8]}",
            "publish_timeout_s": 5,
            "discovery": False,
            **config,
        }
        state = state_dir or tmp_path / "state"
        state.mkdir(parents=True, exist_ok=True)
        sink = MqttSink(MqttConfig(**settings), SinkContext("mqtt", state, {"version": "0.0.1"}))
        made.append(sink)
        return sink

    try:
        yield make
    finally:
        for sink in made:
            sink.close()


def ids_on(sub: Subscriber, topic: str) -> list[str]:
    return [json.loads(m.payload)["id"] for m in sub.on(topic)]


def test_is_a_sink(broker: Mosquitto, make_sink: SinkFactory) -> None:
    assert isinstance(make_sink(broker), Sink)


def test_events_states_health_and_availability(broker: Mosquitto, make_sink: SinkFactory) -> None:
    sink = make_sink(broker)
    batch = [
        online(),
        alarm("motion", "start", 3),
        alarm("motion", "stop", 3),
        alarm("video_loss", "start", 4),
        alarm("disk_full", "start", None),
        alarm("face_snap", "pulse", 2),
    ]
    with Subscriber(broker, ["hikd/#"]) as sub:
        sink.open()
        assert sink.send(batch) == len(batch)
        sub.wait_for(
            lambda ms: len([m for m in ms if m.topic == "hikd/nvr/events"]) == 6, "six events"
        )
        sub.wait_for(
            lambda ms: len([m for m in ms if m.topic == "hikd/nvr/2/face_snap"]) == 2,
            "the pulse's OFF and ON",
        )

        # Every event, in order, as JSON that reads back to the same event; QoS 1.
        events = sub.on("hikd/nvr/events")
        assert [Event.from_json(m.payload) for m in events] == batch
        assert {m.qos for m in events} == {1}
        assert sub.last("hikd/status").payload == b"online"
        assert [m.payload for m in sub.on("hikd/nvr/3/motion")] == [b"ON", b"OFF"]
        # A pulse: the retained resting OFF first, then a live ON.
        assert [m.payload for m in sub.on("hikd/nvr/2/face_snap")] == [b"OFF", b"ON"]
        assert json.loads(sub.last("hikd/nvr/health").payload)["state"] == "ok"
        assert sub.last("hikd/nvr/availability").payload == b"online"

    kept = retained(broker, "hikd/#")
    health_topics = {"hikd/nvr/health", "hikd/nvr/health/connectivity", "hikd/info"}
    assert {t: m.payload for t, m in kept.items() if t not in health_topics} == {
        "hikd/status": b"online",
        "hikd/nvr/availability": b"online",
        "hikd/nvr/3/motion": b"OFF",
        "hikd/nvr/4/video_loss": b"ON",
        "hikd/nvr/device/disk_full": b"ON",
        "hikd/nvr/2/face_snap": b"OFF",
    }
    connectivity = json.loads(kept["hikd/nvr/health/connectivity"].payload)
    assert connectivity["state"] == "ok" and connectivity["last"]["id"] == batch[0].id
    assert {m.qos for m in kept.values()} == {1}

    # Offline: availability follows, the connectivity concern keeps the reason.
    went = health(NVR, "offline", reason="session heartbeat to the device failed")
    assert sink.send([went]) == 1
    kept = retained(broker, "hikd/nvr/#")
    assert kept["hikd/nvr/availability"].payload == b"offline"
    connectivity = json.loads(kept["hikd/nvr/health/connectivity"].payload)
    assert connectivity["state"] == "problem"
    assert connectivity["problems"][0]["attributes"]["reason"].startswith("session heartbeat")
    assert json.loads(kept["hikd/nvr/health"].payload)["problems"] == ["connectivity"]


def test_qos_0_and_2(broker: Mosquitto, make_sink: SinkFactory) -> None:
    for qos in (0, 2):
        sink = make_sink(broker, topic_prefix=f"q{qos}", qos=qos)
        with Subscriber(broker, [f"q{qos}/#"]) as sub:
            sink.open()
            batch = [alarm("motion", "start", 1), alarm("motion", "stop", 1)]
            assert sink.send(batch) == 2
            sub.wait_for(
                lambda ms, events=f"q{qos}/nvr/events": [m.topic for m in ms].count(events) >= 2,
                "two events and two states",
            )
            assert ids_on(sub, f"q{qos}/nvr/events") == [e.id for e in batch]
            assert {m.qos for m in sub.messages} == {qos}
        sink.close()


def test_prefix_and_unsafe_names(broker: Mosquitto, make_sink: SinkFactory) -> None:
    sink = make_sink(broker, topic_prefix="site/a/")
    odd = DeviceRef("gate/cam #2+")
    with Subscriber(broker, ["site/a/#"]) as sub:
        sink.open()
        assert sink.send([alarm("motion", "start", 1, odd)]) == 1
        assert sub.wait_topic("site/a/gate_cam _2_/1/motion").payload == b"ON"
        assert sub.last("site/a/status").payload == b"online"


def test_images(broker: Mosquitto, make_sink: SinkFactory, tmp_path: Path) -> None:
    jpeg = tmp_path / "snap.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0fake jpeg\xff\xd9")
    (tmp_path / "clip.mp4").write_bytes(b"not a picture")
    sink = make_sink(broker, images=True)
    event = Event(
        kind="alarm",
        type="line_crossing",
        state="pulse",
        device=NVR,
        channel=5,
        files=(str(jpeg), str(tmp_path / "clip.mp4"), str(tmp_path / "gone.jpg")),
    )
    with Subscriber(broker, ["hikd/nvr/#"]) as sub:
        sink.open()
        assert sink.send([event]) == 1
        assert sub.wait_topic("hikd/nvr/5/line_crossing/image").payload == jpeg.read_bytes()
        assert len(sub.on("hikd/nvr/5/line_crossing/image")) == 1


def test_last_will_on_crash_then_online_again(
    broker: Mosquitto, make_sink: SinkFactory, tmp_path: Path
) -> None:
    """A hikd that dies without disconnecting leaves `offline` (its will), and the next
    one to connect replaces it with `online`."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hikd.sinks.base import SinkContext\n"
        "from hikd.sinks.mqtt.sink import MqttConfig, MqttSink\n"
        "config = MqttConfig(host='127.0.0.1', port=int(sys.argv[1]), client_id='hikd-crash',"
        " discovery=False)\n"
        "MqttSink(config, SinkContext('mqtt', Path(sys.argv[2]), {})).open()\n"
        "print('connected', file=sys.stderr, flush=True)\n"
        "time.sleep(120)\n"
    )
    with Subscriber(broker, ["hikd/status"]) as sub:
        crashing = subprocess.Popen(
            [sys.executable, "-c", script, str(broker.port), str(tmp_path)],
            stdout=subprocess.DEVNULL,  # structlog's default output
            stderr=subprocess.PIPE,
        )
        try:
            assert crashing.stderr is not None
            ready, _, _ = select.select([crashing.stderr], [], [], 30)
            assert ready and crashing.stderr.readline() == b"connected\n"
            sub.wait_for(lambda ms: bool(ms) and ms[-1].payload == b"online", "online")
            crashing.kill()
        finally:
            crashing.kill()
            crashing.wait()
        sub.wait_for(lambda ms: ms[-1].payload == b"offline", "the last will")
        assert retained(broker, "hikd/status")["hikd/status"].payload == b"offline"

        make_sink(broker).open()
        sub.wait_for(lambda ms: ms[-1].payload == b"online", "online again")
    assert retained(broker, "hikd/status")["hikd/status"].payload == b"online"


def test_clean_close_says_offline(broker: Mosquitto, make_sink: SinkFactory) -> None:
    sink = make_sink(broker)
    sink.open()
    sink.close()
    assert retained(broker, "hikd/status")["hikd/status"].payload == b"offline"


def deliver_all(sink: MqttSink, events: list[Event], tries: int = 20) -> list[int]:
    """What the outbox worker does: send until all is acknowledged; the counts returned."""
    counts: list[int] = []
    pending = list(events)
    for _ in range(tries):
        if not pending:
            return counts
        try:
            n = sink.send(pending)
        except SinkUnavailable:
            continue  # send() itself waits (bounded) for the broker to come back
        assert 1 <= n <= len(pending)
        counts.append(n)
        pending = pending[n:]
    raise AssertionError(f"{len(pending)} events never acknowledged")


def test_broker_restart_mid_stream_nothing_lost(broker: Mosquitto, make_sink: SinkFactory) -> None:
    sink = make_sink(broker, publish_timeout_s=1)
    first = [alarm("motion", "start" if i % 2 == 0 else "stop", i) for i in range(1, 6)]
    second = [alarm("tamper", "start", i) for i in range(1, 11)]
    with Subscriber(broker, ["hikd/+/events"]) as before:
        sink.open()
        assert sink.send(first) == 5
        before.wait_for(lambda ms: len(ms) == 5, "the first five events")
        broker.stop()
        with pytest.raises(SinkUnavailable, match=r"MQTT broker at 127\.0\.0\.1"):
            sink.send(second)

    broker.start()
    # The consumer is back before hikd re-sends (it is not a persistent session).
    with Subscriber(broker, ["hikd/+/events", "hikd/nvr/+/tamper"]) as after:
        counts = deliver_all(sink, second)
        assert sum(counts) == len(second)
        after.wait_for(
            lambda ms: {e.id for e in second} <= set(ids_on(after, "hikd/nvr/events")),
            "every re-sent event",
        )
    assert ids_on(before, "hikd/nvr/events") == [e.id for e in first]
    # The retained states are back too (persistence is off: the broker forgot them).
    kept = retained(broker, "hikd/#")
    assert kept["hikd/status"].payload == b"online"
    assert kept["hikd/nvr/1/motion"].payload == b"OFF"
    assert kept["hikd/nvr/2/motion"].payload == b"ON"
    assert kept["hikd/nvr/10/tamper"].payload == b"ON"


def test_no_puback_is_not_delivered(broker: Mosquitto, make_sink: SinkFactory) -> None:
    """A broker that stops answering (SIGSTOP) gets no PUBACK in: send raises, nothing counts,
    and the re-send after it answers again is acknowledged."""
    sink = make_sink(broker, publish_timeout_s=1)
    batch = [alarm("intrusion", "start", 7), alarm("intrusion", "stop", 7)]
    with Subscriber(broker, ["hikd/nvr/events"]) as sub:
        sink.open()
        broker.pause()
        try:
            with pytest.raises(SinkUnavailable, match="did not acknowledge"):
                sink.send(batch)
        finally:
            broker.resume()
        assert deliver_all(sink, batch) == [2]
        sub.wait_for(
            lambda ms: {e.id for e in batch} <= set(ids_on(sub, "hikd/nvr/events")), "both events"
        )


def test_broker_down_at_start(make_sink: SinkFactory, tmp_path: Path) -> None:
    """open() and send() give up after publish_timeout_s with one clear line, then the sink
    connects by itself once the broker is there."""
    broker = Mosquitto(tmp_path / "late")
    try:
        sink = make_sink(broker, publish_timeout_s=0.5)
        with pytest.raises(SinkUnavailable, match="cannot connect to the MQTT broker"):
            sink.open()
        with pytest.raises(SinkUnavailable):
            sink.send([alarm("motion", "start")])
        broker.start()
        assert deliver_all(sink, [alarm("motion", "start")], tries=60) == [1]
    finally:
        broker.stop()


def test_state_survives_a_restart(
    broker: Mosquitto, make_sink: SinkFactory, tmp_path: Path
) -> None:
    state_dir = tmp_path / "kept"
    first = make_sink(broker, state_dir)
    first.open()
    assert first.send([online(), alarm("motion", "start", 2), alarm("io", "start", None)]) == 3
    first.close()
    assert (state_dir / "mqtt_state.json").is_file()

    broker.restart()  # no persistence: the broker forgot every retained message
    assert retained(broker, "hikd/#") == {}

    with Subscriber(broker, ["hikd/#"]) as sub:
        make_sink(broker, state_dir).open()
        sub.wait_for(lambda ms: len(ms) == 7, "status, info, availability, health, two states")
    kept = retained(broker, "hikd/#")
    assert len(kept) == 7
    assert kept["hikd/status"].payload == b"online"
    assert kept["hikd/nvr/availability"].payload == b"online"
    assert kept["hikd/nvr/2/motion"].payload == b"ON"
    assert kept["hikd/nvr/device/io"].payload == b"ON"
    assert json.loads(kept["hikd/nvr/health"].payload)["concerns"] == {"connectivity": "ok"}
    assert json.loads(kept["hikd/nvr/health/connectivity"].payload)["state"] == "ok"


def test_corrupt_state_file_is_ignored(
    broker: Mosquitto, make_sink: SinkFactory, tmp_path: Path
) -> None:
    state_dir = tmp_path / "bad"
    state_dir.mkdir()
    (state_dir / "mqtt_state.json").write_text("{not json")
    sink = make_sink(broker, state_dir)
    sink.open()
    assert sink.send([alarm("motion", "start")]) == 1

    assert wait_for(lambda: saved_alarm(state_dir) == "ON")


def saved_alarm(state_dir: Path) -> str | None:
    """The value of the first alarm in the state file, None while it is not hikd's."""
    try:
        return str(json.loads((state_dir / "mqtt_state.json").read_text())["alarms"][0]["value"])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def test_the_state_file_is_written_beside_the_sends_never_in_one(
    broker: Mosquitto, make_sink: SinkFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state file is fsynced on a timer's thread, without the lock a send takes: an
    fsync inside send() held up a batch, and every event behind it, once a second."""
    monkeypatch.setattr("hikd.sinks.mqtt.sink.SAVE_EVERY_S", 0.0)  # due at every send
    sink = make_sink(broker, tmp_path / "kept")
    sink.open()
    writers: list[int] = []
    real_write = atomic_write.write_atomically

    def write(path: Path, data: bytes, part: Path | None = None) -> None:
        writers.append(threading.get_ident())
        real_write(path, data, part)

    monkeypatch.setattr("hikd.sinks.mqtt.state.write_atomically", write)
    for n in range(3):
        assert sink.send([alarm("motion", "start" if n % 2 == 0 else "stop")]) == 1
    assert wait_for(lambda: bool(writers))
    assert threading.get_ident() not in writers
    assert wait_for(lambda: saved_alarm(tmp_path / "kept") == "ON")


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "auth", users={"hikd": "s3cret"}) as b:
        yield b


def test_username_and_password(
    auth_broker: Mosquitto, make_sink: SinkFactory, tmp_path: Path
) -> None:
    wrong = make_sink(auth_broker, username="hikd", password="nope", publish_timeout_s=1)
    with pytest.raises(SinkUnavailable, match=r"refused the connection.*username, password"):
        wrong.open()
    wrong.close()

    secret = tmp_path / "mqtt.pw"
    secret.write_text("s3cret\n")
    right = make_sink(auth_broker, username="hikd", password_file=str(secret))
    right.open()
    assert right.send([alarm("motion", "start")]) == 1


def test_config_defaults_and_mistakes() -> None:
    config = MqttConfig()
    assert (config.port, config.qos, config.keepalive, config.topic_prefix) == (1883, 1, 60, "hikd")
    assert config.client_id.startswith("hikd-")
    assert config.discovery and config.discovery_prefix == "homeassistant"
    assert not config.images and config.publish_timeout_s == 10

    def problem(**settings: Any) -> str:
        with pytest.raises(ValidationError) as info:
            MqttConfig(**settings)
        return str(info.value)

    assert "extra" in problem(hostname="x")
    assert "wildcards" in problem(topic_prefix="hikd/#")
    assert "need tls = true" in problem(tls_insecure=True)
    assert "not both" in problem(username="u", password="a", password_file=__file__)
    assert "needs a username" in problem(password="a")
    assert "qos" in problem(qos=3)
    assert "password_file" in problem(username="u", password_file="/nonexistent/pw")
