"""Real H.264 video for the simulated recordings: a 10 s x264 sample, looped on the timeline.

`media/sample.h264` was made once with Debian's ffmpeg (kept, not generated at run time):

    ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25 -t 10 -c:v libx264 -preset veryfast \
      -profile:v baseline -pix_fmt yuv420p -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 \
      -b:v 200k -x264-params aud=1:repeat-headers=1 -f h264 sample.h264

One IDR (with SPS/PPS) per second and no B-frames, so every whole second of the timeline
starts a decodable stream and the sample loops on any second. Frame ``k`` of timeline
second ``s`` is sample frame ``(s mod 10) * 25 + k``: the same second always has the same
bytes, whichever request asks for it.

The byte-exact download (`/ISAPI/ContentMgmt/download`) serves what a Hikvision recorder
stores: a 40-byte ``IMKH`` header (system_format 2, MPEG-PS) then an MPEG program stream,
one pack per frame with its PTS from the timeline. So the file of a span is the header plus
the packs of its seconds, and pieces of a recording cut on whole seconds join into the
whole file by dropping the header of every piece but the first.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SAMPLE = Path(__file__).with_name("media") / "sample.h264"
FPS = 25
CLOCK = 90_000
"""MPEG and RTP video clock (Hz)."""
TICKS_PER_FRAME = CLOCK // FPS
IMKH_PS = bytes.fromhex("494d4b4801020000020001000000000000000000") + bytes(20)
"""Hikvision's file header: "IMKH", version, system_format 2 (PS), video 0x0100 (H.264)."""
_START = b"\x00\x00\x00\x01"
_MAX_PES_PAYLOAD = 65_000
_AUD = 9


@dataclass(frozen=True, slots=True)
class Sample:
    frames: tuple[tuple[bytes, ...], ...]
    """NAL units (no start codes) of each frame, in decoding order."""
    second_sizes: tuple[int, ...]
    """Bytes of the program stream of each second of the sample (packs of its 25 frames)."""

    @property
    def seconds(self) -> int:
        return len(self.frames) // FPS


@functools.cache
def sample() -> Sample:
    """The sample, split into frames at its access unit delimiters."""
    data = SAMPLE.read_bytes()
    nals = [n.lstrip(b"\x00") for n in data.split(b"\x00\x00\x01")]
    frames: list[list[bytes]] = []
    for nal in nals:
        if not nal:
            continue
        if nal[0] & 0x1F == _AUD or not frames:
            frames.append([])
        frames[-1].append(nal)
    if not frames or len(frames) % FPS:
        raise ValueError(f"{SAMPLE} must hold whole seconds of {FPS} fps video")
    done = tuple(tuple(f) for f in frames)
    sizes = [0] * (len(done) // FPS)
    for i, frame in enumerate(done):
        sizes[i // FPS] += len(_pack(frame, 0, i % FPS == 0))
    return Sample(done, tuple(sizes))


def timeline_second(dt: datetime) -> int:
    """Whole seconds of the device's wall clock since 1970 (the timeline's frame clock)."""
    return int(dt.replace(tzinfo=UTC).timestamp())


def frames(start: datetime, end: datetime) -> Iterator[tuple[tuple[bytes, ...], int]]:
    """(NAL units, 90 kHz timestamp) of every frame from `start` to `end`, both seconds
    included."""
    video = sample()
    first, last = timeline_second(start), timeline_second(end)
    for second in range(first, last + 1):
        base = (second % video.seconds) * FPS
        for k in range(FPS):
            yield video.frames[base + k], (second * FPS + k) * TICKS_PER_FRAME


def ps_size(start: datetime, end: datetime) -> int:
    """Bytes of `ps_file(start, end)`, without making it."""
    video = sample()
    first, last = timeline_second(start), timeline_second(end)
    if last < first:
        return len(IMKH_PS)
    n = video.seconds
    whole, rest = divmod(last - first + 1, n)
    total = whole * sum(video.second_sizes)
    total += sum(video.second_sizes[(first + i) % n] for i in range(rest))
    return len(IMKH_PS) + total


def ps_file(start: datetime, end: datetime) -> bytes:
    """The recorder's file for the span: IMKH header, then one PS pack per frame."""
    video = sample()
    packs = _packs()
    out = [IMKH_PS]
    for second in range(timeline_second(start), timeline_second(end) + 1):
        base = (second % video.seconds) * FPS
        for k in range(FPS):
            # The frame's pack made once with time 0; only its SCR and PTS change.
            pack, at = packs[base + k]
            pts = (second * FPS + k) * TICKS_PER_FRAME
            out += (_pack_header(pts), pack[14:at], _timestamp(0x2, pts), pack[at + 5 :])
    return b"".join(out)


@functools.cache
def _packs() -> tuple[tuple[bytes, int], ...]:
    """Each sample frame's pack at time 0, and where its PTS is."""
    made = []
    for i, nals in enumerate(sample().frames):
        pack = _pack(nals, 0, i % FPS == 0)
        made.append((pack, pack.index(b"\x00\x00\x01\xe0") + 9))
    return tuple(made)


def _pack(nals: tuple[bytes, ...], pts: int, key: bool) -> bytes:
    """One MPEG-2 PS pack: pack header, system header and PSM before each IDR, then the
    frame as PES packets of stream 0xE0 (Annex B start codes; PTS on the first)."""
    es = b"".join(_START + nal for nal in nals)
    out = [_pack_header(pts)]
    if key:
        out += [_SYSTEM_HEADER, _PSM]
    for offset in range(0, len(es), _MAX_PES_PAYLOAD):
        chunk = es[offset : offset + _MAX_PES_PAYLOAD]
        # PES header: MPEG-2 flags, then the PTS on the frame's first packet only.
        header = b"\x80\x80\x05" + _timestamp(0x2, pts) if offset == 0 else b"\x80\x00\x00"
        out.append(b"\x00\x00\x01\xe0" + struct.pack(">H", len(header) + len(chunk)) + header)
        out.append(chunk)
    return b"".join(out)


def _pack_header(scr: int) -> bytes:
    scr &= (1 << 33) - 1
    b = bytearray(10)
    b[0] = 0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03)
    b[1] = (scr >> 20) & 0xFF
    b[2] = 0x04 | ((scr >> 12) & 0xF8) | ((scr >> 13) & 0x03)
    b[3] = (scr >> 5) & 0xFF
    b[4] = 0x04 | ((scr << 3) & 0xF8)  # SCR extension 0
    b[5] = 0x01
    mux_rate = 2_500  # x 50 bytes/s: 1 Mbit/s, more than the sample needs
    b[6] = (mux_rate >> 14) & 0xFF
    b[7] = (mux_rate >> 6) & 0xFF
    b[8] = ((mux_rate << 2) & 0xFC) | 0x03
    b[9] = 0xF8  # no stuffing
    return b"\x00\x00\x01\xba" + bytes(b)


def _timestamp(prefix: int, ts: int) -> bytes:
    ts &= (1 << 33) - 1
    return bytes(
        [
            (prefix << 4) | ((ts >> 29) & 0x0E) | 1,
            (ts >> 22) & 0xFF,
            ((ts >> 14) & 0xFE) | 1,
            (ts >> 7) & 0xFF,
            ((ts << 1) & 0xFE) | 1,
        ]
    )


_SYSTEM_HEADER = (
    b"\x00\x00\x01\xbb"
    + struct.pack(">H", 9)
    # rate bound 2500 with markers, 0 audio / 1 video bound, one stream: E0, P-STD 1024 x 1k
    + bytes([0x80, 0x13, 0x89, 0x00, 0xE1, 0xFF, 0xE0, 0xE4, 0x00])
)


def _psm() -> bytes:
    streams = bytes([0x1B, 0xE0, 0x00, 0x00])  # H.264 on stream 0xE0, no descriptors
    body = bytes([0xE0, 0xFF, 0x00, 0x00]) + struct.pack(">H", len(streams)) + streams
    body += _crc32_mpeg(b"\x00\x00\x01\xbc" + struct.pack(">H", len(body) + 4) + body)
    return b"\x00\x00\x01\xbc" + struct.pack(">H", len(body)) + body


def _crc32_mpeg(data: bytes) -> bytes:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return struct.pack(">I", crc)


_PSM = _psm()
