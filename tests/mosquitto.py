"""A real mosquitto broker for tests, and a subscriber that records what it receives.

`Mosquitto` runs the broker on a free loopback port with a generated config in a temp
dir; it is stopped whatever happens (use it as a context manager or in a fixture with
``yield``) and can be stopped and started again on the same port for outage tests.

Test modules define their own small fixture around it::

    @pytest.fixture
    def broker(tmp_path: Path) -> Iterator[Mosquitto]:
        with Mosquitto(tmp_path / "broker") as b:
            yield b
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.certificates import ServerCertificate
from tests.support import free_port

START_TIMEOUT_S = 10.0


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    if not found:
        pytest.fail(
            "mosquitto is not installed (MQTT tests need a real broker): "
            "apt-get install mosquitto, or run `make test`",
            pytrace=False,
        )
    return found


def password_line(user: str, password: str) -> str:
    """A mosquitto 2 password-file line (``$7$``: PBKDF2-SHA512, as mosquitto_passwd writes)."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    b64 = base64.b64encode
    return f"{user}:$7$101${b64(salt).decode()}${b64(digest).decode()}"


class Mosquitto:
    """``tls``: a second listener, on `tls_port`, that speaks only TLS with that certificate
    (the first, on `port`, stays plain for the tests' subscribers)."""

    def __init__(
        self,
        workdir: Path,
        users: dict[str, str] | None = None,
        tls: ServerCertificate | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            f"allow_anonymous {'false' if users else 'true'}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            # As root mosquitto drops to the `mosquitto` user, which cannot read the temp dir.
            lines.append(f"user {getpass.getuser()}")
        if users:
            pw = workdir / "passwords"
            pw.write_text("".join(password_line(u, p) + "\n" for u, p in users.items()))
            pw.chmod(0o600)
            lines.append(f"password_file {pw}")
        if tls:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {tls.ca}",
                f"certfile {tls.certificate}",
                f"keyfile {tls.key}",
            ]
        self.config_path.write_text("\n".join(lines) + "\n")
        self._binary = mosquitto_binary()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        assert self._process is None, "already started"
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [self._binary, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{self.log()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # in case a test paused it
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is answered (no PUBACK)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Subscriber:
    """A paho client subscribed to some topics, recording every message it gets."""

    def __init__(
        self,
        broker: Mosquitto,
        topics: Iterable[str],
        qos: int = 2,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.broker = broker
        self.topics = list(topics)
        self.qos = qos
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4()}")
        if username:
            self._client.username_pw_set(username, password)
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    def _on_subscribe(self, *args: object) -> None:
        self._subscribed.set()

    def start(self) -> Subscriber:
        self._client.connect(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()
        self._client.subscribe([(t, self.qos) for t in self.topics])
        if not self._subscribed.wait(START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("the test subscriber got no SUBACK")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Received:
        found = self.on(topic)
        assert found, f"nothing received on {topic}; got {sorted({m.topic for m in self.messages})}"
        return found[-1]

    def wait_for(
        self, condition: Callable[[list[Received]], bool], what: str, timeout: float = 10.0
    ) -> list[Received]:
        """Wait until `condition(messages)` holds; fail with `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    topics = sorted({m.topic for m in self.messages})
                    raise AssertionError(f"timed out waiting for {what}; topics seen: {topics}")
                self._cond.wait(remaining)
            return list(self.messages)

    def wait_topic(self, topic: str, timeout: float = 10.0) -> Received:
        self.wait_for(lambda ms: any(m.topic == topic for m in ms), topic, timeout)
        return self.last(topic)

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def retained(broker: Mosquitto, pattern: str) -> dict[str, Received]:
    """What the broker holds retained under `pattern`: subscribe afresh and collect.

    Retained messages arrive right after the SUBACK; the broker sends them all at once, so
    a probe message published after subscribing marks their end (no sleeping on timing).
    """
    marker = f"test/retained-probe/{uuid.uuid4()}"
    with Subscriber(broker, [pattern, marker]) as sub:
        sub.publish(marker, b"end")
        sub.wait_for(lambda ms: any(m.topic == marker for m in ms), "the probe message")
        return {m.topic: m for m in sub.messages if m.retain and m.topic != marker}
