"""The MQTT sink: every event to ``<prefix>/<device>/events``, retained ON/OFF states,
availability and health, and Home Assistant discovery (architecture.md, "MQTT layout").

Delivery: `send()` returns how many events of the batch the broker acknowledged (PUBACK
for QoS 1, PUBCOMP for QoS 2, written to the socket for QoS 0). The durable outbox re-sends
the rest, so paho's own in-memory re-send queue is emptied after a failure: that queue
would be lost on a restart anyway, and the outbox is the one place that remembers.

The retained picture (status, availability, states, health, discovery) is republished on
every connect and whenever Home Assistant announces itself on ``<discovery_prefix>/status``.
It is kept in ``<state_dir>/mqtt_state.json`` so a restart republishes it correctly.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)

import hikd
from hikd.errors import UserError
from hikd.events import Event
from hikd.health import HealthBoard
from hikd.logs import get_logger, register_secret
from hikd.sinks.base import SinkContext, SinkUnavailable
from hikd.sinks.homeassistant import (
    NOT_DISCOVERED,
    AlarmEntity,
    DeviceFacts,
    Discovery,
    DiscoveryConfig,
    alarm_config,
    configured_entities,
    device_configs,
)
from hikd.sinks.mqtt_topics import (
    AVAILABILITY,
    OFF,
    OFFLINE,
    ON,
    ONLINE,
    Message,
    Topics,
    Where,
    event_messages,
    of_the_past,
    where_of,
)

log = get_logger(__name__)

STATE_FILE = "mqtt_state.json"
SAVE_EVERY_S = 1.0
_IMAGE_SUFFIXES = (".jpg", ".jpeg")
_RECONNECT_MIN_S = 1
_RECONNECT_MAX_S = 15


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def _default_client_id() -> str:
    return f"hikd-{socket.gethostname()}"


class MqttConfig(BaseModel):
    """``[sinks.mqtt]``"""

    model_config = ConfigDict(extra="forbid")

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool = False
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    tls_insecure: bool = False
    """Accept a broker certificate whose host name does not match (self-signed set-ups)."""
    username: str | None = None
    password: SecretStr | None = None
    password_file: FilePath | None = None
    client_id: str = Field(default_factory=_default_client_id, min_length=1)
    qos: int = Field(default=1, ge=0, le=2)
    keepalive: int = Field(default=60, ge=5, le=65535)
    topic_prefix: str = "hikd"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    discovery_types: list[str] = Field(default_factory=lambda: ["motion"])
    """Alarm types announced on every channel before their first event; any other type
    gets its entity when it is first seen."""
    off_delay_s: int = Field(default=5, ge=1)
    """How long Home Assistant shows a one-shot (pulse) alarm as on."""
    images: bool = False
    """Publish an event's JPEG pictures on ``<prefix>/<device>/<channel>/<type>/image``."""
    publish_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        value = value.strip().strip("/")
        if not value:
            raise ValueError("must not be empty")
        if any(c in value for c in "+#\x00"):
            raise ValueError("must not contain '+', '#' or NUL (they are MQTT wildcards)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if not self.tls and (self.ca_file or self.cert_file or self.key_file or self.tls_insecure):
            raise ValueError("ca_file, cert_file, key_file and tls_insecure need tls = true")
        if self.key_file and not self.cert_file:
            raise ValueError("key_file needs cert_file (the client certificate)")
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a password needs a username")
        return self


AlarmKey = tuple[str, Where, str]


@dataclass(slots=True)
class _AlarmState:
    value: str = OFF
    pulse: bool = False


@dataclass(slots=True)
class _DeviceState:
    facts: DeviceFacts
    availability: str = ""
    health: HealthBoard = field(default_factory=HealthBoard)


class MqttState:
    """What is republished on every connect: device facts, availability, health per concern,
    and the ON/OFF state of every alarm entity. In memory and in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.devices: dict[str, _DeviceState] = {}
        self.alarms: dict[AlarmKey, _AlarmState] = {}
        self.dirty = False
        self._save_failing = False  # one warning per episode (a full disk lasts)

    def device(self, name: str) -> _DeviceState:
        state = self.devices.get(name)
        if state is None:
            state = self.devices[name] = _DeviceState(DeviceFacts(name))
            self.dirty = True
        return state

    def alarms_of(self, name: str) -> list[AlarmEntity]:
        return [
            AlarmEntity(channel, type_, a.pulse)
            for (device, channel, type_), a in self.alarms.items()
            if device == name
        ]

    def find(self, name_or_serial: str) -> DeviceFacts | None:
        if not name_or_serial:
            return None
        if name_or_serial in self.devices:
            return self.devices[name_or_serial].facts
        for state in self.devices.values():
            if state.facts.serial == name_or_serial:
                return state.facts
        return None

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            devices = {
                name: _DeviceState(
                    DeviceFacts.from_dict({**d["facts"], "name": name}),
                    str(d.get("availability") or ""),
                    HealthBoard.from_dict(d.get("concerns")),
                )
                for name, d in data.get("devices", {}).items()
            }
            alarms = {
                (str(a["device"]), a.get("channel"), str(a["type"])): _AlarmState(
                    ON if a.get("value") == ON else OFF, bool(a.get("pulse"))
                )
                for a in data.get("alarms", [])
            }
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            # Only a cache of what was published: start afresh rather than refuse to run.
            log.warning(
                "ignoring unreadable MQTT state file", path=str(self.path), error=str(error)
            )
            return
        self.devices, self.alarms = devices, alarms

    def save(self) -> None:
        if not self.dirty:
            return
        data = {
            "version": 1,
            "devices": {
                name: {
                    "facts": s.facts.to_dict(),
                    "availability": s.availability,
                    "concerns": s.health.to_dict(),
                }
                for name, s in self.devices.items()
            },
            "alarms": [
                {"device": d, "channel": c, "type": t, "value": a.value, "pulse": a.pulse}
                for (d, c, t), a in self.alarms.items()
            ],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"), default=str)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as error:
            # Delivery goes on; only a restart would republish an older picture.
            if not self._save_failing:
                self._save_failing = True
                log.warning("cannot save MQTT state", path=str(self.path), error=str(error))
            with contextlib.suppress(OSError):
                tmp.unlink()  # a half-written file must not keep the space it took
            return
        if self._save_failing:
            self._save_failing = False
            log.info("MQTT state saved again", path=str(self.path))
        self.dirty = False


class QuickAckClient(mqtt.Client):
    """paho's client, acknowledging the broker's TCP segments at once.

    A broker that leaves Nagle on (mosquitto's default) sends the first PUBACK of a batch and
    holds the rest until that segment is acknowledged; the kernel delays that ACK by up to
    40 ms when the client has nothing to send, as it has while it waits for the PUBACKs.
    Measured: 44 ms per batch of 5 events against a default mosquitto. TCP_QUICKACK after
    each read sends the ACK at once (Linux resets the flag, hence after every read).
    """

    def _sock_recv(self, bufsize: int) -> bytes:
        data: bytes = super()._sock_recv(bufsize)
        setsockopt = getattr(self._sock, "setsockopt", None)  # not on websockets
        if setsockopt is not None and hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data


class MqttSink:
    """Publishes events to an MQTT broker (entry point ``mqtt``)."""

    Config: ClassVar[type[BaseModel]] = MqttConfig

    def __init__(self, config: MqttConfig, context: SinkContext) -> None:
        self.config = config
        self.context = context
        self.topics = Topics(config.topic_prefix)
        version = str(context.extra.get("version") or hikd.__version__)
        self.discovery = Discovery(
            self.topics, config.discovery_prefix, config.off_delay_s, config.qos, version
        )
        self.state = MqttState(context.state_dir / STATE_FILE)
        self.state.load()
        if config.password is not None:
            register_secret(config.password.get_secret_value())
        self._lock = threading.Lock()
        self._saved_at = 0.0
        self._save_timer: threading.Timer | None = None
        """Held while the retained picture changes and is published, so a republish on
        connect never overtakes a newer state. Never held while waiting for the broker."""
        self._cond = threading.Condition()
        self._connected = False
        self._closing = False
        self._problem = f"not connected yet to the MQTT broker at {self._where}"
        self._client: mqtt.Client | None = None

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

    def send(self, batch: Sequence[Event]) -> int:
        if not batch:
            return 0
        if self._client is None:
            self.open()
        client = self._client
        assert client is not None
        if not self._wait_connected(self.config.publish_timeout_s):
            raise SinkUnavailable(self._problem)
        images = [self._image_messages(event) for event in batch]
        tracked: list[list[mqtt.MQTTMessageInfo]] = []
        with self._lock:
            for event, pictures in zip(batch, images, strict=True):
                self._publish_all(client, self._learn(event))
                messages = [*event_messages(self.topics, event), *pictures]
                tracked.append(
                    [self._publish(client, m.topic, m.payload, m.retain) for m in messages]
                )
            self._save_soon()
        deadline = time.monotonic() + self.config.publish_timeout_s
        delivered = 0
        for infos in tracked:
            if not all(self._acknowledged(info, deadline) for info in infos):
                break
            delivered += 1
        if delivered < len(batch):
            # The outbox re-sends what is not acknowledged; paho must not re-send it too.
            client.drop_out_messages()
            if delivered == 0:
                with self._cond:
                    problem = (
                        self._problem
                        if not self._connected
                        else f"the MQTT broker at {self._where} did not acknowledge within "
                        f"{self.config.publish_timeout_s:g} s"
                    )
                raise SinkUnavailable(problem)
        return delivered

    def _save_soon(self) -> None:
        """Save the state file at most once a second (called with `_lock`). It is only a
        cache for republishing after a restart; writing and fsyncing it after every batch
        cost more than the batch (the outbox re-sends whatever is not acknowledged)."""
        now = time.monotonic()
        if now - self._saved_at >= SAVE_EVERY_S:
            self.state.save()
            self._saved_at = now
        elif self._save_timer is None:
            timer = threading.Timer(SAVE_EVERY_S - (now - self._saved_at), self._save_later)
            timer.daemon = True
            self._save_timer = timer
            timer.start()

    def _save_later(self) -> None:
        with self._lock:
            self._save_timer = None
            self.state.save()
            self._saved_at = time.monotonic()

    def close(self) -> None:
        """Say ``offline`` on the status topic (a clean disconnect discards the last will),
        then disconnect. Waits at most a couple of seconds."""
        with self._lock:
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
    def _start_client(self) -> mqtt.Client:
        cfg = self.config
        client = QuickAckClient(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        # A bug in a callback must not end paho's network thread (and with it every
        # reconnect); the callbacks log their own errors.
        client.suppress_exceptions = True
        # No in-flight limit: a dropped message (see send) would otherwise keep its slot.
        client.max_inflight_messages_set(0)
        client.reconnect_delay_set(_RECONNECT_MIN_S, _RECONNECT_MAX_S)
        if cfg.username:
            client.username_pw_set(cfg.username, self._password())
        if cfg.tls:
            try:
                client.tls_set(
                    ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                    certfile=str(cfg.cert_file) if cfg.cert_file else None,
                    keyfile=str(cfg.key_file) if cfg.key_file else None,
                )
            except (OSError, ValueError) as error:
                raise UserError(f"mqtt: cannot use the TLS files: {error}") from None
            client.tls_insecure_set(cfg.tls_insecure)
        client.will_set(self.topics.status(), OFFLINE, qos=cfg.qos, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        client.loop_start()
        return client

    def _password(self) -> str | None:
        cfg = self.config
        if cfg.password is not None:
            return cfg.password.get_secret_value()
        if cfg.password_file is None:
            return None
        try:
            secret = cfg.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise UserError(
                f"mqtt.password_file: cannot read {cfg.password_file}: {error.strerror}"
            ) from None
        register_secret(secret)
        return secret

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
            with self._lock:
                self._republish(client, discovery_first=False)
        except Exception:
            log.exception("cannot republish the MQTT state after connecting")
        with self._cond:
            self._connected = True
            self._cond.notify_all()
        log.info("connected to the MQTT broker", broker=self._where)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        with self._cond:
            self._problem = (
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
        if was_connected and not self._closing:
            log.warning(
                "lost the connection to the MQTT broker", broker=self._where, reason=str(reason)
            )

    @property
    def _birth_topic(self) -> str:
        return f"{self.config.discovery_prefix}/status"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
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
    def _publish(
        self, client: mqtt.Client, topic: str, payload: bytes | str, retain: bool
    ) -> mqtt.MQTTMessageInfo:
        return client.publish(topic, payload, qos=self.config.qos, retain=retain)

    def _republish(self, client: mqtt.Client, discovery_first: bool) -> None:
        """Everything retained, from memory: status, then per device availability and
        health, alarm states, and discovery. Called with `_lock` held."""
        configs: list[DiscoveryConfig] = []
        if self.config.discovery:
            for name in list(self.state.devices):
                self._add_configured(name)
                configs.extend(self._device_discovery(name))
        if discovery_first:
            self._publish_all(client, [c.message() for c in configs])
        self._publish(client, self.topics.status(), ONLINE, retain=True)
        for name, device in self.state.devices.items():
            if device.availability:
                self._publish(
                    client, self.topics.availability(name), device.availability, retain=True
                )
            self._publish_all(client, self._health_messages(name, list(device.health.concerns)))
        self._publish_all(client, [self._state_message(key) for key in self.state.alarms])
        if not discovery_first:
            self._publish_all(client, [c.message() for c in configs])
        self.state.save()

    def _health_messages(self, name: str, concerns: list[str]) -> list[Message]:
        """The retained summary and the given concerns of one device (`hikd.health`)."""
        board = self.state.device(name).health
        if not board.concerns:
            return []
        messages = [
            Message(self.topics.concern(name, c), _json(board.concerns[c].to_dict()), True)
            for c in concerns
        ]
        messages.append(Message(self.topics.health(name), _json(board.summary()), True))
        return messages

    def _publish_all(self, client: mqtt.Client, messages: Sequence[Message]) -> None:
        for m in messages:
            self._publish(client, m.topic, m.payload, m.retain)

    def _state_message(self, key: AlarmKey) -> Message:
        name, channel, type_ = key
        value = self.state.alarms[key].value
        return Message(self.topics.state(name, channel, type_), value.encode(), retain=True)

    def _add_configured(self, name: str) -> list[AlarmKey]:
        """Give the configured types (`discovery_types`) on every channel an ``OFF`` state,
        so their entities show "clear" rather than "unknown" before the first alarm."""
        added: list[AlarmKey] = []
        facts = self.state.device(name).facts
        for entity in configured_entities(facts, self.config.discovery_types):
            key = (name, entity.channel, entity.type)
            if key not in self.state.alarms:
                self.state.alarms[key] = _AlarmState(OFF, entity.pulse)
                self.state.dirty = True
                added.append(key)
        return added

    def _device_discovery(self, name: str) -> list[DiscoveryConfig]:
        facts = self.state.device(name).facts
        parent = self.state.find(facts.via)
        return device_configs(self.discovery, facts, self.state.alarms_of(name), parent)

    def _learn(self, event: Event) -> list[Message]:
        """Update the retained picture with `event`; return the untracked messages this
        makes necessary first: discovery for a new device, new facts or a new alarm
        entity, and the ``OFF`` states of newly announced entities. Called with `_lock`."""
        discovery = self.config.discovery
        name = event.device.name
        known = name in self.state.devices
        device = self.state.device(name)
        messages: list[Message] = []
        announce_device = not known
        facts = device.facts.updated_from(event)
        if facts != device.facts:
            if discovery and known and facts.identifier != device.facts.identifier:
                # New unique ids: remove the entities announced under the old ones.
                messages.extend(
                    Message(c.topic, b"", retain=True) for c in self._device_discovery(name)
                )
            device.facts = facts
            self.state.dirty = True
            announce_device = True
        if event.kind == "health":
            availability = AVAILABILITY.get(event.type)
            if availability is not None:
                device.availability = availability
            changed = device.health.apply(event)
            if changed:
                messages.extend(self._health_messages(name, changed))
            self.state.dirty = True
        new_states: list[AlarmKey] = []
        if event.kind == "alarm" and event.type not in NOT_DISCOVERED and not of_the_past(event):
            key = (name, where_of(event), event.type)
            alarm = self.state.alarms.get(key)
            pulse = event.state == "pulse"
            value = ON if event.state == "start" else OFF
            if alarm is None or (pulse and not alarm.pulse):
                # New, or first seen as a pulse: (re)announce it, now with off_delay.
                alarm = self.state.alarms[key] = _AlarmState(value, pulse)
                self.state.dirty = True
                if pulse:
                    # The retained resting state; the pulse's own ON is not retained.
                    new_states.append(key)
                if discovery and not announce_device:
                    entity = AlarmEntity(where_of(event), event.type, alarm.pulse)
                    parent = self.state.find(device.facts.via)
                    messages.append(
                        alarm_config(self.discovery, device.facts, entity, parent).message()
                    )
            elif alarm.value != value:
                alarm.value = value
                self.state.dirty = True
        if announce_device and discovery:
            new_states.extend(self._add_configured(name))
            messages.extend(c.message() for c in self._device_discovery(name))
        messages.extend(self._state_message(key) for key in new_states)
        return messages

    def _image_messages(self, event: Event) -> list[Message]:
        if not self.config.images:
            return []
        messages = []
        topic = self.topics.image(event.device.name, where_of(event), event.type)
        for path in event.files:
            if not path.lower().endswith(_IMAGE_SUFFIXES):
                continue
            try:
                data = Path(path).read_bytes()
            except OSError as error:
                log.warning("cannot read an event's picture", path=path, error=str(error))
                continue
            messages.append(Message(topic, data, retain=True))
        return messages

    # -- acknowledgements --------------------------------------------------------------
    def _acknowledged(self, info: mqtt.MQTTMessageInfo, deadline: float) -> bool:
        """Wait for the broker's acknowledgement of one message, until `deadline` or until
        the connection drops (then it will not come on this connection)."""
        while True:
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                return False
            if info.is_published():
                return True
            if time.monotonic() >= deadline or not self._connected or self._closing:
                return False
            try:
                info.wait_for_publish(min(0.2, max(0.0, deadline - time.monotonic())))
            except (RuntimeError, ValueError):
                return False
