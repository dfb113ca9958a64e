"""Which device host owns which device (``[daemon] device_hosts``).

A stable hash of the device's name, not Python's ``hash()`` (salted per process: every
restart would move devices): a device stays on its host across restarts, and adding a
device moves no other one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def host_of(device: str, hosts: int) -> int:
    """The index (0 .. hosts-1) of the host that owns `device`."""
    if hosts <= 1:
        return 0
    digest = hashlib.blake2b(device.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % hosts


def spread(devices: Iterable[str], hosts: int) -> list[list[str]]:
    """The devices of each host, in the order given."""
    placed: list[list[str]] = [[] for _ in range(max(1, hosts))]
    for name in devices:
        placed[host_of(name, hosts)].append(name)
    return placed
