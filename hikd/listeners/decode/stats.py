"""Counters of what the decoders saw, for health reporting (thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class DecodeStats:
    """Counts by lCommand and by event type, plus malformed payloads, heartbeats and
    decoder bugs. Read with `snapshot()`; any thread may call any method."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_command: Counter[int] = Counter()
        self._by_type: Counter[str] = Counter()
        self._malformed: Counter[str] = Counter()
        self._heartbeats: Counter[str] = Counter()
        self._decode_errors = 0

    def command(self, command: int) -> None:
        with self._lock:
            self._by_command[command] += 1

    def event_type(self, type_: str) -> None:
        with self._lock:
            self._by_type[type_] += 1

    def malformed(self, device: str) -> int:
        """Count one malformed payload from `device`; returns that device's total."""
        with self._lock:
            self._malformed[device] += 1
            return self._malformed[device]

    def heartbeat(self, device: str) -> None:
        with self._lock:
            self._heartbeats[device] += 1

    def decode_error(self) -> None:
        with self._lock:
            self._decode_errors += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly copy: ``{"by_command": {"0x6009": n}, "by_type": {...},
        "malformed": total, "malformed_by_device": {...}, "heartbeats": total,
        "heartbeats_by_device": {...}, "decode_errors": n}``."""
        with self._lock:
            return {
                "by_command": {f"0x{c & 0xFFFFFFFF:04x}": n for c, n in self._by_command.items()},
                "by_type": dict(self._by_type),
                "malformed": sum(self._malformed.values()),
                "malformed_by_device": dict(self._malformed),
                "heartbeats": sum(self._heartbeats.values()),
                "heartbeats_by_device": dict(self._heartbeats),
                "decode_errors": self._decode_errors,
            }

    def reset(self) -> None:
        with self._lock:
            self._by_command.clear()
            self._by_type.clear()
            self._malformed.clear()
            self._heartbeats.clear()
            self._decode_errors = 0


stats = DecodeStats()
"""The process-wide counters `decode` updates unless given its own."""
