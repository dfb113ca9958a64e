"""The last request the listen front relayed from each sender, for a second try.

The vendor library fails to read a few in a hundred well-formed alarms pushed to its listen
port (more under load, bodies over about 1 KB): it calls back with an error message (0x7fff,
"The XML message contains errors in format") before it answers 200 (README's vendor-library
notes). The front vetted the request, so the error is the library's: it is relayed again, at
most `MAX_TRIES` times in all. The error names only the relay's loopback address, one per
sender; which of that sender's requests it is about is told by counting: the library answers
each request with one message, in order, so the n-th message heard from an address is about
the n-th request relayed from it (`SenderMap.count_relayed`/`count_heard`). Requests are
kept `KEEP_S`. One the
library still cannot read goes to the sinks as it came (`unread`): nothing is dropped.
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from dataclasses import dataclass

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
        self._by_alias[alias, number] = relayed
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
