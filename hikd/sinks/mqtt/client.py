"""paho's MQTT client as the sink uses it: work per batch, not per message.

paho does one system call per step of a message: a wake-up of its network thread for every
`publish()`, one ``send`` per packet, three ``recv`` per PUBACK (fixed header, length, rest).
Each call releases the interpreter's lock, and a thread taking it back from a busy one waits
up to the switch interval (5 ms). At 1,000 alarms/s (four messages per alarm with their
states) that was the largest cost of hikd's alarm path (bench/README.md). This subclass keeps
paho's protocol code and changes only how bytes reach the socket:

* `batch()`: the messages published inside it are written at its end, by the publishing
  thread itself over a plain TCP socket (one ``send``, no wake-up of the network thread, which
  then only reads the acknowledgements), else by the network thread, woken once;
* the packets queued when the network thread writes go out in one ``send``;
* the socket is read 64 kB at a time and paho's small reads are served from that buffer;
* `publish_many()` publishes a batch of QoS 1/2 messages inside `batch()` the way paho's
  `publish()` does, once per batch where paho works per message: one take of its locks, no
  debug-log formatting, one condition for all of the messages' acknowledgements;
* an MQTT 3.1.1 acknowledgement is read as the message id it is, and the acknowledgements
  waiting in the read buffer are taken together (paho reads and dispatches each packet);
* `on_acknowledged` is called once per read that brought acknowledgements (the sink's worker
  wakes then, not per message), and `forget_unacknowledged` frees paho's in-flight slots.

It overrides private methods of paho 2.x (``_packet_queue``, ``_packet_write``, ``_sock_recv``,
``loop_read``, ``_handle_pubackcomp``), reads its connection state (``_state``) and fills its
queues as ``publish()`` does (``_out_messages``, ``_out_packet``);
tests/sinks/mqtt/test_client.py runs them against a real mosquitto, so a paho release that
changes them fails there.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, _ConnectionState

if TYPE_CHECKING:
    from paho.mqtt.client import _OutPacket

_READ_SIZE = 65536
_WRITE_MOST = 262144
"""Bytes joined into one ``send`` at most (large retained pictures go on their own)."""
_COMMAND = 0xF0
_CONNECTED = _ConnectionState.MQTT_CS_CONNECTED
_WAITING = {1: mqtt.mqtt_ms_wait_for_puback, 2: mqtt.mqtt_ms_wait_for_pubrec}
_TWO_BYTES = struct.Struct("!H")
_ACKS = (mqtt.PUBACK, mqtt.PUBCOMP)
_HEAD_SHORT = struct.Struct("!BBH")  # remaining length < 128: one byte
_HEAD_LONG = struct.Struct("!BBBH")  # < 16,384: two


def _out_packet(
    command: int, mid: int, qos: int, packet: bytes | bytearray, info: mqtt.MQTTMessageInfo | None
) -> _OutPacket:
    """An entry of paho's `_out_packet` queue, as its own `_packet_queue` makes it."""
    return {
        "command": command,
        "mid": mid,
        "qos": qos,
        "pos": 0,
        "to_process": len(packet),
        "packet": packet,
        "info": info,
    }


def _publish_head(first: int, topic: int, payload: int) -> bytes:
    """A PUBLISH's fixed header and its topic's length (MQTT 3.1.1, 2.2.3 and 3.3.2)."""
    remaining = 4 + topic + payload  # the topic's length, the topic, the message id, payload
    if remaining < 128:
        return _HEAD_SHORT.pack(first, remaining, topic)
    if remaining < 16384:
        return _HEAD_LONG.pack(first, remaining & 127 | 128, remaining >> 7, topic)
    if remaining > 268_435_455:
        raise ValueError("an MQTT message takes 256 MB at most")
    head = bytearray((first,))
    while True:
        remaining, digit = divmod(remaining, 128)
        head.append(digit | 128 if remaining else digit)
        if not remaining:
            return bytes(head) + _TWO_BYTES.pack(topic)


class _Acknowledgement(mqtt.MQTTMessageInfo):
    """paho's message info, sharing one condition among all messages of a client instead of
    building one per message (a fifth of paho's time per message); a waiter is woken by
    every acknowledgement and looks again at its own."""

    __slots__ = ()

    def __init__(self, mid: int, condition: threading.Condition) -> None:
        self.mid = mid
        self._published = False
        self._condition = condition
        self.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        self._iterpos = 0

    def _set_as_published(self) -> None:
        with self._condition:
            self._published = True
            self._condition.notify_all()


class BatchingClient(mqtt.Client):
    """paho's client, with batched wake-ups, writes and reads (see the module).

    It also acknowledges the broker's TCP segments at once: a broker that leaves Nagle on
    (mosquitto's default) sends the first PUBACK of a batch and holds the rest until that
    segment is acknowledged; the kernel delays that ACK by up to 40 ms when the client has
    nothing to send, as it has while it waits for the PUBACKs. Measured: 44 ms per batch of 5
    events against a default mosquitto. TCP_QUICKACK after each read sends the ACK at once
    (Linux resets the flag, hence after every read).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batching: int | None = None  # the thread inside batch()
        self._batch_queued = False
        self._read_buffer = b""
        self._read_at = 0
        self._read_from: object = None  # the socket `_read_buffer` came from
        # Packets are written by the network thread and by the thread of `batch()`: one at
        # a time, or their bytes would interleave on the socket.
        self._write_lock = threading.Lock()
        self.on_acknowledged: Callable[[], None] | None = None
        self._acknowledgements = threading.Condition()
        self._acknowledged = False  # a read brought acknowledgements

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Publish inside this to wake paho's network thread once, at the end, instead of
        once per message. Only with `loop_start()`; one thread at a time."""
        if self._thread is None:
            yield
            return
        self._batching = threading.get_ident()
        try:
            yield
        finally:
            self._batching = None
            if self._batch_queued:
                self._batch_queued = False
                if not self._write_now():
                    self._wake_network_thread()

    def publish_many(
        self, messages: Sequence[tuple[str, bytes, bool]], qos: int
    ) -> list[mqtt.MQTTMessageInfo]:
        """`publish()` each (topic, payload, retain), in order; inside `batch()`, connected,
        at QoS 1 or 2 over MQTT 3.1.1, with the work per message cut to building its packet
        and its record (what paho's `publish()` and `_send_publish()` do, less their checks
        of what hikd never sends: properties, payload types, a queue limit)."""
        if (
            qos == 0
            or self._protocol == mqtt.MQTTv5
            or self._sock is None
            or self._max_queued_messages > 0
            or self._batching != threading.get_ident()
        ):
            return [self.publish(t, p, qos=qos, retain=r) for t, p, r in messages]
        infos: list[mqtt.MQTTMessageInfo] = []
        now = time.monotonic()
        waiting = _WAITING[qos]
        command = mqtt.PUBLISH | (qos << 1)
        pack = _TWO_BYTES.pack
        condition = self._acknowledgements
        out, packets = self._out_messages, self._out_packet
        limit = self._max_inflight_messages
        if messages:  # (before the loop: what was queued goes out, even after an error)
            self._batch_queued = True
        with self._out_message_mutex, self._mid_generate_mutex:
            for topic, payload, retain in messages:
                name = topic.encode()
                if b"+" in name or b"#" in name or len(name) > 65535:
                    raise ValueError(f"not a topic to publish to: {topic!r}")
                mid = self._last_mid % 65535 + 1
                self._last_mid = mid
                message = mqtt.MQTTMessage.__new__(mqtt.MQTTMessage)
                message.timestamp, message.dup, message.mid = now, False, mid
                message._topic, message.payload, message.qos = name, payload, qos
                message.retain, message.properties = retain, None
                message.info = info = _Acknowledgement(mid, condition)
                infos.append(info)
                if mid in out:  # 65,535 messages in flight: what paho's publish() says
                    info.rc = MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
                    continue
                out[mid] = message
                if limit and self._inflight_messages >= limit:
                    message.state = mqtt.mqtt_ms_queued  # paho sends it when a slot frees
                    continue
                self._inflight_messages += 1
                message.state = waiting
                packet = b"".join((_publish_head(command | retain, len(name), len(payload)),
                                   name, pack(mid), payload))  # fmt: skip
                packets.append(_out_packet(command, mid, qos, packet, info))
        return infos

    def _write_now(self) -> bool:
        """Write the queued packets from this thread; False when the network thread must:
        a TLS or websocket connection (one SSL object must not be read and written by two
        threads at once), no connection (reconnecting: its CONNECT goes first), a socket that
        takes no more now, or a failure (the network thread handles it)."""
        if type(self._sock) is not socket.socket or self._state != _CONNECTED:
            return False
        rc = self._packet_write()
        return rc == MQTTErrorCode.MQTT_ERR_SUCCESS and not self._out_packet

    def forget_unacknowledged(self) -> None:
        """Drop every message not acknowledged yet (the outbox sends them again) and the
        in-flight slots they held: paho's `drop_out_messages` leaves its count as it is, and
        with ``max_inflight_messages`` set, every later message would wait for a slot."""
        with self._out_message_mutex:
            self._out_messages.clear()
            self._inflight_messages = 0

    def _wake_network_thread(self) -> None:
        # What paho's _packet_queue does after queueing a packet.
        if self._sockpairW is not None:
            with contextlib.suppress(BlockingIOError):
                self._sockpairW.send(b"0")
        self._call_socket_register_write()

    # -- paho's internals ----------------------------------------------------------------
    def _packet_queue(
        self,
        command: int,
        packet: bytes | bytearray,
        mid: int,
        qos: int,
        info: mqtt.MQTTMessageInfo | None = None,
    ) -> MQTTErrorCode:
        if self._batching is None or self._batching != threading.get_ident():
            return super()._packet_queue(command, packet, mid, qos, info)
        self._out_packet.append(_out_packet(command, mid, qos, packet, info))
        self._batch_queued = True
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_write(self) -> MQTTErrorCode:
        with self._write_lock:
            queue = self._out_packet
            if len(queue) > 1:
                _join_packets(queue)
            rc: MQTTErrorCode = super()._packet_write()
            return rc

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_from is not self._sock:  # a new connection: nothing buffered is its
            self._read_buffer, self._read_at, self._read_from = b"", 0, self._sock
        buffer, at = self._read_buffer, self._read_at
        if at >= len(buffer):
            buffer = super()._sock_recv(max(bufsize, _READ_SIZE))
            self._quick_ack()
            if len(buffer) <= bufsize:
                self._read_buffer, self._read_at = b"", 0
                return buffer
            at = 0
            self._read_buffer = buffer
        self._read_at = at + bufsize
        return buffer[at : at + bufsize]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        # paho reads as many packets as it has messages in flight, then waits in select();
        # what is left in the buffer would wait there for the next bytes on the socket.
        rc: MQTTErrorCode = super().loop_read(max_packets)
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._sock is not None
            and self._read_from is self._sock
            and self._read_at < len(self._read_buffer)
        ):
            rc = super().loop_read(max_packets)
        if self._acknowledged:
            self._acknowledged = False
            hook = self.on_acknowledged
            if hook is not None:
                hook()
        return rc

    def _handle_pubackcomp(self, cmd: Any) -> MQTTErrorCode:
        # An MQTT 3.1.1 PUBACK/PUBCOMP is the message id and nothing else; paho 2 builds a
        # reason code and a properties object for each (half its time per message).
        self._acknowledged = True
        packet = self._in_packet["packet"]
        if self._protocol == mqtt.MQTTv5 or len(packet) != 2 or self.on_publish is not None:
            return super()._handle_pubackcomp(cmd)
        return self._published([(packet[0] << 8) | packet[1]])

    def _packet_read(self) -> MQTTErrorCode:
        # Between packets, the MQTT 3.1.1 PUBACKs and PUBCOMPs next in the read buffer (the
        # broker's answers to a batch come together) are taken at once: 4 bytes each, fixed.
        # The socket is read here first, so that the first acknowledgement of a read is
        # taken with the rest (paho read it alone, and dispatched it: one per read).
        if (
            self._in_packet["command"] == 0
            and (self._read_from is not self._sock or self._read_at >= len(self._read_buffer))
            and not self._fill_read_buffer()
        ):
            return MQTTErrorCode.MQTT_ERR_AGAIN  # nothing more now: what paho says
        if (
            self._in_packet["command"] == 0
            and self._read_from is self._sock
            and self._protocol != mqtt.MQTTv5
            and self.on_publish is None
        ):
            buffer, at = self._read_buffer, self._read_at
            end = at
            while end + 4 <= len(buffer) and buffer[end] in _ACKS and buffer[end + 1] == 2:
                end += 4
            if end > at:
                self._read_at = end
                with self._msgtime_mutex:
                    self._last_bytes_received = time.monotonic()
                self._acknowledged = True
                acks = buffer[at:end]
                return self._published(
                    [(acks[i] << 8) | acks[i + 1] for i in range(2, len(acks), 4)]
                )
        rc: MQTTErrorCode = super()._packet_read()
        return rc

    def _fill_read_buffer(self) -> bool:
        """Read what the socket has into the read buffer; False if it has nothing now. A
        failure or the end of the connection is left to paho's own read, which meets it
        again and handles it."""
        try:
            data = super()._sock_recv(_READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if data:
            self._quick_ack()
            self._read_buffer, self._read_at, self._read_from = data, 0, self._sock
        return True

    def _published(self, mids: list[int]) -> MQTTErrorCode:
        """The broker acknowledged the messages `mids` (QoS 1 and 2, in order)."""
        with self._out_message_mutex:
            out = self._out_messages
            done = [m for m in map(out.pop, mids, [None] * len(mids)) if m is not None]
            self._inflight_messages -= sum(1 for m in done if m.qos > 0)
            # paho's _update_inflight walks every message in flight to find one waiting for
            # a slot: only when one waits.
            waiting = self._max_inflight_messages > 0 and self._inflight_messages < len(out)
            with self._acknowledgements:
                for m in done:
                    if type(m.info) is _Acknowledgement:
                        m.info._published = True
                    else:
                        m.info._set_as_published()
                self._acknowledgements.notify_all()
            if waiting:
                return self._update_inflight()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _quick_ack(self) -> None:
        setsockopt = getattr(self._sock, "setsockopt", None)  # not on websockets
        if setsockopt is not None and hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _join_packets(queue: Any) -> None:
    """Join the packets at the front of paho's queue into one, so that they go out in one
    ``send``. Packets paho must act on once written (a QoS 0 PUBLISH: its on_publish; a
    DISCONNECT: closing) stay as they are; paho acts on nothing else after a write, so the
    joined packet is marked as a QoS 1 PUBLISH (whose acknowledgement is the broker's)."""
    taken = []
    parts: list[bytes | bytearray | memoryview] = []
    size = 0
    while queue and size < _WRITE_MOST:
        packet = queue[0]
        kind = packet["command"] & _COMMAND
        if kind == mqtt.DISCONNECT or (kind == mqtt.PUBLISH and packet["qos"] == 0):
            break
        taken.append(queue.popleft())
        data = packet["packet"]
        if packet["pos"]:
            data = memoryview(data)[packet["pos"] :]
        parts.append(data)
        size += len(data)
    if not parts:
        return
    if len(taken) == 1:
        queue.appendleft(taken[0])
        return
    joined = b"".join(parts)
    queue.appendleft(
        {
            "command": mqtt.PUBLISH,
            "mid": 0,
            "qos": 1,
            "pos": 0,
            "to_process": len(joined),
            "packet": joined,
            "info": None,
        }
    )
