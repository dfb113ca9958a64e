"""The benchmarks' MQTT subscriber: MQTT 3.1.1 over a plain socket, one thread, nothing else.

`bench_delivery.py` measures hikd from the simulator to a subscriber; on 2 cores whatever
the subscriber costs is taken from hikd, and paho (a Python object, a callback and a PUBACK
`send` per message, a `TCP_QUICKACK` per read) cost about as much as mosquitto. This client
does what the measurement needs and no more, with paho's semantics as the bench used them:
a clean session, one subscription at the requested QoS, a PUBACK for each QoS 1 message
and PUBREC/PUBCOMP for QoS 2 (MQTT 3.1.1 sections 3.3.4 and 4.3), a PINGREQ when the line
has been quiet for half the keep-alive. The receipt time is `time.monotonic_ns()` taken
right after the `recv` that completed the message, before anything is parsed; the
acknowledgements of everything one `recv` brought go out in one `send`.

`received` holds (receipt ns, payload) in arrival order; it is appended to by the reading
thread and may be read (by length and slices) from others.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

KEEPALIVE_S = 60


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    """Fixed header (type and flags, remaining length as a variable-length integer) + body."""
    out = bytearray([first])
    n = len(body)
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + body


class RawSubscriber:
    """Subscribes to `topic` at `qos` on the broker at 127.0.0.1:`port` and notes every
    message it receives (see the module's text)."""

    def __init__(self, port: int, topic: str = "hikd/+/events", qos: int = 1) -> None:
        self.received: list[tuple[int, bytes]] = []
        self.native_id = 0
        """The reading thread's kernel id, for its CPU time (/proc/self/task/<id>/stat)."""
        self.error = ""
        """Why the reading thread ended before `close` (empty while it reads)."""
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._last_send = time.monotonic()
        connect = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", KEEPALIVE_S)
        self._sock.sendall(_packet(0x10, connect + _string("bench-subscriber")))
        self._buf = bytearray()
        connack = self._read_packet()
        if connack[0] != 0x20 or connack[-1] != 0:
            raise SystemExit(f"the MQTT broker refused the subscriber: {connack!r}")
        subscribe = struct.pack("!H", 1) + _string(topic) + bytes([qos])
        self._sock.sendall(_packet(0x82, subscribe))
        suback = self._read_packet()
        if suback[0] != 0x90 or suback[-1] == 0x80:
            raise SystemExit(f"the MQTT broker refused the subscription: {suback!r}")
        self._sock.settimeout(KEEPALIVE_S / 4)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="bench-subscriber", daemon=True)
        self._thread.start()

    def _read_packet(self) -> bytes:
        """One whole packet during the set-up (before the reading thread runs)."""
        while True:
            size, _ = self._complete(0)
            if size:
                packet = bytes(self._buf[:size])
                del self._buf[:size]
                return packet
            data = self._sock.recv(65536)
            if not data:
                raise SystemExit("the MQTT broker closed the subscriber's connection")
            self._buf += data

    def _complete(self, at: int) -> tuple[int, int]:
        """(whole length, fixed header's length) of the packet starting at `at` in the
        buffer; (0, 0) while it is not all there."""
        buf, end = self._buf, len(self._buf)
        length, shift, i = 0, 0, at + 1
        while True:
            if i >= end:
                return 0, 0
            byte = buf[i]
            length += (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
        return (i + length - at, i - at) if i + length <= end else (0, 0)

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        try:
            self._read_loop()
        except Exception as error:  # the bench says it, rather than count the rest as lost
            if not self._stopped:
                self.error = f"the subscriber stopped reading: {error!r}"
        else:
            if not self._stopped:
                self.error = "the broker closed the subscriber's connection"

    def _read_loop(self) -> None:
        sock, buf, received = self._sock, self._buf, self.received
        chunk = bytearray(1 << 20)
        view = memoryview(chunk)
        while not self._stopped:
            try:
                n = sock.recv_into(chunk)
            except TimeoutError:
                n = -1
            now = time.monotonic_ns()
            if n == 0:
                return
            if n > 0:
                buf += view[:n]
            acks = bytearray()
            at = 0
            while True:
                size, header = self._complete(at)
                if not size:
                    break
                first = buf[at]
                kind = first >> 4
                if kind == 3:  # PUBLISH
                    body = at + header
                    topic_len = (buf[body] << 8) | buf[body + 1]
                    start = body + 2 + topic_len
                    qos = (first >> 1) & 3
                    if qos:
                        packet_id = bytes(buf[start : start + 2])
                        acks += (b"\x40\x02" if qos == 1 else b"\x50\x02") + packet_id
                        start += 2
                    received.append((now, bytes(buf[start : at + size])))
                elif kind == 6:  # PUBREL (QoS 2): PUBCOMP
                    acks += b"\x70\x02" + bytes(buf[at + 2 : at + 4])
                at += size
            del buf[:at]
            if acks:
                sock.sendall(acks)
                self._last_send = time.monotonic()
            elif time.monotonic() - self._last_send > KEEPALIVE_S / 2:
                sock.sendall(b"\xc0\x00")  # PINGREQ; the PINGRESP is skipped above
                self._last_send = time.monotonic()

    def close(self) -> None:
        self._stopped = True
        try:
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        self._sock.close()


class PahoSubscriber:
    """The subscriber the bench used before `RawSubscriber` (paho, its network thread):
    kept for comparing the two (`bench_delivery.py --subscriber paho`)."""

    def __init__(self, port: int, topic: str = "hikd/+/events", qos: int = 1) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.received: list[tuple[int, bytes]] = []
        self.native_id = 0
        self.error = ""
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
        self._client.on_message = lambda c, u, m: self.received.append(
            (time.monotonic_ns(), bytes(m.payload))
        )
        self._client.on_subscribe = self._on_subscribe
        self._client.connect("127.0.0.1", port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        self._client.subscribe(topic, qos=qos)
        if not self._subscribed.wait(10):
            raise SystemExit("the MQTT subscriber got no SUBACK")

    def _on_subscribe(self, *args: object) -> None:
        self.native_id = threading.get_native_id()  # paho's network thread
        self._subscribed.set()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


SUBSCRIBERS: dict[str, type[RawSubscriber] | type[PahoSubscriber]] = {
    "raw": RawSubscriber,
    "paho": PahoSubscriber,
}
