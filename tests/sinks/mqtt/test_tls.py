"""The MQTT sink over TLS against a real mosquitto on loopback, with certificates made at
test time (tests/certificates.py): alarms delivered when the broker's certificate is signed
by `ca_file`, and a broker hikd cannot trust refused with one clear line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hikd.events import DeviceRef, Event
from hikd.sinks.base import SinkContext, SinkUnavailable
from hikd.sinks.mqtt.sink import MqttConfig, MqttSink
from tests.certificates import ServerCertificate, make_ca, make_server_certificate
from tests.mosquitto import Mosquitto, Subscriber

NVR = DeviceRef("nvr", "DS7608NI0120190101CCWR123456789", "192.0.2.10")


@pytest.fixture
def certificate(tmp_path: Path) -> ServerCertificate:
    return make_server_certificate(tmp_path / "certs")


@pytest.fixture
def broker(tmp_path: Path, certificate: ServerCertificate) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker", tls=certificate) as b:
        yield b


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[list[MqttSink]]:
    made: list[MqttSink] = []
    try:
        yield made
    finally:
        for sink in made:
            sink.close()


def tls_sink(sinks: list[MqttSink], broker: Mosquitto, tmp_path: Path, **config: Any) -> MqttSink:
    settings: dict[str, Any] = {
        "host": broker.host,
        "port": broker.tls_port,
        "tls": True,
        "client_id": f"hikd-test-{uuid.uuid4().hex[:8]}",
        "publish_timeout_s": 5,
        "discovery": False,
        **config,
    }
    sink = MqttSink(MqttConfig(**settings), SinkContext("mqtt", tmp_path, {"version": "0.0.1"}))
    sinks.append(sink)
    return sink


def alarm(state: str) -> Event:
    return Event(kind="alarm", type="motion", state=state, device=NVR, channel=1)


def test_alarms_are_delivered_over_tls(
    broker: Mosquitto, certificate: ServerCertificate, sinks: list[MqttSink], tmp_path: Path
) -> None:
    sink = tls_sink(sinks, broker, tmp_path, ca_file=str(certificate.ca))
    events = [alarm("start"), alarm("stop"), alarm("start")]
    with Subscriber(broker, ["hikd/#"]) as sub:
        sink.open()
        for event in events:
            assert sink.send([event]) == 1
        assert sink.send([alarm("stop"), alarm("start")]) == 2
        # Each event's state comes after it: wait for those too (under load the last ON
        # came after the check of the fifth event).
        sub.wait_for(
            lambda ms: len([m for m in ms if m.topic == "hikd/nvr/events"]) == 5
            and len([m for m in ms if m.topic == "hikd/nvr/1/motion"]) >= 5,
            "5 events and their states",
        )
    sent = [json.loads(m.payload)["id"] for m in sub.on("hikd/nvr/events")]
    assert sent[:3] == [e.id for e in events]
    assert sub.last("hikd/nvr/1/motion").payload == b"ON"


def test_a_broker_whose_certificate_another_ca_signed_is_refused_with_one_clear_line(
    broker: Mosquitto, sinks: list[MqttSink], tmp_path: Path
) -> None:
    other_ca, _key = make_ca(tmp_path / "other", "another CA")
    sink = tls_sink(sinks, broker, tmp_path, ca_file=str(other_ca), publish_timeout_s=2)
    with pytest.raises(SinkUnavailable) as refused:
        sink.open()
    line = str(refused.value)
    assert "\n" not in line
    assert f"the MQTT broker at 127.0.0.1:{broker.tls_port}" in line
    assert "certificate" in line and "ca_file" in line and str(other_ca) in line


def test_a_broker_whose_certificate_names_another_host_is_refused_with_one_clear_line(
    tmp_path: Path, sinks: list[MqttSink]
) -> None:
    elsewhere = make_server_certificate(tmp_path / "certs", "subjectAltName=DNS:broker.example")
    with Mosquitto(tmp_path / "broker", tls=elsewhere) as broker:
        sink = tls_sink(sinks, broker, tmp_path, ca_file=str(elsewhere.ca), publish_timeout_s=2)
        with pytest.raises(SinkUnavailable) as refused:
            sink.open()
    line = str(refused.value)
    assert "\n" not in line
    assert "not for '127.0.0.1'" in line and "tls_insecure" in line
    # The way out it names works (a self-signed set-up without the host's name in it).
    with Mosquitto(tmp_path / "broker2", tls=elsewhere) as broker:
        insecure = tls_sink(sinks, broker, tmp_path, ca_file=str(elsewhere.ca), tls_insecure=True)
        insecure.open()
        assert insecure.send([alarm("start")]) == 1


def test_tls_to_a_port_without_tls_is_one_clear_line(
    broker: Mosquitto, sinks: list[MqttSink], tmp_path: Path
) -> None:
    sink = tls_sink(sinks, broker, tmp_path, port=broker.port, publish_timeout_s=2)
    with pytest.raises(SinkUnavailable) as refused:
        sink.open()
    line = str(refused.value)
    assert "\n" not in line and "speaks TLS" in line, line
