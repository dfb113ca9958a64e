"""The listen front's side of the device hosts: what it keeps for them and relays to them
(README "The listen front").

Each pushed alarm the front answers is kept (`KeptRequests`) until the host that owns its
sender reports it stored; what a host took and had not stored when it ended goes to the next
one first, marked ``resent`` (the host before may have stored it). The host learns which of
the requests relayed from an alias are such: the first `again` when it is introduced to the
alias, any later one (a retry of a misread one, one left behind by a relaying cut short) by a
`Router.mark_resent` just before it is relayed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import structlog

from hikd.listeners.refusals import Refusals
from hikd.listeners.relayed import KeptRequests, Relayed
from hikd.listeners.senders import SenderMap
from hikd.listeners.spool import Spool

log = structlog.get_logger("hikd.listen")

Send = Callable[[str, Relayed, int, bool], Awaitable[int | None]]
"""Relay one request from alias to the library's port (`restart`: its numbering starts
again); its number, None if the library could not be reached."""


class Router(Protocol):
    """Picks the library listen port (of the device host that owns the sender's device)."""

    def port(self, sender: str, alias: str) -> int | None:
        """The port, when the host already knows `alias`; None: ask `introduce`."""

    def introduce(self, sender: str, alias: str, again: int) -> int | None:
        """Tell the host `alias` stands for `sender` (blocking); its port, None if no host
        can take the request now. `again`: the first requests relayed are this many that
        were relayed to a host before it, which may have stored some of them."""

    def mark_resent(self, sender: str, alias: str, number: int) -> bool:
        """Tell the host (blocking) that request `number` from `alias` may be stored already
        (beyond the `again` of `introduce`); False if it cannot be told now."""

    def incarnation(self, sender: str) -> Hashable:
        """Which start of which host takes the sender's requests (changes when it restarts)."""


class HostRelay:
    """Used from the front's event loop only."""

    def __init__(
        self,
        router: Router,
        senders: SenderMap,
        send: Send,
        counters: Counter[str],
        refusals: Refusals,
        max_bytes: int,
        spool: Spool | None = None,
    ) -> None:
        """`spool`: where what is kept is on disk too (`hikd.listeners.spool`)."""
        self.router = router
        self.spool = spool
        self.senders = senders
        self.kept = KeptRequests(max_bytes)
        self.counters = counters
        self._send = send
        self._refusals = refusals
        self._told: dict[str, tuple[Hashable, int]] = {}
        """Per alias: the host it was last introduced to, and the `again` it was told."""

    def keep(self, alias: str, relayed: Relayed, resent: bool = False, spooled: int = 0) -> bool:
        """Keep a request until its host has stored it, in the spool too; False when over
        the bound. Kept whatever the bound: one read back from the spool (`spooled`) and a
        retry of a misread one (its device got 200 before). Raises OSError when the spool
        cannot be written (nothing kept)."""
        first = not spooled and relayed.tries == 1
        if first and not self.kept.fits(len(relayed.payload)):
            return False
        if not spooled and self.spool is not None:
            spooled = self.spool.add(relayed)
        kept = self.kept.add(alias, relayed, always=True)
        assert kept is not None
        kept.resent, kept.spooled = resent, spooled
        return True

    async def take(
        self, alias: str, sender: str, relayed: Relayed, resent: bool, lock: asyncio.Lock
    ) -> str | None:
        """Keep a pushed alarm (on disk too), relay it (with what waits before it) while
        holding the sender's `lock`, and return once it is on disk: None, or why it must be
        refused (503)."""
        async with lock:
            try:
                if not self.keep(alias, relayed, resent):
                    return "too many pushed alarms kept for device hosts"
            except OSError as exc:
                return self._spool_failed(exc)
            await self.relay(alias, sender)
        if self.spool is not None:
            try:
                await self.spool.durable()
            except OSError as exc:  # kept in memory, relayed; the device was not promised
                return self._spool_failed(exc)
        return None

    def _spool_failed(self, exc: OSError) -> str:
        assert self.spool is not None
        self._refusals.warn(
            "the listen spool cannot be written: pushed alarms are refused (503)",
            path=str(self.spool.path),
            error=exc.strerror or str(exc),
            hint="free space on the state directory's file system",
        )
        return "the listen spool cannot be written"

    def read_back(self, left: Sequence[tuple[int, Path]] = ()) -> None:
        """What the spool kept from the run before: kept again, relayed as hosts come up,
        marked ``resent`` (a host may have stored it before the daemon ended). `left`: the
        spools (port, file) of listen ports no longer configured, taken over the same way."""
        if self.spool is None:
            return
        try:
            found = self.spool.open()
        except OSError as exc:
            log.error(
                "the listen spool cannot be used: pushed alarms are kept in memory only",
                path=str(self.spool.path),
                error=exc.strerror or str(exc),
                hint="hikd needs to write its state directory",
            )
            self.spool = None
            for port, path in left:
                self._not_taken_over(port, path, exc)
            return
        for ident, relayed in found:
            self.keep(self.senders.alias_for(relayed.sender), relayed, True, ident)
        if found:
            self.counters["kept from the run before"] += len(found)
            log.info(
                "pushed alarms kept from the run before: relayed as device hosts come up",
                count=len(found),
                path=str(self.spool.path),
            )
        for port, path in left:
            self._take_over(port, path)

    def _take_over(self, port: int, path: Path) -> None:
        """The pushes a listen port no longer configured kept in `path`: into this port's
        spool (on disk before that file goes), relayed with the rest, marked ``resent``."""
        assert self.spool is not None
        old = Spool(path)
        try:
            found = old.open()
            idents = [self.spool.add(relayed) for _ident, relayed in found]
            self.spool.sync()
        except OSError as exc:  # the file stays: taken over at a later start
            old.close()
            self._not_taken_over(port, path, exc)
            return
        old.close()
        path.unlink(missing_ok=True)
        for ident, (_old, relayed) in zip(idents, found, strict=True):
            self.keep(self.senders.alias_for(relayed.sender), relayed, True, ident)
        self.counters["kept from the run before"] += len(found)
        if found:
            log.warning(
                "pushed alarms kept for a listen port that is no longer configured: "
                "relayed through this one",
                port=port,
                count=len(found),
                through=self.spool.path.name,
            )

    def _not_taken_over(self, port: int, path: Path, exc: OSError) -> None:
        log.error(
            "pushed alarms kept for a listen port that is no longer configured cannot be "
            "taken over now: tried again at the next start",
            port=port,
            path=str(path),
            error=exc.strerror or str(exc),
            hint="hikd needs to read and write its state directory",
        )

    async def drain(self, most_s: float) -> None:
        """At a stop, wait (at most `most_s`) until the hosts have reported stored what they
        took: then it is not read back from the spool at the next start as a copy marked
        ``resent``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + most_s
        while self.kept.taken(self.router.incarnation) and loop.time() < end:
            await asyncio.sleep(0.02)

    def close(self, port: int) -> None:
        if self.kept.bytes:
            log.warning(
                "pushed alarms no device host stored before the stop",
                port=port,
                count=len(self.kept),
                kept_in=None if self.spool is None else str(self.spool.path),
            )
        if self.spool is not None:
            self.spool.close()

    def forget(self, alias: str, number: int, sender: str) -> bool:
        """Request `number` the host misread is relayed again as a new one (or given up):
        forgotten; whether it was marked ``resent``."""
        dropped = self.kept.drop(alias, number, self.router.incarnation(sender))
        if dropped is not None and self.spool is not None and dropped.spooled:
            self.spool.done([dropped.spooled])
        return dropped is not None and dropped.resent

    def confirm(self, host: Hashable, heard: dict[str, int]) -> None:
        """`host` stored what came of each alias's requests up to the number given."""
        for alias, number in heard.items():
            stored = self.kept.confirm(alias, host, number)
            if self.spool is not None:
                self.spool.done(k.spooled for k in stored if k.spooled)

    def due(self) -> Iterator[tuple[str, str]]:
        """(alias, sender) of each alias with something to relay (again) now."""
        return self.kept.due(self.router.incarnation)

    async def relay(self, alias: str, sender: str) -> None:
        """Relay what is kept for `alias` and not relayed to its host yet, in order (call
        with the alias's lock held)."""
        router = self.router
        host = router.incarnation(sender)
        port = router.port(sender, alias)
        due = self.kept.to_relay(alias, host)
        if not due:
            return
        introduced = False
        if port is None:  # a new host (or the first request): it learns the alias first
            again = next((n for n, kept in enumerate(due) if not kept.resent), len(due))
            port = await asyncio.to_thread(router.introduce, sender, alias, again)
            host = router.incarnation(sender)
            introduced = True
            self._told[alias] = (host, again)
        if port is None:  # its host is restarting
            self.counters["no_host"] += 1
            self._refusals.warn(
                "no device host takes this sender's pushed alarms now (restarting?): "
                "kept until it is back",
                sender=sender,
                waiting=self.counters["no_host"],
            )
            return
        for kept in due:
            if kept.resent and not await self._resent_told(alias, sender, host, introduced):
                return  # kept; relayed later
            # Numbered before it is sent: the library calls back before it answers, and the
            # host may report the request stored (`confirm`) before `_send` returns.
            before = kept.number, kept.host
            kept.number, kept.host = self.senders.next_relayed(alias, introduced), host
            if await self._send(alias, kept.relayed, port, introduced) is None:
                kept.number, kept.host = before  # the library never saw it
                return  # kept; relayed later (`ListenFront._relay_due`)
            if before[0]:
                self.counters["relayed again to a new host"] += 1
            if kept.resent:
                self.counters["resent"] += 1
            introduced = False

    async def _resent_told(self, alias: str, sender: str, host: Hashable, restart: bool) -> bool:
        """The host knows that the next request relayed from `alias` may be stored already:
        it is one of the first `again` it was told when introduced, or it is told now (a
        retry of a misread one comes later, and a relaying again cut short by a failed send
        goes on under numbers the host may not have been told)."""
        number = self.senders.next_relayed(alias, restart)
        told, again = self._told.get(alias, (None, 0))
        if told == host and number <= again:
            return True
        return await asyncio.to_thread(self.router.mark_resent, sender, alias, number)
