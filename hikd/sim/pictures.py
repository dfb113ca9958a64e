"""Deterministic JPEG pictures for alarm pictures and snapshots, without an imaging library.

A real baseline JPEG (grayscale, standard luminance DC table): a test can decode it,
and compare bytes, since the same (label, channel) always gives the same file.
"""

from __future__ import annotations

import struct
from functools import lru_cache

WIDTH = 320
HEIGHT = 240
_QUANT = 8
"""With every quantiser at 8 a flat block's DC coefficient is simply (gray - 128)."""

# ITU T.81 Annex K.3.1, table K.3: the standard luminance DC code lengths and symbols.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALUES = tuple(range(12))
# Every block is flat, so the only AC symbol ever coded is EOB (0x00): a one-code table.
_AC_BITS = (1,) + (0,) * 15
_AC_VALUES = (0x00,)


def _codes(bits: tuple[int, ...], values: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes (T.81 Annex C): symbol -> (code, length)."""
    table: dict[int, tuple[int, int]] = {}
    code = 0
    k = 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            table[values[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return table


_DC_CODES = _codes(_DC_BITS, _DC_VALUES)
_EOB = _codes(_AC_BITS, _AC_VALUES)[0x00]


class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, length: int) -> None:
        self.acc = (self.acc << length) | (value & ((1 << length) - 1))
        self.n += length
        while self.n >= 8:
            self.n -= 8
            byte = (self.acc >> self.n) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0x00)  # byte stuffing (T.81 F.1.2.3)
        self.acc &= (1 << self.n) - 1

    def flush(self) -> bytes:
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1-bits
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def _gray(channel: int, bx: int, by: int, cols: int, rows: int) -> int:
    """A test card: a diagonal gradient crossed by `channel` dark vertical bars."""
    value = 40 + (bx * 120) // cols + (by * 80) // rows
    bars = max(1, min(channel, 16))
    slot = (bx * (2 * bars + 1)) // cols
    if slot % 2 == 1:
        value = 16
    return max(0, min(255, value))


def _scan(channel: int, cols: int, rows: int) -> bytes:
    bits = _BitWriter()
    previous = 0
    for by in range(rows):
        for bx in range(cols):
            dc = _gray(channel, bx, by, cols, rows) - 128
            diff = dc - previous
            previous = dc
            size = abs(diff).bit_length()
            bits.put(*_DC_CODES[size])
            if size:
                bits.put(diff if diff > 0 else diff + (1 << size) - 1, size)
            bits.put(*_EOB)
    return bits.flush()


@lru_cache(maxsize=256)
def jpeg(label: str, channel: int, size: int = 0) -> bytes:
    """A WIDTHxHEIGHT JPEG for `channel`, tagged with `label` in a comment.

    With `size` larger than the natural size, comment segments pad it to exactly `size`
    bytes (for tests of big pictures).
    """
    cols, rows = WIDTH // 8, HEIGHT // 8
    app0 = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    comment = f"hikd-sim {label} channel {channel}".encode()
    tables = _segment(0xDB, b"\x00" + bytes([_QUANT]) * 64)
    tables += _segment(0xC0, struct.pack(">BHHB", 8, HEIGHT, WIDTH, 1) + b"\x01\x11\x00")
    tables += _segment(0xC4, b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALUES))
    tables += _segment(0xC4, b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALUES))
    scan = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + _scan(channel, cols, rows) + b"\xff\xd9"
    natural = 2 + len(app0) + len(comment) + 4 + len(tables) + len(scan)
    missing = max(0, size - natural)
    # The label's comment takes the padding first; further comment segments (4-byte
    # header, up to 65533 bytes each) take the rest, never leaving 1-3 bytes over.
    absorbed = min(missing, 65000)
    rest = missing - absorbed
    if 0 < rest < 4:
        absorbed -= 4
        rest += 4
    padding = b""
    while rest > 0:
        chunk = min(rest, 65537)
        if rest - chunk in (1, 2, 3):
            chunk -= 4
        padding += _segment(0xFE, bytes(chunk - 4))
        rest -= chunk
    label_segment = _segment(0xFE, comment + bytes(absorbed))
    return b"\xff\xd8" + app0 + label_segment + padding + tables + scan
