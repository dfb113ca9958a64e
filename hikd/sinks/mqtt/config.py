"""``[sinks.mqtt]``: the MQTT sink's settings (README "MQTT", sample.toml)."""

from __future__ import annotations

import difflib
import socket

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)

from hikd.event_types import EVENT_TYPES, UNKNOWN, from_device_name


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
    instance_id: str = Field(default_factory=socket.gethostname, min_length=1)
    """Which hikd this is in Home Assistant (its device and unique ids): two hikd on one
    broker need two."""
    discovery_types: list[str] = Field(default_factory=lambda: ["motion"])
    """Alarm types announced everywhere they can happen (every channel, alarm input or
    disk) before their first event, besides those the device reports it supports; any
    other type gets its entity when it is first seen. Names from hikd/event_types.py."""
    off_delay_s: int = Field(default=5, ge=1)
    """How long Home Assistant shows a one-shot (pulse) alarm as on."""
    images: bool = False
    """Publish an event's JPEG pictures on ``<prefix>/<device>/<channel>/<type>/image``
    and the latest of each channel on ``<prefix>/<device>/<channel>/image`` (Home
    Assistant's image entity)."""
    publish_timeout_s: float = Field(default=10.0, gt=0)
    max_inflight_messages: int | None = Field(default=None, ge=1, le=20000)
    """Messages sent and not yet acknowledged by the broker at most (paho's
    ``max_inflight_messages``): hikd sends the next batch of events without waiting for the
    broker's answer to the ones before while fewer are in flight. Default: 1000, and 20 at
    ``qos = 2``: mosquitto 2.0 acknowledges and then drops, unsaid, the QoS 2 messages a client
    has in flight beyond the broker's own ``max_inflight_messages`` (20 unless set)."""

    @property
    def in_flight_limit(self) -> int:
        if self.max_inflight_messages is not None:
            return self.max_inflight_messages
        return 20 if self.qos == 2 else 1000

    commands: bool = False
    """Take commands from MQTT (alarm outputs, snapshots, detections; README "Controls
    from MQTT"). Anyone who may publish to ``<prefix>/+/.../set`` can then trigger them:
    restrict those topics with the broker's ACLs."""

    @field_validator("discovery_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        for name in value:
            if name in EVENT_TYPES and name != UNKNOWN:
                continue
            ours = from_device_name(name) or from_device_name(name.replace("_", ""))
            if ours:
                raise ValueError(f"{name!r} is called {ours!r} in hikd")
            close = difflib.get_close_matches(name, list(EVENT_TYPES), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"{name!r} is not an alarm type hikd knows{hint}")
        return value

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
