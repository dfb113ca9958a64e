"""The syslog sink: one RFC 5424 message per event, over UDP, TCP or a Unix socket.

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [hikd@32473 device="nvr" ...] MSG

MSGID is the event kind (alarm, health, file, log, command); the structured data carries the
event's identity so a collector can de-duplicate re-sent events on ``id``; MSG is a short
sentence a person reads ("motion started on nvr channel 3").

Delivery is as good as the transport allows: TCP counts an event once ``sendall`` has
returned (and notices a receiver that went away before writing to it again); a Unix
datagram counts once the kernel took it. UDP is at most once: a datagram counts unless
the receiver's host answered it with ICMP "port unreachable" (see `_Udp`); one sent while
the receiver's host itself is down, or lost on the way, is gone. Entry point name:
``syslog``.
"""

from __future__ import annotations

import errno
import os
import select
import socket
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hikd.event_types import event_type
from hikd.events import Event
from hikd.sinks.base import SinkContext, SinkUnavailable

SD_ID = "hikd@32473"
"""32473 is the enterprise number RFC 5612 reserves for examples and documentation."""

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13,
    "console": 14, "solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18,
    "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)

SEVERITIES = {"alert": ALERT, "crit": CRIT, "err": ERR, "warning": WARNING, "notice": NOTICE}
"""Alarm starts and pulses take their type's severity from the table of alarm types
(hikd/event_types.py; motion, line crossing, ... are notices); the end of any alarm is
informational."""

HEALTH_SEVERITY = {
    "online": INFO,
    "armed": INFO,
    "rearmed": INFO,
    "backfill": INFO,
    "offline": WARNING,
    "disarmed": WARNING,
    "session_heartbeat_lost": WARNING,
    "arming_lost": WARNING,
    "arming_reconnecting": WARNING,
    "arming_reconnect_closed": WARNING,
    "arming_stalled": WARNING,
    "relogin": WARNING,
    "sink_unavailable": WARNING,
    "listen_refused": WARNING,
    "listen_counts": INFO,
    "backfill_unavailable": WARNING,
    "backfill_failed": WARNING,
    "auth_failed": ERR,
    "arming_failed": ERR,
    # Events were lost (by the SDK, or dropped by hikd when its buffers were full), or
    # cannot be stored.
    "alarms_lost": ERR,
    "bus_overflow": ERR,
    "outbox_overflow": ERR,
    "outbox_unwritable": ERR,
    # The vendor library crashed its process; its devices are offline until it restarts.
    "device_host_crashed": ERR,
}
"""Health by type; any other is a notice, and the end of a condition (``stop``) is
informational unless it ended in failure (``failed``: the library could not log in again)."""

_MAX_STREAM_MESSAGE = 64 * 1024


class SyslogConfig(BaseModel):
    """``[sinks.syslog]``"""

    model_config = ConfigDict(extra="forbid")

    transport: Literal["udp", "tcp", "unix"] = "udp"
    host: str = "localhost"
    port: int = Field(default=514, ge=1, le=65535)
    socket_path: Path = Path("/dev/log")
    app_name: str = "hikd"
    hostname: str = Field(default_factory=socket.gethostname)
    facility: int = FACILITIES["daemon"]
    """A name (``daemon``, ``local0`` ...) or its number."""
    framing: Literal["octet-counting", "non-transparent"] = "octet-counting"
    """TCP framing (RFC 6587): a length before each message, or a newline after it."""
    max_datagram_bytes: int = Field(default=2048, ge=480, le=65000)
    """UDP and Unix datagrams are cut to this size (RFC 5426 asks receivers for 2048)."""
    timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("facility", mode="before")
    @classmethod
    def _facility(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().isdigit():
            name = value.strip().lower()
            if name not in FACILITIES:
                raise ValueError(f"unknown facility {value!r}; use one of {', '.join(FACILITIES)}")
            return FACILITIES[name]
        if not 0 <= int(value) <= 23:
            raise ValueError("must be 0..23")
        return value


# -- the message -----------------------------------------------------------------------


def severity(event: Event) -> int:
    if event.kind == "alarm":
        return INFO if event.state == "stop" else SEVERITIES[event_type(event.type).severity]
    if event.kind == "health":
        if event.state == "stop":
            return ERR if event.attributes.get("failed") else INFO
        return HEALTH_SEVERITY.get(event.type, NOTICE)
    if event.kind == "file":
        return ERR if "fail" in event.type else INFO
    if event.kind == "command":
        # Someone switched a siren or a detection: worth reading even when it worked.
        return NOTICE if event.attributes.get("outcome") == "done" else WARNING
    return INFO


def sentence(event: Event) -> str:
    """What happened, the way a person says it."""
    words = event.type.replace("_", " ")
    name = event.device.name
    where = name if event.channel is None else f"{name} channel {event.channel}"
    a = event.attributes
    detail = a.get("reason") or a.get("description") or a.get("message")
    if event.kind == "alarm":
        verb = {"start": " started", "stop": " ended"}.get(event.state, "")
        return f"{words}{verb} on {where}"
    if event.kind == "health":
        text = f"{name} is {words}" if event.type in ("online", "offline") else f"{words} on {name}"
        return f"{text}: {detail}" if detail else text
    if event.kind == "file":
        text = f"{words} on {where}"
        return f"{text}: {event.files[0]}" if event.files else text
    if event.kind == "command":
        text = f"command to {name}: {a.get('what')} ({a.get('outcome')}"
        return f"{text}: {detail})" if detail else f"{text})"
    return f"{words} on {where}: {detail}" if detail else f"{words} on {where}"


def _header_field(text: str, limit: int) -> str:
    """RFC 5424 header fields are printable US-ASCII without spaces, or ``-``."""
    cleaned = "".join(c if "!" <= c <= "~" else "_" for c in text)[:limit]
    return cleaned or "-"


def sd_escape(value: str) -> str:
    """PARAM-VALUE escaping (RFC 5424 6.3.3): ``"``, ``\\`` and ``]`` get a backslash.
    Line breaks become spaces: they would end the message on a newline-framed stream."""
    value = value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
    return value.replace("\r", " ").replace("\n", " ")


def format_message(event: Event, config: SyslogConfig, procid: int) -> str:
    pri = config.facility * 8 + severity(event)
    when = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
    params = {
        "device": event.device.name,
        "serial": event.device.serial,
        "channel": "" if event.channel is None else str(event.channel),
        "type": event.type,
        "state": event.state,
        "id": event.id,
        "kind": event.kind,
    }
    sd = " ".join(f'{k}="{sd_escape(v)}"' for k, v in params.items() if v)
    header = " ".join(
        (
            f"<{pri}>1",
            when.isoformat(timespec="microseconds"),
            _header_field(config.hostname, 255),
            _header_field(config.app_name, 48),
            str(procid),
            _header_field(event.kind, 32),
        )
    )
    return f"{header} [{SD_ID} {sd}] {sentence(event)}"


def truncate(data: bytes, limit: int) -> bytes:
    """Cut to `limit` bytes without splitting a UTF-8 character (the sentence goes last)."""
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", errors="ignore").encode()


# -- transports ------------------------------------------------------------------------


def _peer_closed(sock: socket.socket) -> bool:
    """Has the receiver closed this stream? A write into a closed TCP connection succeeds
    locally and is lost, so look before writing (syslog receivers never send data)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class _Transport:
    """One socket, opened on demand and again after a failure (`close()` on error)."""

    def __init__(self, config: SyslogConfig) -> None:
        self.config = config
        self._sock: socket.socket | None = None

    def connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = self._open()
        return self._sock

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def failed(self, error: OSError) -> None:
        """`send` raised `error`: drop the socket, the next send opens a new one."""
        self.close()

    def send(self, message: bytes) -> None:
        raise NotImplementedError

    def _open(self) -> socket.socket:
        raise NotImplementedError


class _Tcp(_Transport):
    def _open(self) -> socket.socket:
        cfg = self.config
        sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout_s)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return sock

    def send(self, message: bytes) -> None:
        if self._sock is not None and _peer_closed(self._sock):
            self.close()
        message = message[:_MAX_STREAM_MESSAGE]
        if self.config.framing == "octet-counting":
            frame = f"{len(message)} ".encode() + message
        else:
            frame = message.replace(b"\n", b" ") + b"\n"
        self.connect().sendall(frame)


class _Udp(_Transport):
    """A connected UDP socket, kept across failures.

    A datagram to a port nobody listens on comes back as ICMP "port unreachable"; the
    kernel reports it on the *same connected socket* as ECONNREFUSED on its next send or
    receive, once. A fresh socket would forget it, and its first send "succeeds": that is
    how every event of an outage was counted as delivered and lost. So the socket is kept,
    each datagram is followed by a look for a refusal already there (on loopback and a
    LAN it arrives at once), and after a refusal the sink is "suspect": each datagram
    then waits up to `_REFUSAL_WAIT_S` for one before it counts, until one gets through.
    Datagrams sent before the first refusal came back are lost: UDP is at most once.
    """

    def __init__(self, config: SyslogConfig) -> None:
        super().__init__(config)
        self._suspect = False

    def _open(self) -> socket.socket:
        cfg = self.config
        family, type_, proto, _, address = socket.getaddrinfo(
            cfg.host, cfg.port, type=socket.SOCK_DGRAM
        )[0]
        sock = socket.socket(family, type_, proto)
        sock.settimeout(cfg.timeout_s)
        sock.connect(address)
        return sock

    def failed(self, error: OSError) -> None:
        if error.errno == errno.ECONNREFUSED and self._sock is not None:
            self._suspect = True  # keep the socket: it is the one the refusals come back to
        else:
            self.close()

    def send(self, message: bytes) -> None:
        sock = self.connect()
        sock.send(truncate(message, self.config.max_datagram_bytes))
        if _refused(sock, _REFUSAL_WAIT_S if self._suspect else 0.0):
            self._suspect = True
            raise ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
        self._suspect = False


_REFUSAL_WAIT_S = 0.25
"""How long a datagram sent after a refusal waits for another before it counts: longer
than a round trip to any syslog receiver worth using over UDP."""


def _refused(sock: socket.socket, wait: float) -> bool:
    """Has an ICMP "port unreachable" come back on `sock` (within `wait` seconds)?

    A pending socket error makes the socket readable; SO_ERROR reads and clears it.
    A receiver that sends datagrams back is up (syslog receivers do not; none is read)."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED


class _Unix(_Transport):
    """``/dev/log`` is a datagram socket with systemd and rsyslog; a few collectors listen
    on a stream socket instead, where each message ends with a newline."""

    def _open(self) -> socket.socket:
        path = str(self.config.socket_path)
        for type_ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = socket.socket(socket.AF_UNIX, type_)
            sock.settimeout(self.config.timeout_s)
            try:
                sock.connect(path)
                return sock
            except OSError as error:
                sock.close()
                if error.errno != errno.EPROTOTYPE:
                    raise
        raise OSError(errno.EPROTOTYPE, "neither a datagram nor a stream socket")

    def send(self, message: bytes) -> None:
        sock = self._sock
        if sock is not None and sock.type == socket.SOCK_STREAM and _peer_closed(sock):
            self.close()
        sock = self.connect()
        if sock.type == socket.SOCK_STREAM:
            sock.sendall(message[:_MAX_STREAM_MESSAGE].replace(b"\n", b" ") + b"\n")
        else:
            sock.send(truncate(message, self.config.max_datagram_bytes))


_TRANSPORTS: dict[str, type[_Transport]] = {"tcp": _Tcp, "udp": _Udp, "unix": _Unix}


class SyslogSink:
    """Sends events to a syslog collector (entry point ``syslog``)."""

    Config: ClassVar[type[BaseModel]] = SyslogConfig

    def __init__(self, config: SyslogConfig, context: SinkContext) -> None:
        self.config = config
        self.context = context
        self._procid = os.getpid()
        self._transport = _TRANSPORTS[config.transport](config)

    @property
    def where(self) -> str:
        cfg = self.config
        if cfg.transport == "unix":
            return f"unix:{cfg.socket_path}"
        return f"{cfg.transport}://{cfg.host}:{cfg.port}"

    def open(self) -> None:
        """Connect now, so a wrong address shows at start (the worker retries)."""
        try:
            self._transport.connect()
        except OSError as error:
            self._transport.close()
            raise SinkUnavailable(self._problem(error)) from None

    def send(self, batch: Sequence[Event]) -> int:
        delivered = 0
        for event in batch:
            message = format_message(event, self.config, self._procid).encode()
            try:
                self._transport.send(message)
            except OSError as error:
                self._transport.failed(error)
                if delivered:
                    return delivered
                raise SinkUnavailable(self._problem(error)) from None
            delivered += 1
        return delivered

    def close(self) -> None:
        self._transport.close()

    def _problem(self, error: OSError) -> str:
        reason = error.strerror or str(error) or type(error).__name__
        if isinstance(error, socket.gaierror):
            return f"cannot resolve the syslog host {self.config.host!r}: {reason}"
        return f"cannot send to syslog at {self.where}: {reason}"
