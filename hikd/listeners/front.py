"""The listen front: hikd's own listener on a public listen port (README "The listen front").

    device --POST--> front (allow-list, limits, vetting) --hikd's framing--> 127.0.0.1:<port>
                                                         NET_DVR_StartListen_V30

The vendor library's listen parser crashes on hostile input (nesting, malformed requests;
README vendor-library notes), and it applied hikd's allow-list only after parsing. Here a
sender that is not allowed is cut off (RST) before a byte of its request is read; an allowed
sender's request is read within the limits, vetted (`hikd.listeners.vet`) and relayed from a
loopback address of its own (`SenderMap`): the library reports only the socket peer in
NET_DVR_ALARMER.sDeviceIP, and that address maps back to the real sender for device matching
and to the request for the host's reports.

One asyncio loop on one thread serves every connection; vetting a big body runs on a worker
thread. With device hosts (`hikd.hosts`) the front runs in the supervisor and relays to the
loopback port of the host that owns the sender's device, keeping each request until that
host has stored it (`hikd.listeners.host_relay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import structlog

from hikd.addresses import AddressSet, normal_ip
from hikd.events import Event
from hikd.listeners.front_counts import CountsReport, front_stats
from hikd.listeners.host_relay import HostRelay, Router
from hikd.listeners.library_relay import LibraryRelay
from hikd.listeners.refusals import REPORT_EVERY_S, Refusals
from hikd.listeners.relayed import MAX_TRIES, RecentRelays, Relayed, unread
from hikd.listeners.senders import SenderMap
from hikd.listeners.spool import Spool
from hikd.listeners.vet import Limits, Refused, answer, parse_head, rebuild

log = structlog.get_logger("hikd.listen")

MAX_CONNECTIONS = 128
"""Requests of allowed senders read at the same time (each holds up to max_body_bytes)."""
MAX_WAITING = 512
"""Requests of allowed senders waiting for one of those places: many devices pushing at once
are answered in turn, not refused."""
INLINE_VET_BYTES = 65536
"""Bodies up to this size are vetted on the loop's thread (microseconds; a thread hop costs
more than the work)."""
MAX_PER_SENDER = 16
"""Requests of one sender read at the same time (a device sends one at a time)."""
MAX_KEPT_BYTES = 64 * 1024 * 1024
"""Pushed alarms answered but not stored by a device host yet, kept in memory: over this a
push is answered 503 (README "The listen front")."""
RELAY_DUE_S = 0.5
"""How often what waits for a device host is tried again."""
DRAIN_S = 1.0
"""At a stop, how long the front waits for hosts to report stored what they took."""


class ListenFront:
    def __init__(
        self,
        address: str,
        port: int,
        relay_port: int,
        allowed: AddressSet,
        senders: SenderMap,
        publish: Callable[[Event], None],
        limits: Limits | None = None,
        relay_host: str = "127.0.0.1",
        router: Router | None = None,
        spool: Spool | None = None,
        spools_left: Sequence[tuple[int, Path]] = (),
    ) -> None:
        """`router`: where each sender's requests go when devices have processes of their
        own (`hikd.hosts.fronts`); without one, all go to `relay_port`. `spool`: with a
        router, where what is kept waits on disk too; `spools_left`: the spools (port, file)
        of listen ports no longer configured, whose pushes this front takes over."""
        self.router = router
        self.address = address
        self.port = port
        self.relay_port = relay_port
        self.relay_host = relay_host
        self.allowed = allowed
        self.senders = senders
        self.limits = limits or Limits()
        self._publish = publish
        self.counters: Counter[str] = Counter()
        """relayed, refused, and per reason (thread-safe enough: one writer, the loop)."""
        self._refusals = Refusals(port, publish, self.counters)
        self._counts = CountsReport(publish)
        self._places = asyncio.Semaphore(MAX_CONNECTIONS)
        self._waiting = 0
        self._by_sender: Counter[str] = Counter()
        self._recent = RecentRelays()
        self._library = LibraryRelay(
            relay_host, senders, self._recent, self.counters, self._refusals, self._relay_again
        )
        self._hosts = (
            None
            if router is None
            else HostRelay(
                router,
                senders,
                lambda *send: self._send(*send),
                self.counters,
                self._refusals,
                MAX_KEPT_BYTES,
                spool,
            )
        )
        """What is kept for the device hosts and relayed to them (with a `router`)."""
        self._spools_left = spools_left
        senders.busy.append(self._busy)
        self._in_order: dict[str, asyncio.Lock] = {}
        """One request of a sender at a time to the library, so its messages come in the
        order of the requests' numbers (`hikd.listeners.relayed`)."""
        self._tasks: set[asyncio.Future[int]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------
    def start(self) -> None:
        """Listen on the public port; raises OSError when it cannot (port in use, ...)."""
        if self._hosts is not None:
            self._hosts.read_back(self._spools_left)
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._serve,
                        self.address,
                        self.port,
                        limit=self.limits.max_header_bytes,
                        reuse_address=True,
                        backlog=256,
                    )
                )
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()

            def flush() -> None:
                self._flush()
                loop.call_later(REPORT_EVERY_S, flush)

            loop.call_later(REPORT_EVERY_S, flush)

            def relay_due() -> None:
                self._relay_due()
                loop.call_later(RELAY_DUE_S, relay_due)

            loop.call_later(RELAY_DUE_S, relay_due)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"listen-front-{self.port}", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _busy(self, alias: str) -> bool:
        """`alias` has a request on its way to the library, or kept for a device host: its
        block of relay addresses is not given to another sender (`SenderMap`)."""
        lock = self._in_order.get(alias)
        held = lock is not None and lock.locked()
        return held or (self._hosts is not None and self._hosts.kept.holds(alias))

    def misread(self, alias: str, number: int) -> None:
        """The library could not read request `number` relayed from `alias`: relay it again
        (`hikd.listeners.relayed`). Any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # stopping
                loop.call_soon_threadsafe(self._relay_again, alias, number)

    def _relay_again(self, alias: str, number: int) -> None:
        last = self._recent.take(alias, number)
        if last is None:  # not this front's, or too old to be sure which request it was
            return
        # Kept again as the new request (or given up below).
        resent = self._hosts is not None and self._hosts.forget(alias, number, last.sender)
        if last.tries >= MAX_TRIES:
            self._refused(last.sender, f"the vendor library could not read it {last.tries} times")
            self.counters["unread"] += 1
            self._publish(unread(last, self.port))
            return
        self.counters["relayed again"] += 1
        # One byte longer each time (a newline after the document): the misreads cluster on
        # some body lengths.
        more = b"" if last.content_type.startswith("multipart/") else b"\n"
        task = asyncio.ensure_future(
            self._relay(
                last.sender, last.path, last.content_type, last.payload + more, last.tries, resent
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(ValueError):  # stopped before
            self.senders.busy.remove(self._busy)
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            if self._hosts is not None:
                await self._hosts.drain(DRAIN_S)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            asyncio.get_running_loop().stop()

        with contextlib.suppress(RuntimeError):  # the loop already ended
            asyncio.run_coroutine_threadsafe(close(), loop)
        thread.join(timeout)
        self._thread = None
        self._counts.report(self.stats())  # the last numbers, if they changed
        if self._hosts is not None:
            self._hosts.close(self.port)

    # -- one connection ----------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        sender = normal_ip(str(peer[0])) if peer else None
        if sender is None or sender not in self.allowed:
            # Before a byte of the request is read: a reset, nothing else.
            self._refused(sender or "unknown", "not allowed")
            writer.transport.abort()
            return
        # Slow or stuck requests hold a place each until read_timeout_s: one sender may not
        # take the places of the others.
        if self._by_sender[sender] >= MAX_PER_SENDER or self._waiting >= MAX_WAITING:
            self._refused(sender, "too many requests at once")
            await self._answer(writer, 503)
            return
        self._by_sender[sender] += 1
        try:
            status = await self._in_turn(sender, reader, writer)
        finally:
            self._by_sender[sender] -= 1
            if not self._by_sender[sender]:
                del self._by_sender[sender]
        if status:
            await self._answer(writer, status)
        else:  # closed before a byte (a port check, say): nothing to answer or count
            writer.transport.abort()

    async def _in_turn(
        self, sender: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> int:
        """`_handle`, once one of the `MAX_CONNECTIONS` places is free: a burst waits its
        turn, first come first served, up to twice read_timeout_s (a slow sender gives its
        place up within read_timeout_s)."""
        self._waiting += 1
        try:
            async with asyncio.timeout(2 * self.limits.read_timeout_s):
                await self._places.acquire()
        except TimeoutError:
            return self._refused(sender, "too many requests at once", 503)
        finally:
            self._waiting -= 1
        try:
            return await self._handle(sender, reader, writer)
        except Exception:
            log.exception("listen front error", sender=sender, port=self.port)
            return 503
        finally:
            self._places.release()

    async def _handle(
        self, sender: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> int:
        limits = self.limits
        try:
            async with asyncio.timeout(limits.read_timeout_s):
                try:
                    head_bytes = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    raise Refused(431, "request head over max_header_bytes") from None
                except asyncio.IncompleteReadError as closed:
                    if not closed.partial:
                        return 0
                    raise
                head = parse_head(head_bytes[:-4], limits)
                if head.expect_continue:
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await reader.readexactly(head.content_length)
            if len(body) <= INLINE_VET_BYTES:
                content_type, payload = rebuild(head, body, limits)
            else:  # a big body: vetted on a worker thread, the other senders keep going
                content_type, payload = await asyncio.to_thread(rebuild, head, body, limits)
        except TimeoutError:
            return self._refused(sender, "request not read within read_timeout_s", 408)
        except asyncio.IncompleteReadError:
            return self._refused(sender, "connection closed before the request was complete", 400)
        except Refused as refused:
            return self._refused(sender, refused.reason, refused.status)
        status = await self._relay(sender, head.path, content_type, payload)
        self.counters["accepted"] += status == 200
        return status

    async def _relay(
        self,
        sender: str,
        path: str,
        content_type: str,
        payload: bytes,
        tries: int = 0,
        resent: bool = False,
    ) -> int:
        # A retry's push was answered 200 before: its sender's block stays its own.
        alias = self.senders.alias_for(sender) if tries else self.senders.alias_if_free(sender)
        if alias is None:  # 32,768 senders with pushes not stored: a flood, not devices
            return self._refused(sender, "too many senders with pushes not stored yet", 503)
        relayed = Relayed(sender, path, content_type, payload, tries + 1, time.monotonic())
        lock = self._in_order.setdefault(alias, asyncio.Lock())
        if self._hosts is None:  # one process: the library dies with the front
            async with lock:
                number = await self._send(alias, relayed, self.relay_port, False)
            return 503 if number is None else 200
        # Kept from here until its device host has stored it (`HostRelay`): the answer to
        # the device is 200 even while that host restarts, or the whole daemon.
        refused = await self._hosts.take(alias, sender, relayed, resent, lock)
        return 200 if refused is None else self._refused(sender, refused, 503)

    def _relay_due(self) -> None:
        """Every `RELAY_DUE_S`: what waits for a host that is back (or was relayed to one that
        ended before storing it) goes now, also when its sender sends nothing new."""
        if self._hosts is None:
            return
        for alias, sender in self._hosts.due():
            lock = self._in_order.setdefault(alias, asyncio.Lock())
            if not lock.locked():  # else a request of the sender relays these first
                task = asyncio.ensure_future(self._relay_kept_now(alias, sender, lock))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _relay_kept_now(self, alias: str, sender: str, lock: asyncio.Lock) -> int:
        async with lock:
            if self._hosts is not None:
                await self._hosts.relay(alias, sender)
        return 0

    def stored(self, host: Hashable, heard: dict[str, int]) -> None:
        """Device host `host` stored what came of each alias's requests up to the number
        given (`ListenStored`). Any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # stopping
                loop.call_soon_threadsafe(self._confirm, host, heard)

    def _confirm(self, host: Hashable, heard: dict[str, int]) -> None:
        if self._hosts is not None:
            self._hosts.confirm(host, heard)

    async def _send(self, alias: str, relayed: Relayed, port: int, restart: bool) -> int | None:
        """`LibraryRelay.send`."""
        return await self._library.send(alias, relayed, port, restart)

    async def _answer(self, writer: asyncio.StreamWriter, status: int) -> None:
        try:
            writer.write(answer(status))
            async with asyncio.timeout(self.limits.read_timeout_s):
                await writer.drain()
            writer.close()
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            writer.transport.abort()

    # -- refusals (`hikd.listeners.refusals`) ---------------------------------------------
    def _refused(self, sender: str, reason: str, status: int = 0) -> int:
        self._refusals.refused(sender, reason)
        return status

    @property
    def refused_by_sender(self) -> Counter[str]:
        return self._refusals.by_sender

    def stats(self) -> dict[str, Any]:
        """What the front did, in the user's words (`hikd.listeners.front_counts`). Any
        thread."""
        kept = None if self._hosts is None else self._hosts.kept
        return front_stats(self.port, self.counters, len(self._refusals.dropped), kept)

    def _flush(self) -> None:
        """Every minute: forget old requests; what was refused since the last lines; the
        counts, if they changed."""
        self._recent.forget_old()
        self._refusals.flush()
        self._counts.report(self.stats())
