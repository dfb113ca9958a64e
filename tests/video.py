"""Counting decodable video frames with ffprobe (Debian's ffmpeg; `make test` installs it)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path


def decoded_frames(path: Path) -> int:
    """Frames ffprobe decodes from the first video stream of `path`."""
    ffprobe = shutil.which("ffprobe")
    assert ffprobe, "ffprobe is missing: run `make test`, or apt-get install ffmpeg"
    out = subprocess.run(
        [
            *(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0"),
            *("-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    return int(out.split(",")[0] or 0)


def annex_b(rtp_packets: list[bytes]) -> bytes:
    """The H.264 stream (Annex B) carried by RTP packets (RFC 6184: single NAL and FU-A)."""
    out = bytearray()
    for packet in rtp_packets:
        first = packet[0]
        header = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            header += 4 + 4 * struct.unpack(">H", packet[header + 2 : header + 4])[0]
        payload = packet[header:]
        kind = payload[0] & 0x1F
        if kind == 28:  # FU-A
            if payload[1] & 0x80:
                out += b"\x00\x00\x00\x01" + bytes([(payload[0] & 0xE0) | (payload[1] & 0x1F)])
            out += payload[2:]
        else:
            out += b"\x00\x00\x00\x01" + payload
    return bytes(out)
