"""The MQTT sink: every event to ``<prefix>/<device>/events``, retained ON/OFF states,
availability and health, and Home Assistant discovery (architecture.md, "MQTT layout").

Delivery: `send()` returns how many events of the batch the broker acknowledged (PUBACK
for QoS 1, PUBCOMP for QoS 2, written to the socket for QoS 0). The durable outbox re-sends
the rest, so paho's own in-memory re-send queue is emptied after a failure: that queue
would be lost on a restart anyway, and the outbox is the one place that remembers.

It is a `WindowedSink`: its worker sends batches ahead without waiting for the PUBACKs of the
ones before (``max_inflight_messages`` messages in flight at most, and always one batch), so
an alarm stored while a batch waits for the broker goes out at once. The broker acknowledges
in the order it received (MQTT 3.1.1, 4.6), and `delivered()` counts from the oldest batch.

The retained picture (status, availability, states, health, discovery) is republished on
every connect and whenever Home Assistant announces itself on ``<discovery_prefix>/status``.
It is kept in ``<state_dir>/mqtt_state.json`` so a restart republishes it correctly.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from pydantic import BaseModel

import hikd
from hikd.events import Event
from hikd.logs import get_logger, register_secret
from hikd.sinks.base import SinkContext, SinkUnavailable
from hikd.sinks.mqtt.client import BatchingClient
from hikd.sinks.mqtt.commands import MqttCommands
from hikd.sinks.mqtt.config import MqttConfig
from hikd.sinks.mqtt.connect import new_client
from hikd.sinks.mqtt.discovery import Discovery
from hikd.sinks.mqtt.pictures import picture_messages
from hikd.sinks.mqtt.retained import RetainedPicture, configured_devices
from hikd.sinks.mqtt.state import STATE_FILE, MqttState
from hikd.sinks.mqtt.tls import tls_problem
from hikd.sinks.mqtt.topics import (
    OFFLINE,
    ONLINE,
    Message,
    Topics,
    event_messages,
)
from hikd.sinks.mqtt.window import InFlight, NotAcknowledged, Tracked

log = get_logger(__name__)

SAVE_EVERY_S = 1.0
INFO_EVERY_S = 10.0


class MqttSink:
    """Publishes events to an MQTT broker (entry point ``mqtt``)."""

    Config: ClassVar[type[BaseModel]] = MqttConfig

    def __init__(self, config: MqttConfig, context: SinkContext) -> None:
        self.config = config
        self.context = context
        self.topics = Topics(config.topic_prefix)
        version = str(context.extra.get("version") or hikd.__version__)
        # Commands need the daemon's command path (`hikd.commands`), given in `extra`.
        submit = context.extra.get("submit_command") if config.commands else None
        self.discovery = Discovery(
            self.topics,
            config.discovery_prefix,
            config.off_delay_s,
            config.qos,
            version,
            config.instance_id,
            config.images,
            commands=submit is not None,
        )
        self.state = MqttState(context.state_dir / STATE_FILE)
        self.state.load()
        self.retained = RetainedPicture(
            self.state,
            self.topics,
            self.discovery,
            config.discovery,
            config.discovery_types,
            self._backlog,
            configured_devices(context.extra),
        )
        self.commands: MqttCommands | None = None
        if config.commands:
            self.commands = MqttCommands(self.discovery, submit, config.discovery)
        if config.password is not None:
            register_secret(config.password.get_secret_value())
        self._lock = threading.Lock()
        """Held while the retained picture changes and is published, so a republish on
        connect never overtakes a newer state. Never held while waiting for the broker."""
        self._saved_at = 0.0
        self._info_at = 0.0
        self._save_timer: threading.Timer | None = None
        self._save_lock = threading.Lock()
        """Held while the state file is written (one writer at a time, newest last); taken
        before `_lock`."""
        self._cond = threading.Condition()
        self._connected = False
        self._closing = False
        self._problem = f"not connected yet to the MQTT broker at {self._where}"
        self._client: BatchingClient | None = None
        self._flight = InFlight()
        self._progress: Callable[[], None] | None = None
        self.acknowledged_at: float | None = None  # `WindowedSink`

    @property
    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    # -- Sink protocol -----------------------------------------------------------------
    def open(self) -> None:
        """Connect, waiting up to ``publish_timeout_s`` for the broker; from then on paho's
        network thread reconnects by itself. On failure nothing is left running (the
        worker calls open() again, and close() only after an open() that succeeded)."""
        with self._cond:
            self._closing = False
        if self._client is None:
            self._client = self._start_client()
        if not self._wait_connected(self.config.publish_timeout_s):
            with self._cond:
                problem = self._problem
            self.close()
            raise SinkUnavailable(problem)

    def _connected_client(self, wait: bool = True) -> BatchingClient:
        """The client, opened if need be, once it is connected; `SinkUnavailable` if it does
        not connect within ``publish_timeout_s`` (at once unless `wait`)."""
        if self._client is None and wait:
            self.open()
        client = self._client
        timeout = self.config.publish_timeout_s if wait else 0.0
        if client is None or not self._wait_connected(timeout):
            raise SinkUnavailable(self._problem)
        return client

    def send(self, batch: Sequence[Event]) -> int:
        if not batch:
            return 0
        client = self._connected_client()
        window = InFlight()  # this batch's own, beside any sent ahead
        window.add(self._publish_batch(client, batch), self._deadline())
        delivered = 0
        try:
            while window:
                done = window.acknowledged(self._lost())
                delivered += done
                if not done:
                    window.wait(0.2)  # woken by the batch's last acknowledgement
        except NotAcknowledged:
            # The outbox re-sends what is not acknowledged; paho must not re-send it too.
            client.forget_unacknowledged()
            if delivered == 0:
                raise SinkUnavailable(self._not_acknowledged()) from None
        return delivered

    def _deadline(self) -> float:
        return time.monotonic() + self.config.publish_timeout_s

    def _lost(self) -> bool:
        with self._cond:
            return not self._connected or self._closing

    def _publish_batch(self, client: BatchingClient, batch: Sequence[Event]) -> Tracked:
        """Publish every message of `batch` (and the retained ones it makes necessary) in one
        write; the messages of each event to wait for."""
        images = [self._pictures(event) for event in batch]
        messages: list[Message] = []
        spans: list[tuple[int, int]] = []  # where each event's own messages are
        with self._lock, client.batch():  # one wake-up of paho's thread, one write
            for event, pictures in zip(batch, images, strict=True):
                messages += self.retained.learn(event)
                if self.commands is not None:
                    messages += self.commands.learn(event, self.state)
                start = len(messages)
                messages += event_messages(self.topics, event)
                messages += pictures
                spans.append((start, len(messages)))
            messages += self._info_now()
            infos = client.publish_many(messages, self.config.qos)
            self._save_soon()
        return [infos[start:end] for start, end in spans]

    def _not_acknowledged(self) -> str:
        with self._cond:
            if not self._connected:
                return self._problem
        return (
            f"the MQTT broker at {self._where} did not acknowledge within "
            f"{self.config.publish_timeout_s:g} s"
        )

    # -- WindowedSink --------------------------------------------------------------------
    def watch(self, progress: Callable[[], None]) -> None:
        self._progress = progress

    def has_room(self) -> bool:
        return not self._flight or self._flight.messages < self.config.in_flight_limit

    @property
    def in_flight(self) -> int:
        """Events sent ahead and not yet acknowledged."""
        return self._flight.events

    def send_ahead(self, batch: Sequence[Event], wait: bool = True) -> None:
        if not batch:
            return
        client = self._connected_client(wait)
        self._flight.add(self._publish_batch(client, batch), self._deadline())

    def delivered(self) -> int:
        try:
            return self._flight.acknowledged(self._lost())
        except NotAcknowledged:
            # The outbox re-sends what is not acknowledged; paho must not re-send it too.
            if self._client is not None:
                self._client.forget_unacknowledged()
            raise SinkUnavailable(self._not_acknowledged()) from None

    def _tell_progress(self) -> None:
        progress = self._progress
        if progress is not None and self._flight:
            progress()

    def _acknowledgements_read(self) -> None:
        """paho's thread read acknowledgements. The worker takes them at its next batch or
        look; it is woken (a thread switch) only once half of the window is in flight."""
        self.acknowledged_at = time.time()
        if self._flight.messages * 2 >= self.config.in_flight_limit:
            self._tell_progress()

    def _info_now(self) -> list[Message]:
        """hikd's facts (devices online, outbox backlog), at most every `INFO_EVERY_S`."""
        now = time.monotonic()
        if now - self._info_at < INFO_EVERY_S:
            return []
        self._info_at = now
        return self.retained.info_messages()

    def _save_soon(self) -> None:
        """Save the state file at most once a second, on a timer's thread (called with
        `_lock`). It is only a cache for republishing after a restart; writing and fsyncing
        it after every batch cost more than the batch (the outbox re-sends whatever is not
        acknowledged), and an fsync inside `send()` held up a batch, and every event behind
        it, once a second."""
        if self._save_timer is None and self.state.dirty:
            wait = max(0.0, SAVE_EVERY_S - (time.monotonic() - self._saved_at))
            timer = threading.Timer(wait, self._save_later)
            timer.daemon = True
            self._save_timer = timer
            timer.start()

    def _save_later(self) -> None:
        with self._save_lock:
            with self._lock:  # only while the picture is copied, not while it is written
                self._save_timer = None
                data = self.state.snapshot()
                self._saved_at = time.monotonic()
            if data is not None:
                self.state.write(data)

    def close(self) -> None:
        """Say ``offline`` on the status topic (a clean disconnect discards the last will),
        then disconnect. Waits at most a couple of seconds."""
        self._flight.clear()
        with self._save_lock, self._lock:
            if self._save_timer is not None:
                self._save_timer.cancel()
                self._save_timer = None
            self.state.save()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected():
                info = client.publish(
                    self.topics.status(), OFFLINE, qos=self.config.qos, retain=True
                )
                deadline = time.monotonic() + min(2.0, self.config.publish_timeout_s)
                while not info.is_published() and time.monotonic() < deadline:
                    if not client.is_connected():
                        break
                    info.wait_for_publish(0.05)
        except (RuntimeError, ValueError):
            pass
        finally:
            client.disconnect()
            client.loop_stop()
            with self._cond:
                self._connected = False

    # -- connection --------------------------------------------------------------------
    def _start_client(self) -> BatchingClient:
        cfg = self.config
        client = new_client(cfg, self.topics.status(), OFFLINE)
        client.on_acknowledged = self._acknowledgements_read
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        client.loop_start()
        return client

    def _wait_connected(self, timeout: float) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._connected or self._closing, timeout)
            return self._connected and not self._closing

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            with self._cond:
                self._problem = (
                    f"the MQTT broker at {self._where} refused the connection ({reason}); "
                    "check mqtt username, password and client_id"
                )
            log.warning(
                "MQTT broker refused the connection", broker=self._where, reason=str(reason)
            )
            return
        try:
            if self.config.discovery:
                client.subscribe(self._birth_topic, qos=1)
            if self.commands is not None:
                self.commands.subscribe(client)
            with self._lock:
                self._republish(client, discovery_first=False)
        except Exception:
            log.exception("cannot republish the MQTT state after connecting")
        with self._cond:
            self._connected = True
            self._cond.notify_all()
        log.info("connected to the MQTT broker", broker=self._where)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError:` around the connect, so the error
        # being handled says why: a broker refused over TLS runs, and needs another fix.
        problem = tls_problem(sys.exc_info()[1], self._where, self.config)
        with self._cond:
            self._problem = problem or (
                f"cannot connect to the MQTT broker at {self._where}; "
                "check that it runs and mqtt host/port"
            )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._cond:
            was_connected = self._connected
            self._connected = False
            if was_connected and not self._closing:
                # (Not after a refused CONNECT: its reason is the one to tell.)
                self._problem = f"lost the connection to the MQTT broker at {self._where}"
            self._cond.notify_all()
        self._tell_progress()
        if was_connected and not self._closing:
            log.warning(
                "lost the connection to the MQTT broker", broker=self._where, reason=str(reason)
            )

    @property
    def _birth_topic(self) -> str:
        return f"{self.config.discovery_prefix}/status"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self.commands is not None and self.commands.handles(message.topic):
            self.commands.on_message(client, message, list(self.state.devices))
            return
        # Home Assistant's birth message: it (re)started and forgot what it was told. A
        # retained birth arrives on every subscribe; `_on_connect` republishes anyway.
        if message.topic != self._birth_topic or message.retain:
            return
        if message.payload.strip().lower() != ONLINE.encode():
            return
        try:
            with self._lock:
                self._republish(client, discovery_first=True)
        except Exception:
            log.exception("cannot republish discovery for Home Assistant")

    # -- the retained picture ----------------------------------------------------------
    def _republish(self, client: mqtt.Client, discovery_first: bool) -> None:
        """Everything retained (`RetainedPicture.republish`). Called with `_lock` held."""
        self._publish_all(client, self.retained.republish(discovery_first))
        if self.commands is not None:
            self._publish_all(client, self.commands.republish())
        self._save_soon()

    def _publish_all(self, client: mqtt.Client, messages: Sequence[Message]) -> None:
        for m in messages:
            client.publish(m.topic, m.payload, qos=self.config.qos, retain=m.retain)

    def _pictures(self, event: Event) -> list[Message]:
        return picture_messages(self.topics, event) if self.config.images else []

    def _backlog(self) -> int | None:
        """Events waiting in the outbox for this sink, when the daemon tells (its
        ``backlog`` in the context's extra: a callable taking the sink's name)."""
        count = self.context.extra.get("backlog")
        if not callable(count):
            return None
        try:
            return int(count(self.context.name))
        except Exception:  # only a diagnostic: never in the way of delivery
            return None
