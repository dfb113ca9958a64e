"""Real senders <-> the loopback addresses the listen front relays their requests from.

The vendor library reports only the socket peer of a pushed alarm (sdk-over-isapi.md part
1 §4); the front connects to it from an address of its own per real sender, and the alarm
pipeline maps that address back to the sender for device matching.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict

ALIAS_NETWORK = ipaddress.IPv4Network("127.242.0.0/16")
"""Loopback addresses the relay connects from, one per real sender (all of 127/8 is lo)."""
LIBRARY_ADDRESS = "127.0.0.1"
"""Where the vendor library's listen port is: loopback, only the front talks to it."""


class SenderMap:
    """Real sender IP <-> the loopback address its requests are relayed from."""

    def __init__(self, network: ipaddress.IPv4Network = ALIAS_NETWORK) -> None:
        self.network = network
        self._lock = threading.Lock()
        self._by_sender: OrderedDict[str, str] = OrderedDict()
        self._by_alias: dict[str, str] = {}
        self._next = 0
        self._relayed: dict[str, int] = {}
        self._heard: dict[str, int] = {}
        self._again: dict[str, int] = {}
        self._resent: dict[str, set[int]] = {}
        # .0 and .255 are left out: not every tool treats them as plain host addresses.
        self._capacity = network.num_addresses // 256 * 254

    def alias_for(self, sender: str) -> str:
        with self._lock:
            alias = self._by_sender.get(sender)
            if alias is not None:
                self._by_sender.move_to_end(sender)
                return alias
            if len(self._by_sender) >= self._capacity:
                # Least recently seen sender gives its address up (never with configured
                # devices only: 65,000 of them).
                _, alias = self._by_sender.popitem(last=False)
            else:
                alias = self._new_alias()
            self._by_sender[sender] = alias
            self._by_alias[alias] = sender
            self._relayed.pop(alias, None)
            self._heard.pop(alias, None)
            return alias

    def learn(self, alias: str, sender: str, again: int = 0) -> None:
        """Take over an alias another process's front gave `sender` (the supervisor's front
        relays to a device host: `hikd.hosts`); `again`: its first requests are this many
        relayed again after a host before this one ended (`again`)."""
        with self._lock:
            self._again[alias] = again
            self._resent.pop(alias, None)
            old = self._by_alias.pop(alias, None)
            if old is not None:
                self._by_sender.pop(old, None)
            previous = self._by_sender.pop(sender, None)
            if previous is not None:
                self._by_alias.pop(previous, None)
            self._by_sender[sender] = alias
            self._by_alias[alias] = sender
            self._heard.pop(alias, None)

    def _new_alias(self) -> str:
        while True:
            self._next += 1
            address = self.network.network_address + self._next
            if int(address) & 0xFF not in (0, 255):
                return str(address)

    # Which relayed request a message of the library is about (`hikd.listeners.relayed`):
    # each request the front hands the library yields one message (an alarm or its 0x7fff
    # error), in order per alias, so the n-th message heard is about the n-th request.
    def count_relayed(self, alias: str, restart: bool = False) -> int:
        """The number of the request about to be relayed from `alias` (front side);
        `restart`: the library behind is new (a device host started again)."""
        with self._lock:
            number = 1 if restart else self._relayed.get(alias, 0) + 1
            self._relayed[alias] = number
            return number

    def uncount_relayed(self, alias: str) -> None:
        """That request never reached the library (it could not be connected to)."""
        with self._lock:
            self._relayed[alias] = max(0, self._relayed.get(alias, 0) - 1)

    def count_heard(self, alias: str) -> int:
        """The number of this message from the library about `alias` (library side)."""
        with self._lock:
            number = self._heard.get(alias, 0) + 1
            self._heard[alias] = number
            return number

    def mark_resent(self, alias: str, number: int) -> None:
        """Request `number` from `alias` is one a host before may have stored, though past the
        first `again` of `learn` (a retry of a misread one)."""
        with self._lock:
            self._resent.setdefault(alias, set()).add(number)

    def again(self, alias: str, number: int) -> bool:
        """Request `number` from `alias` is one a host before this one took and may have
        stored (so its events may be there already)."""
        return number <= self._again.get(alias, 0) or number in self._resent.get(alias, ())

    def next_relayed(self, alias: str, restart: bool = False) -> int:
        """The number `count_relayed` will give the next request from `alias`."""
        with self._lock:
            return 1 if restart else self._relayed.get(alias, 0) + 1

    def is_alias(self, address: str) -> bool:
        try:
            return ipaddress.ip_address(address) in self.network
        except ValueError:
            return False

    def sender_of(self, alias: str) -> str | None:
        with self._lock:
            return self._by_alias.get(alias)
