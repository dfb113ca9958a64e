"""Relaying one vetted request to the vendor library's loopback listen port, and what the
library answered (README "The listen front").

Each request goes on a connection of its own from the relay address of its number
(`SenderMap.relay_address`), so the library's message about it names it exactly. The library
calls back (alarm or error) before it answers; an error, and a request it drops without a
word, get a reset instead of the ``200`` (README's vendor-library notes): those are handed to
`again`, to be relayed again as misread ones.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from hikd.listeners.refusals import Refusals
from hikd.listeners.relayed import RecentRelays, Relayed
from hikd.listeners.senders import SenderMap

RELAY_TIMEOUT_S = 30.0


class LibraryAnswer(asyncio.Protocol):
    """What the library answers a relayed request: ``200`` once it has called back with the
    alarm, then a reset (SO_LINGER 0); a reset alone after an error message, or for a request
    it drops (README's vendor-library notes). A stream reader may lose a ``200`` that came
    with its reset (it raises the reset first); here every byte before the reset is kept."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.data = b""
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data[: 64 - len(self.data)]
        if b"\r\n\r\n" in self.data:  # the whole answer: no need to wait for the reset
            self.connection_lost(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def eof_received(self) -> bool:
        return False  # close our side too

    def ok(self) -> bool:
        return self.data.startswith(b"HTTP/1.1 200") or self.data.startswith(b"HTTP/1.0 200")


class LibraryRelay:
    """Used from the front's event loop only."""

    def __init__(
        self,
        relay_host: str,
        senders: SenderMap,
        recent: RecentRelays,
        counters: Counter[str],
        refusals: Refusals,
        again: Callable[[str, int], None],
    ) -> None:
        """`again(alias, number)`: the library did not answer request `number` with its
        ``200``; `recent`: where each relayed request is remembered for that."""
        self.relay_host = relay_host
        self.senders = senders
        self.recent = recent
        self.counters = counters
        self._refusals = refusals
        self.again = again

    async def send(self, alias: str, relayed: Relayed, port: int, restart: bool) -> int | None:
        """Relay one request to the library on `port`; its number, None if the library
        could not be reached (`restart`: the library behind is new)."""
        request = (
            f"POST {relayed.path} HTTP/1.1\r\nHost: {self.relay_host}:{port}\r\n"
            f"Content-Type: {relayed.content_type}\r\n"
            f"Content-Length: {len(relayed.payload)}\r\nConnection: close\r\n\r\n"
        ).encode() + relayed.payload
        # Numbered and remembered before it is sent: the library's error can come before
        # its answer. The number picks the address it is relayed from (`SenderMap`).
        number = self.senders.count_relayed(alias, restart=restart)
        self.recent.remember(alias, number, relayed)
        answer = LibraryAnswer()
        try:
            async with asyncio.timeout(RELAY_TIMEOUT_S):
                transport, _ = await asyncio.get_running_loop().create_connection(
                    lambda: answer,
                    self.relay_host,
                    port,
                    local_addr=(self.senders.relay_address(alias, number), 0),
                )
                try:
                    transport.write(request)
                    await answer.closed
                finally:
                    transport.abort()
        except (OSError, TimeoutError) as exc:
            self.counters["relay_failed"] += 1
            self._refusals.warn(
                "the vendor library's listen port did not take a pushed alarm",
                sender=relayed.sender,
                error=str(exc) or type(exc).__name__,
                count=self.counters["relay_failed"],
            )
            if answer.transport is None:  # the library never saw it: its number is free
                self.senders.uncount_relayed(alias)
                return None
            return number  # it may have taken it: the host's report tells
        self.counters["relayed"] += 1
        if not answer.ok():
            # The library resets a request it drops without a word, before any answer (a
            # multipart whose XML alarm has a JSON part after it; README's vendor-library
            # notes): relayed again, as a misread one.
            self.counters["unanswered by the library"] += 1
            self.again(alias, number)
        return number
