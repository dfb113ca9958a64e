"""The MQTT sink's paho client against a real mosquitto: a batch of messages goes out in
few writes, acknowledgements are read in few reads, and every message arrives, in order,
acknowledged, with QoS 0 and 1 mixed, over MQTT 3.1.1 and 5."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from hikd.sinks.mqtt.client import BatchingClient
from tests.mosquitto import Mosquitto, Subscriber

MESSAGES = 300


class CountingClient(BatchingClient):
    """Counts the socket calls the client makes (it observes; the calls are real)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sends = 0
        self.reads = 0
        self.wakes = 0
        self.handled = 0  # packets paho read and dispatched one by one
        self.writers: set[int] = set()  # the threads that wrote

    def _sock_send(self, buf: bytes | bytearray) -> int:
        self.sends += 1
        self.writers.add(threading.get_ident())
        return int(super()._sock_send(buf))

    def _packet_handle(self) -> MQTTErrorCode:
        self.handled += 1
        return super()._packet_handle()

    def _wake_network_thread(self) -> None:
        self.wakes += 1
        super()._wake_network_thread()

    def _quick_ack(self) -> None:  # called once per real recv() that got bytes
        self.reads += 1
        super()._quick_ack()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


def connected(
    broker: Mosquitto, protocol: int = mqtt.MQTTv311, in_flight: int = 0
) -> CountingClient:
    client = CountingClient(
        CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}", protocol=protocol
    )
    client.max_inflight_messages_set(in_flight)
    client.connect(broker.host, broker.port)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected():
        assert time.monotonic() < deadline, "no CONNACK"
        time.sleep(0.01)
    return client


def wait_published(infos: list[mqtt.MQTTMessageInfo]) -> None:
    for info in infos:
        info.wait_for_publish(10)
        assert info.is_published()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_a_batch_goes_out_in_few_writes_and_arrives_in_order(
    broker: Mosquitto, protocol: int
) -> None:
    client = connected(broker, protocol)
    try:
        with Subscriber(broker, ["t/#"], qos=1) as sub:
            sends, reads, handled = client.sends, client.reads, client.handled
            with client.batch():
                infos = [client.publish(f"t/{i % 7}", f"{i}", qos=1) for i in range(MESSAGES)]
            wait_published(infos)
            # One write per batch, give or take the network thread's own timer waking up
            # in the middle of it; one read per burst of acknowledgements, and over MQTT
            # 3.1.1 the acknowledgements of a read are taken together, the first too (paho
            # dispatched the first of every read: as many packets as reads).
            assert client.sends - sends < MESSAGES // 10
            assert client.reads - reads < MESSAGES // 3
            if protocol == mqtt.MQTTv311:
                assert client.handled - handled <= (client.reads - reads) // 4
            got = sub.wait_for(lambda ms: len(ms) >= MESSAGES, "every message")
            assert [int(m.payload) for m in got] == list(range(MESSAGES))
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_batch_is_written_by_the_thread_that_publishes_it(broker: Mosquitto) -> None:
    """Over plain TCP the thread of batch() writes its packets itself: paho's network thread
    is not woken to write them (a thread switch per batch); it only reads the PUBACKs."""
    client = connected(broker)
    try:
        with Subscriber(broker, ["t/#"], qos=1) as sub:
            client.writers.clear()
            for n in range(5):
                with client.batch():
                    infos = [client.publish("t/x", f"{n}.{i}", qos=1) for i in range(3)]
                wait_published(infos)
            assert client.wakes == 0
            assert client.writers == {threading.get_ident()}
            got = sub.wait_for(lambda ms: len(ms) >= 15, "every message")
            assert [m.payload.decode() for m in got] == [
                f"{n}.{i}" for n in range(5) for i in range(3)
            ]
    finally:
        client.disconnect()
        client.loop_stop()


def test_qos_0_and_1_mixed_in_a_batch(broker: Mosquitto) -> None:
    """QoS 0 packets are written on their own (paho marks them published once written);
    the QoS 1 packets around them are joined. (The subscriber takes QoS 0: mosquitto may
    pass a QoS 0 message before QoS 1 ones waiting for the subscriber's in-flight window.)"""
    client = connected(broker)
    try:
        with Subscriber(broker, ["t/#"], qos=0) as sub:
            with client.batch():
                infos = [client.publish("t/x", f"{i}", qos=i % 2) for i in range(MESSAGES)]
            wait_published(infos)
            got = sub.wait_for(lambda ms: len(ms) >= MESSAGES, "every message")
            assert [int(m.payload) for m in got] == list(range(MESSAGES))
    finally:
        client.disconnect()
        client.loop_stop()


def test_publishing_outside_a_batch_and_after_a_reconnect(broker: Mosquitto) -> None:
    """Without batch() each publish goes out at once; after the broker restarts, the new
    connection reads nothing left over from the old one's buffer."""
    client = connected(broker)
    client.reconnect_delay_set(1, 1)
    try:
        client.publish("t/a", b"1", qos=1).wait_for_publish(10)
        broker.restart()
        deadline = time.monotonic() + 20
        while not client.is_connected():  # paho reconnects by itself
            assert time.monotonic() < deadline, "no reconnect"
            time.sleep(0.05)
        with Subscriber(broker, ["t/#"], qos=1) as sub:
            with client.batch():
                infos = [client.publish("t/b", f"{i}", qos=1) for i in range(20)]
            wait_published(infos)
            got = sub.wait_for(lambda ms: len(ms) >= 20, "the batch after the reconnect")
            assert [int(m.payload) for m in got] == list(range(20))
    finally:
        client.disconnect()
        client.loop_stop()


def wait_connected(client: mqtt.Client) -> None:
    deadline = time.monotonic() + 20
    while not client.is_connected():  # paho reconnects by itself
        assert time.monotonic() < deadline, "no reconnect"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("protocol", "qos"), [(mqtt.MQTTv311, 1), (mqtt.MQTTv311, 2), (mqtt.MQTTv5, 1)]
)
def test_publish_many_is_publish_for_a_batch(broker: Mosquitto, protocol: int, qos: int) -> None:
    """Every message arrives, in order, with its retain flag, acknowledged, in one write per
    batch (MQTT 5 and calls outside batch() take paho's own publish())."""
    # mosquitto drops QoS 2 messages beyond its max_inflight_messages (20), unsaid.
    client = connected(broker, protocol, in_flight=20 if qos == 2 else 0)
    messages = [(f"t/{i % 7}", f"{i}".encode(), i % 3 == 0) for i in range(MESSAGES)]
    # Remaining lengths of one, two and three bytes (MQTT 3.1.1, 2.2.3).
    messages[5:8] = [("t/m", b"m" * 200, True), ("t/l", b"l" * 20000, True), ("t/s", b"", False)]
    try:
        with Subscriber(broker, ["t/#"], qos=1) as sub:
            sends = client.sends
            with client.batch():
                infos = client.publish_many(messages[:-10], qos)
            if qos == 1:  # (at QoS 2 paho answers each PUBREC with a PUBREL meanwhile)
                assert client.sends - sends < 5
            infos += client.publish_many(messages[-10:], qos)
            wait_published(infos)
            assert len({info.mid for info in infos}) == MESSAGES
            got = sub.wait_for(lambda ms: len(ms) >= MESSAGES, "every message")
            assert [(m.topic, m.payload) for m in got] == [(t, p) for t, p, _ in messages]
        kept = {t: p for t, p, r in messages if r}
        with Subscriber(broker, ["t/#"], qos=1) as late:  # retained: what a late subscriber gets
            late.wait_for(lambda ms: len(ms) >= len(kept), "the retained messages")
            assert {m.topic: m.payload for m in late.messages} == kept
    finally:
        client.disconnect()
        client.loop_stop()


def test_publish_many_beyond_the_in_flight_limit_and_across_a_restart(broker: Mosquitto) -> None:
    """Messages beyond paho's in-flight limit wait for a slot and go when one frees; those
    not acknowledged when the broker goes are sent again by paho on the new connection."""
    client = connected(broker, in_flight=10)
    client.reconnect_delay_set(1, 1)
    try:
        with Subscriber(broker, ["t/#"], qos=1) as sub:
            with client.batch():
                infos = client.publish_many([("t/a", f"{i}".encode(), False) for i in range(50)], 1)
            wait_published(infos)
            got = sub.wait_for(lambda ms: len(ms) >= 50, "every message")
            assert [int(m.payload) for m in got] == list(range(50))
        broker.pause()
        with client.batch():
            infos = client.publish_many([("t/b", f"{i}".encode(), False) for i in range(20)], 1)
        assert not any(info.is_published() for info in infos)
        broker.restart()  # its connections go; paho sends the 20 again on the new one
        wait_connected(client)
        wait_published(infos)
    finally:
        client.disconnect()
        client.loop_stop()


def test_forgotten_messages_free_their_in_flight_slots(broker: Mosquitto) -> None:
    """The sink forgets what the outbox will send again (a broker that did not answer in
    time); the slots those messages held in paho's in-flight limit are free again."""
    client = connected(broker, in_flight=5)
    try:
        broker.pause()
        try:
            with client.batch():
                stale = client.publish_many([("t/old", b"x", False)] * 5, 1)
            client.forget_unacknowledged()
        finally:
            broker.resume()
        with client.batch():
            fresh = client.publish_many([("t/new", f"{i}".encode(), False) for i in range(5)], 1)
        wait_published(fresh)
        assert not any(info.is_published() for info in stale)
    finally:
        client.disconnect()
        client.loop_stop()
