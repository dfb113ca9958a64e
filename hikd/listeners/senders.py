"""Real senders <-> the loopback addresses the listen front relays their requests from.

The vendor library reports only the socket peer of a pushed alarm (sdk-over-isapi.md part
1 §4; its wSocketPort and sSocketIP stay empty, measured). So each real sender has a block
of 256 loopback addresses of its own (its alias, ``127.x.y.0/24``), and each request is
relayed from the address of the block whose last byte is the request's number (1..254, then
1 again): the address the library reports says which sender, for device matching, and which
of its requests a message is about, whether or not the library answered the ones before.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Callable

ALIAS_NETWORK = ipaddress.IPv4Network("127.128.0.0/9")
"""Loopback addresses the relay connects from, 256 per real sender (all of 127/8 is lo)."""
NUMBERS = 254
"""Request numbers told apart by the relay's address (.0 and .255 are left out: not every
tool treats them as plain host addresses)."""
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
        self._capacity = network.num_addresses // 256
        self.busy: list[Callable[[str], bool]] = []
        """Whether an alias has pushes in flight or kept (one per listen front)."""

    def alias_for(self, sender: str) -> str:
        """The block of addresses `sender`'s requests are relayed from (when all are taken by
        senders with pushes kept, the one seen longest ago gives its block up all the same:
        the pushes read back at a start)."""
        alias = self._alias(sender, busy_too=True)
        assert alias is not None
        return alias

    def alias_if_free(self, sender: str) -> str | None:
        """`alias_for`, or None when every block is taken by a sender whose pushes are not
        all stored yet (`busy`)."""
        return self._alias(sender, busy_too=False)

    def _alias(self, sender: str, busy_too: bool) -> str | None:
        with self._lock:
            alias = self._by_sender.get(sender)
            if alias is not None:
                self._by_sender.move_to_end(sender)
                return alias
            if len(self._by_sender) >= self._capacity:
                # The sender seen longest ago whose pushes are all stored gives its block up
                # (never with configured devices only: 32,768 of them). One with a push kept
                # keeps it: that push would be relayed as the new sender's.
                old = next(
                    (o for o, a in self._by_sender.items() if not any(b(a) for b in self.busy)),
                    None if not busy_too else next(iter(self._by_sender)),
                )
                if old is None:
                    return None
                alias = self._by_sender.pop(old)
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
        alias = alias_of(alias)
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
        block = self.network.network_address + 256 * self._next
        self._next += 1
        return f"{block}/24"

    # Which relayed request a message of the library is about (`hikd.listeners.relayed`):
    # the address it names (`relay_address`). The library yields one message per request
    # (an alarm or its 0x7fff error) before it answers, and the front relays one request of
    # an alias at a time, so the numbers heard go up; a number left out is a request the
    # library took and said nothing about (README's vendor-library notes).
    def relay_address(self, alias: str, number: int) -> str:
        """The address request `number` of `alias` is relayed from."""
        return f"{alias[:-5]}.{(number - 1) % NUMBERS + 1}"

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

    def count_heard(self, address: str) -> tuple[str, int, range]:
        """Which request a message from the library about `address` (a relay address) is
        about (library side): its alias, its number, and the numbers before it the library
        said nothing about since the last message (empty for a late message)."""
        alias = alias_of(address)
        residue = int(address.rpartition(".")[2])
        with self._lock:
            heard = self._heard.get(alias, 0)
            ahead = (residue - 1 - heard) % NUMBERS
            if ahead >= NUMBERS // 2:  # a message about an earlier request, late
                return alias, heard + 1 + ahead - NUMBERS, range(0)
            number = heard + 1 + ahead
            self._heard[alias] = number
            return alias, number, range(heard + 1, number)

    def mark_resent(self, alias: str, number: int) -> None:
        """Request `number` from `alias` is one a host before may have stored, though past the
        first `again` of `learn` (a retry of a misread one)."""
        alias = alias_of(alias)
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
            return ipaddress.ip_address(address.partition("/")[0]) in self.network
        except ValueError:
            return False

    def sender_of(self, address: str) -> str | None:
        """The real sender of an alias or of one of its relay addresses."""
        alias = alias_of(address)
        with self._lock:
            return self._by_alias.get(alias)


def alias_of(address: str) -> str:
    """The alias (``127.x.y.0/24``) of a relay address, or the alias itself."""
    if address.endswith("/24"):
        return address
    return address.rpartition(".")[0] + ".0/24"
