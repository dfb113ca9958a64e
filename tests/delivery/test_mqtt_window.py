"""The MQTT sink's window: several batches in flight before the first is acknowledged, the
outbox's cursor only over what the broker acknowledged, oldest first; a broker killed
mid-window, and a stop mid-window, lose nothing and keep the order (outbox -> worker ->
MqttSink -> a real mosquitto -> a persistent QoS 1 subscriber)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hikd.delivery.outbox import Outbox
from hikd.delivery.sink_window import WindowedSinkWorker, sink_worker
from hikd.events import DeviceRef, Event
from hikd.sinks.base import SinkContext, WindowedSink
from hikd.sinks.mqtt.config import MqttConfig
from hikd.sinks.mqtt.sink import MqttSink
from tests.end_to_end import EVENTS, LosslessSubscriber
from tests.mosquitto import Mosquitto
from tests.support import wait_until

CAM = DeviceRef("cam", "DS-2CD2043G2", "192.0.2.7")
BATCH = 5
WAIT_S = 60.0


class Site:
    """An outbox and the MQTT sink's worker, as the supervisor runs them."""

    def __init__(self, tmp_path: Path, mosquitto: Mosquitto, client_id: str) -> None:
        self.outbox = Outbox(tmp_path / "outbox.sqlite")
        self.outbox.set_sinks(["mqtt"])
        config = MqttConfig(
            host=mosquitto.host,
            port=mosquitto.port,
            client_id=client_id,
            discovery=False,
            publish_timeout_s=WAIT_S,  # a paused broker is waited for, not given up on
        )
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        self.sink = MqttSink(config, SinkContext("mqtt", state, {}))
        self.worker = sink_worker(
            "mqtt", self.sink, self.outbox, batch_size=BATCH, backoff_first=0.05, backoff_max=0.5
        )
        self.worker.start()

    def store(self, events: list[Event]) -> None:
        self.outbox.append(events)
        self.worker.wake()

    def wait_in_flight(self, events: int) -> None:
        wait_until(lambda: self.sink.in_flight == events, f"{events} events in flight", WAIT_S)

    def stop(self) -> None:
        self.worker.request_stop()
        self.worker.join(10)
        self.outbox.close()


@pytest.fixture
def sites(tmp_path: Path, broker: Mosquitto) -> Iterator[Callable[[], Site]]:
    made: list[Site] = []
    client_id = f"hikd-window-{uuid.uuid4().hex[:8]}"

    def make() -> Site:
        made.append(Site(tmp_path, broker, client_id))
        return made[-1]

    try:
        yield make
    finally:
        for site in made:
            site.stop()


def alarms(first: int, count: int) -> list[Event]:
    return [
        Event("alarm", "motion", "start" if n % 2 == 0 else "stop", CAM, channel=n % 4 + 1)
        for n in range(first, first + count)
    ]


def first_arrivals(sub: LosslessSubscriber) -> list[str]:
    """Event ids in the order they first reached the subscriber (re-sends come later)."""
    seen: dict[str, None] = {}
    for payload in sub.payloads("hikd/cam/events"):
        seen.setdefault(json.loads(payload)["id"], None)
    return list(seen)


def all_arrived(sub: LosslessSubscriber, stored: list[Event]) -> None:
    ids = {e.id for e in stored}
    sub.wait_for(lambda: ids <= sub.event_ids(), "every stored event at the subscriber", WAIT_S)


def test_a_broker_killed_with_batches_in_flight_loses_nothing_and_keeps_the_order(
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
    sites: Callable[[], Site],
) -> None:
    sub = subscribe(EVENTS)
    site = sites()
    assert isinstance(site.sink, WindowedSink)
    assert isinstance(site.worker, WindowedSinkWorker)
    stored = alarms(0, BATCH)
    site.store(stored)
    wait_until(lambda: site.outbox.pending("mqtt") == 0, "the first batch acknowledged", WAIT_S)

    broker.pause()  # connected, reading nothing, acknowledging nothing
    try:
        for k in range(1, 4):
            batch = alarms(k * BATCH, BATCH)
            stored += batch
            site.store(batch)
            site.wait_in_flight(k * BATCH)
        # Three batches sent without one acknowledgement; the cursor stays where it was.
        assert site.outbox.pending("mqtt") == 3 * BATCH
    finally:
        broker.stop()  # it reads what was sent, maybe acknowledges some, and goes
    more = alarms(4 * BATCH, BATCH)  # stored while the broker is down
    stored += more
    site.store(more)
    broker.start()

    wait_until(lambda: site.outbox.pending("mqtt") == 0, "everything acknowledged", WAIT_S)
    all_arrived(sub, stored)
    assert first_arrivals(sub) == [e.id for e in stored]


def test_a_stop_with_batches_in_flight_sends_them_again_at_the_next_start(
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
    sites: Callable[[], Site],
) -> None:
    sub = subscribe(EVENTS)
    site = sites()
    stored = alarms(0, BATCH)
    site.store(stored)
    wait_until(lambda: site.outbox.pending("mqtt") == 0, "the first batch acknowledged", WAIT_S)
    acknowledged = site.outbox.cursor("mqtt")

    broker.pause()
    try:
        for k in range(1, 3):
            batch = alarms(k * BATCH, BATCH)
            stored += batch
            site.store(batch)
            site.wait_in_flight(k * BATCH)
        site.stop()  # waits a little for the acknowledgements, then goes without them
    finally:
        broker.resume()
    with Outbox(site.outbox.path) as reopened:
        assert reopened.cursor("mqtt") == acknowledged  # what was in flight counts as not sent

    again = sites()  # the next start: the same client id, the same outbox
    wait_until(lambda: again.outbox.pending("mqtt") == 0, "the re-send acknowledged", WAIT_S)
    all_arrived(sub, stored)
    assert first_arrivals(sub) == [e.id for e in stored]


def test_at_qos_2_a_large_batch_arrives_whole(
    tmp_path: Path,
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
) -> None:
    """mosquitto acknowledges the QoS 2 messages a client has in flight beyond its
    max_inflight_messages (20) and drops them: at qos = 2 the sink keeps to 20."""
    sub = subscribe(EVENTS)
    config = MqttConfig(host=broker.host, port=broker.port, qos=2, discovery=False)
    sink = MqttSink(config, SinkContext("mqtt", tmp_path, {}))
    batch = alarms(0, 150)
    try:
        assert sink.send(batch) == len(batch)
    finally:
        sink.close()
    all_arrived(sub, batch)


class CountingWake(WindowedSinkWorker):
    """Counts the sink's calls of the worker's progress callback (its wake-ups for
    acknowledgements)."""

    progress_calls = 0

    def _deliver(self) -> None:
        watch = self._window.watch

        def counted(progress: Callable[[], None]) -> None:
            def call() -> None:
                self.progress_calls += 1
                progress()

            watch(call)

        self._window.watch = counted  # type: ignore[method-assign]
        super()._deliver()


def test_acknowledgements_wake_the_worker_only_when_the_window_fills_up(
    tmp_path: Path,
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
) -> None:
    """The worker takes the broker's acknowledgements at its next batch or look; a wake-up for
    each read of them was a thread switch per batch (it woke for every batch, before). With a
    window of one batch (4 messages) it must be woken, or the next batch would wait."""
    sub = subscribe(EVENTS)
    stored: list[Event] = []
    for limit, woken in ((1000, False), (4, True)):
        outbox = Outbox(tmp_path / f"outbox-{limit}.sqlite")
        outbox.set_sinks(["mqtt"])
        config = MqttConfig(
            host=broker.host,
            port=broker.port,
            discovery=False,
            client_id=f"hikd-wake-{limit}",
            max_inflight_messages=limit,
        )
        sink = MqttSink(config, SinkContext("mqtt", tmp_path, {}))
        worker = CountingWake("mqtt", sink, outbox, batch_size=2)
        worker.start()
        try:
            for k in range(10):
                batch = alarms(k * 2, 2)  # one batch: 2 events, 4 messages with their states
                stored += batch
                outbox.append(batch)
                worker.wake()
                ids = {e.id for e in stored}
                wait_until(lambda ids=ids: sub.event_ids() >= ids, "at the subscriber", WAIT_S)
            wait_until(lambda o=outbox: o.pending("mqtt") == 0, "all acknowledged", WAIT_S)
            assert (worker.progress_calls > 0) is woken, worker.progress_calls
        finally:
            worker.request_stop()
            worker.join(10)
            outbox.close()
    assert first_arrivals(sub) == [e.id for e in stored]


def test_rows_another_process_stored_go_out_on_the_thread_that_was_told(
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
    sites: Callable[[], Site],
) -> None:
    """A device host's commit (`EventBus.others_stored` -> `deliver_now`) is read and written
    to the broker by the thread that reads the host's wake-up, while the worker waits idle:
    one thread switch less on an alarm's way. With the broker gone it waits for nothing and
    leaves the events to the worker, which sends them, in order, once the broker is back."""
    sub = subscribe(EVENTS)
    site = sites()
    senders: list[int] = []
    send_ahead = site.sink.send_ahead

    def recorded(batch: list[Event], wait: bool = True) -> None:
        senders.append(threading.get_ident())
        send_ahead(batch, wait)

    site.sink.send_ahead = recorded  # type: ignore[method-assign]
    stored = alarms(0, BATCH)
    site.store(stored)
    wait_until(lambda: site.outbox.pending("mqtt") == 0, "the first batch acknowledged", WAIT_S)
    wait_until(lambda: site.worker.stats().state == "idle", "the worker idle", WAIT_S)

    # The worker may be between its looks (it takes the acknowledgements every 0.2 s): then
    # it is told, and sends. Some try finds it waiting.
    for k in range(1, 21):
        told = alarms(k * BATCH, BATCH)
        stored += told
        site.outbox.append(told)
        site.worker.deliver_now()
        all_arrived(sub, stored)
        if senders[-1] == threading.get_ident():  # sent before deliver_now returned
            break
    else:
        raise AssertionError("the batches told of were all sent by the worker's thread")

    broker.stop()
    wait_until(lambda: site.sink._lost(), "the connection lost", WAIT_S)
    later = alarms(21 * BATCH, BATCH)
    stored += later
    site.outbox.append(later)
    telling = threading.Thread(target=site.worker.deliver_now)
    telling.start()
    telling.join(WAIT_S / 2)  # publish_timeout_s is WAIT_S: it must not wait for the broker
    assert not telling.is_alive()
    broker.start()
    wait_until(lambda: site.outbox.pending("mqtt") == 0, "everything acknowledged", WAIT_S)
    all_arrived(sub, stored)
    assert first_arrivals(sub) == [e.id for e in stored]
