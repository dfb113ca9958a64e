"""The listen spool's file format (`hikd.listeners.spool`), and the spools a start finds of
listen ports that are no longer configured (README "The listen front").

A record: kind (``A`` add, ``D`` done), body length, push id, CRC-32 of all that and the
body; an add's body is the sender, path, content type and the request's vetted payload. A
torn record at the end (a crash while writing) ends the reading. No asyncio here: the
supervisor reads this without a listen port (and so without the front) too.
"""

from __future__ import annotations

import re
import struct
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

import structlog

from hikd.listeners.relayed import Relayed

log = structlog.get_logger("hikd.listen")

_NAME = re.compile(r"listen-(\d+)\.spool")
_HEAD = struct.Struct("<cIQI")
_ADD_HEAD = struct.Struct("<HHHB")
ADD, DONE = b"A", b"D"


def spool_path(state_dir: Path, port: int) -> Path:
    return state_dir / f"listen-{port}.spool"


def record(kind: bytes, ident: int, body: bytes = b"") -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind + struct.pack("<IQ", len(body), ident)))
    return _HEAD.pack(kind, len(body), ident, crc) + body


def add_body(relayed: Relayed) -> bytes:
    sender, path, kind = (t.encode() for t in (relayed.sender, relayed.path, relayed.content_type))
    head = _ADD_HEAD.pack(len(sender), len(path), len(kind), min(relayed.tries, 255))
    return head + sender + path + kind + relayed.payload


def relayed_of(body: bytes) -> Relayed:
    lengths = _ADD_HEAD.unpack_from(body)
    at = _ADD_HEAD.size
    texts = []
    for length in lengths[:3]:
        texts.append(body[at : at + length].decode())
        at += length
    return Relayed(texts[0], texts[1], texts[2], body[at:], lengths[3], time.monotonic())


def read_records(data: bytes) -> Iterable[tuple[bytes, int, bytes, int]]:
    """(kind, id, body, offset) of each whole, intact record; stops at the first that is not."""
    at = 0
    while at + _HEAD.size <= len(data):
        kind, length, ident, crc = _HEAD.unpack_from(data, at)
        end = at + _HEAD.size + length
        body = data[at + _HEAD.size : end]
        if end > len(data) or kind not in (ADD, DONE):
            return
        if crc != zlib.crc32(body, zlib.crc32(kind + struct.pack("<IQ", length, ident))):
            return
        yield kind, ident, body, at
        at = end


def pending(data: bytes) -> dict[int, bytes]:
    """Push id -> add body of each push in a spool's bytes that is not done, in id order."""
    kept: dict[int, bytes] = {}
    for kind, ident, body, _offset in read_records(data):
        if kind == ADD:
            kept[ident] = body
        else:
            kept.pop(ident, None)
    return dict(sorted(kept.items()))


def spools_left(state_dir: Path, ports: Iterable[int]) -> list[tuple[int, Path]]:
    """(port, file) of each spool in `state_dir` of a listen port not in `ports` (one that
    was removed from the configuration, or moved), lowest port first."""
    configured = set(ports)
    found = []
    for path in state_dir.glob("listen-*.spool"):
        match = _NAME.fullmatch(path.name)
        if match is not None and int(match[1]) not in configured:
            found.append((int(match[1]), path))
    return sorted(found)


def warn_spools_left(state_dir: Path) -> None:
    """Without any ``[[listen]]`` port: one line per spool that still holds pushes, saying
    how to deliver them (they are never deleted here)."""
    for port, path in spools_left(state_dir, ()):
        try:
            count = len(pending(path.read_bytes()))
        except OSError:
            continue
        if count:
            log.warning(
                "pushed alarms answered on a listen port that is no longer configured are "
                "kept, not delivered",
                port=port,
                count=count,
                path=str(path),
                hint="add a [[listen]] section (any port) and restart hikd: they are "
                "relayed through it",
            )
