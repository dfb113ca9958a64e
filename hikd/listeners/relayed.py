"""The last request the listen front relayed from each sender, for a second try.

The vendor library fails to read a few in a hundred well-formed alarms pushed to its listen
port (more under load, bodies over about 1 KB): it calls back with an error message (0x7fff,
"The XML message contains errors in format") before it answers 200 (README's vendor-library
notes). The front vetted the request, so the error is the library's: it is relayed again, at
most `MAX_TRIES` times in all; so is one the library reset without its `200`, or took without
a word. The error names only the relay's loopback address, which says which request it is
about: each request of a sender is relayed from the address of its number
(`SenderMap.relay_address`/`count_heard`). Requests are kept `KEEP_S`. One the library still
cannot read goes to the sinks as it came (`unread`): nothing is dropped.
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, replace

from hikd.delivery.outbox import HIKD
from hikd.events import Event

KEEP_S = 30.0
MAX_TRIES = 3
MAX_KEPT = 1024
"""Requests kept (the oldest goes first)."""


@dataclass(frozen=True, slots=True)
class Relayed:
    sender: str
    path: str
    content_type: str
    payload: bytes
    tries: int
    at: float


class RecentRelays:
    """Used from the front's event loop only."""

    def __init__(self) -> None:
        self._by_alias: OrderedDict[tuple[str, int], Relayed] = OrderedDict()

    def remember(self, alias: str, number: int, relayed: Relayed) -> None:
        """Request `number` of `alias` is being relayed: kept `KEEP_S` from now (it may have
        waited longer than that for its device host)."""
        self._by_alias[alias, number] = replace(relayed, at=time.monotonic())
        self._by_alias.move_to_end((alias, number))
        while len(self._by_alias) > MAX_KEPT:
            self._by_alias.popitem(last=False)

    def take(self, alias: str, number: int, now: float | None = None) -> Relayed | None:
        """The request to relay again for a misread of request `number` from `alias`."""
        relayed = self._by_alias.pop((alias, number), None)
        now = time.monotonic() if now is None else now
        if relayed is None or now - relayed.at > KEEP_S:
            return None
        return relayed

    def forget_old(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        while self._by_alias:
            alias, oldest = next(iter(self._by_alias.items()))
            if now - oldest.at <= KEEP_S:
                return
            del self._by_alias[alias]


@dataclass(slots=True)
class Kept:
    """A request the front answered and keeps until its device host has stored it."""

    relayed: Relayed
    number: int = 0
    """Its number on the way to the library (`SenderMap.count_relayed`); 0: not relayed."""
    host: Hashable = None
    """The device host's incarnation it was relayed to (`Router.incarnation`)."""
    spooled: int = 0
    """Its id in the listen spool (`hikd.listeners.spool`); 0: not spooled."""
    resent: bool = False
    """A host may have stored it already (one it was relayed to ended before saying): its
    events are marked ``resent`` wherever it goes next."""


class KeptRequests:
    """The requests each sender alias has pushed that no device host has stored yet, in the
    order they came (README "The listen front": a host that dies takes none with it).

    A request is relayed, then kept until its host reports it stored (`confirm`); when that
    host ends first, the request is relayed again to the next one. Bounded by bytes: over
    `max_bytes`, `add` refuses. Used from the front's event loop only."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.count = 0
        """Requests kept (read from any thread: `hikd status`)."""
        self._by_alias: dict[str, deque[Kept]] = {}

    def __len__(self) -> int:
        return self.count

    def holds(self, alias: str) -> bool:
        """Some request of `alias` is kept (any thread: one dict lookup)."""
        return alias in self._by_alias

    def fits(self, size: int) -> bool:
        """A request of `size` bytes may be kept (one always fits: a body may be as big as
        the bound)."""
        return not self.bytes or self.bytes + size <= self.max_bytes

    def add(self, alias: str, relayed: Relayed, always: bool = False) -> Kept | None:
        """Keep a request; None when that would go over `max_bytes` (`always`: kept anyway,
        it was answered before)."""
        size = len(relayed.payload)
        if not always and not self.fits(size):
            return None
        kept = Kept(relayed)
        self._by_alias.setdefault(alias, deque()).append(kept)
        self.bytes += size
        self.count += 1
        return kept

    def to_relay(self, alias: str, host: Hashable) -> list[Kept]:
        """What must go to `host` now, in order: the requests relayed to a host before it
        (it ended before storing them: they go again, marked `resent`) and those not relayed
        yet."""
        due = [k for k in self._by_alias.get(alias, ()) if k.number == 0 or k.host != host]
        for kept in due:
            kept.resent = kept.resent or kept.number != 0
        return due

    def confirm(self, alias: str, host: Hashable, number: int) -> list[Kept]:
        """`host` stored what came of the requests from `alias` up to `number`: those are
        forgotten (and returned)."""
        kept = self._by_alias.get(alias)
        stored = []
        while kept and kept[0].host == host and 0 < kept[0].number <= number:
            stored.append(kept.popleft())
            self.bytes -= len(stored[-1].relayed.payload)
            self.count -= 1
        if kept is not None and not kept:
            del self._by_alias[alias]
        return stored

    def drop(self, alias: str, number: int, host: Hashable) -> Kept | None:
        """Forget request `number` (it is relayed again under a new number, or given up)."""
        kept = self._by_alias.get(alias)
        if kept is None:
            return None
        found = next((k for k in kept if k.number == number and k.host == host), None)
        if found is not None:
            kept.remove(found)
            self.bytes -= len(found.relayed.payload)
            self.count -= 1
        if not kept:
            del self._by_alias[alias]
        return found

    def taken(self, host_of: Callable[[str], Hashable]) -> bool:
        """Some request was relayed to the host that runs now for its sender (it may yet
        report it stored)."""
        return any(
            k.number and k.host == host_of(k.relayed.sender)
            for kept in self._by_alias.values()
            for k in kept
        )

    def due(self, host_of: Callable[[str], Hashable]) -> Iterator[tuple[str, str]]:
        """(alias, sender) of each alias with something to relay (again): `host_of(sender)`
        is the current incarnation of the host for a sender."""
        for alias, kept in list(self._by_alias.items()):
            sender = kept[0].relayed.sender
            host = host_of(sender)
            # Not only the first and the last: a relaying again cut short by a failed send
            # leaves a past host's requests behind the new host's.
            if any(k.number == 0 or k.host != host for k in kept):
                yield alias, sender


def unread(last: Relayed, port: int) -> Event:
    """An alarm the library never read still reaches the sinks: its body, as the front
    vetted it, in a malformed_alarm event (the device is known only by its address)."""
    return Event(
        kind="health",
        type="malformed_alarm",
        state="pulse",
        device=HIKD,
        attributes={
            "sender": last.sender,
            "port": port,
            "path": last.path,
            "content_type": last.content_type,
            "size": len(last.payload),
            "tries": last.tries,
            "reason": f"the vendor library could not read it {last.tries} times",
        },
        raw={"encoding": "base64", "payload": base64.b64encode(last.payload).decode()},
    )
