"""The one model for everything that leaves hikd: alarms, health and file events.

Data flows one way: devices -> decoders -> events -> outbox -> sinks. An `Event` is
immutable once built; sinks serialise it with `to_json()` and consumers de-duplicate
on `id` (delivery is at-least-once).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

Kind = Literal["alarm", "health", "file", "log", "command"]
State = Literal["start", "stop", "pulse"]

_uuid_lock = threading.Lock()
_last_ms = 0
_seq = 0
_random = b""
_random_used = 0
_RANDOM_POOL = 4096
"""Random bytes read from the OS at a time. One os.urandom per id was a system call that
releases the GIL, per event: the decoder thread then waited for the bus threads to hand
the GIL back, which cost more than the decoding itself."""


def _forget_random() -> None:
    # A forked child must not hand out the parent's remaining random bytes again.
    global _random, _random_used
    _random, _random_used = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def new_event_id() -> str:
    """A UUIDv7 string: unique, and sorts in creation order within this process."""
    global _last_ms, _seq, _random, _random_used
    with _uuid_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or earlier, clock stepped back) millisecond: keep order with a counter.
            ms = _last_ms
            _seq += 1
            if _seq >= 1 << 12:
                ms += 1
                _seq = 0
        else:
            _seq = 0
        _last_ms = ms
        seq = _seq
        if _random_used >= len(_random):
            _random, _random_used = os.urandom(_RANDOM_POOL), 0
        rand_bytes = _random[_random_used : _random_used + 8]
        _random_used += 8
    rand = int.from_bytes(rand_bytes, "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# One encoder for every event (json.dumps with options builds a new one per call).
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
_encode_string = json.encoder.encode_basestring_ascii


def _json_value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)  # what the encoder writes for an int
    return _encode(value)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """Which device an event is about: the configured name, its serial and address."""

    name: str
    serial: str = ""
    address: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "serial": self.serial, "address": self.address}


@dataclass(frozen=True, slots=True)
class Event:
    kind: Kind
    type: str
    state: State
    device: DeviceRef
    channel: int | None = None
    time: datetime = field(default_factory=utc_now)
    received: datetime = field(default_factory=utc_now)
    attributes: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] | None = None
    files: tuple[str, ...] = ()
    id: str = field(default_factory=new_event_id)
    _json: str | None = field(default=None, init=False, repr=False, compare=False)
    """`to_json()`'s text, made once: the outbox stores it and sinks send the same text
    (an Event is immutable once built, so it cannot go stale)."""
    _json_bytes: bytes | None = field(default=None, init=False, repr=False, compare=False)
    """The same as bytes (`to_json_bytes()`), made once."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "type": self.type,
            "state": self.state,
            "device": self.device.to_dict(),
            "channel": self.channel,
            "time": self.time.isoformat(),
            "received": self.received.isoformat(),
            "attributes": self.attributes,
            "raw": self.raw,
            "files": list(self.files),
        }

    def to_json(self) -> str:
        """`to_dict()` as compact JSON (non-ASCII escaped, unknown types as `str()`)."""
        text = self._json
        if text is None and self._json_bytes is not None:
            text = self._json_bytes.decode()
            object.__setattr__(self, "_json", text)
        if text is None:
            # The same text as encoding to_dict() whole, without building that dict (the
            # outbox writer does this for every event).
            device = self.device
            files = self.files
            text = "".join(
                (
                    '{"id":',
                    _json_value(self.id),
                    ',"kind":',
                    _json_value(self.kind),
                    ',"type":',
                    _json_value(self.type),
                    ',"state":',
                    _json_value(self.state),
                    ',"device":{"name":',
                    _json_value(device.name),
                    ',"serial":',
                    _json_value(device.serial),
                    ',"address":',
                    _json_value(device.address),
                    '},"channel":',
                    _json_value(self.channel),
                    ',"time":',
                    _json_value(self.time.isoformat()),
                    ',"received":',
                    _json_value(self.received.isoformat()),
                    ',"attributes":',
                    _encode(self.attributes),
                    ',"raw":',
                    "null" if self.raw is None else _encode(self.raw),
                    ',"files":',
                    _encode(list(files)) if files else "[]",
                    "}",
                )
            )
            object.__setattr__(self, "_json", text)
        return text

    def to_json_bytes(self) -> bytes:
        """`to_json()` as bytes, made once: what the outbox stores and every sink sends
        (one serialisation per event, whichever sinks there are)."""
        data = self._json_bytes
        if data is None:
            data = self.to_json().encode()
            object.__setattr__(self, "_json_bytes", data)
        return data

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        dev = d.get("device") or {}
        return cls(
            id=d["id"],
            kind=d["kind"],
            type=d["type"],
            state=d["state"],
            device=DeviceRef(dev.get("name", ""), dev.get("serial", ""), dev.get("address", "")),
            channel=d.get("channel"),
            time=datetime.fromisoformat(d["time"]),
            received=datetime.fromisoformat(d["received"]),
            attributes=d.get("attributes") or {},
            raw=d.get("raw"),
            files=tuple(d.get("files") or ()),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_stored_json(cls, text: str | bytes) -> Event:
        """`from_json` for what `to_json()` wrote (the outbox's rows): the event keeps
        `text` as its own JSON, so sinks send the stored bytes without encoding again."""
        event = cls.from_dict(_loads(text))
        object.__setattr__(event, "_json_bytes" if isinstance(text, bytes) else "_json", text)
        return event


def _loads(text: str | bytes) -> Any:
    """`json.loads`, at orjson's speed where orjson reads the same. orjson refuses NaN,
    Infinity and lone surrogates (which json.dumps writes) and reads an integer past 64 bits
    as a float; json reads those texts again (a float that large is rare)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    if isinstance(value, dict) and not (
        _exact(value.get("attributes")) and _exact(value.get("raw"))
    ):
        return json.loads(text)
    return value


def _exact(value: Any) -> bool:
    """No float of 2**63 or more in `value` (where orjson may have read an integer)."""
    kind = type(value)
    if kind is dict:
        return all(map(_exact, value.values()))
    if kind is list:
        return all(map(_exact, value))
    return kind is not float or -_BIG < value < _BIG


_BIG = float(2**63)


def health(device: DeviceRef, type_: str, state: State = "pulse", **attributes: Any) -> Event:
    """A health event (online, offline, rearmed, auth_failed, ...) about one device."""
    return Event(kind="health", type=type_, state=state, device=device, attributes=attributes)
