"""The MQTT sink's client as ``[sinks.mqtt]`` configures it: protocol, in-flight bound,
reconnect delays, credentials, TLS and the last will. Callbacks and the connection itself are
the sink's (hikd/sinks/mqtt/sink.py)."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hikd.errors import UserError
from hikd.logs import register_secret
from hikd.sinks.mqtt.client import BatchingClient
from hikd.sinks.mqtt.config import MqttConfig

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 15


def new_client(cfg: MqttConfig, will_topic: str, will: str) -> BatchingClient:
    client = BatchingClient(
        CallbackAPIVersion.VERSION2,
        client_id=cfg.client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    # A bug in a callback must not end paho's network thread (and with it every
    # reconnect); the callbacks log their own errors.
    client.suppress_exceptions = True
    # The sink's window is bounded by paho's own limit (`forget_unacknowledged` frees the
    # slots of the messages the outbox will send again).
    client.max_inflight_messages_set(cfg.in_flight_limit)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    if cfg.username:
        client.username_pw_set(cfg.username, password(cfg))
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
    client.will_set(will_topic, will, qos=cfg.qos, retain=True)
    return client


def password(cfg: MqttConfig) -> str | None:
    """``password``, or the first line of ``password_file`` (kept out of every log line)."""
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
