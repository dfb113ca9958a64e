"""The listen front: hikd's own listener on a public listen port (README "The listen front").

    device --POST--> front (allow-list, limits, vetting) --hikd's framing--> 127.0.0.1:<port>
                                                         NET_DVR_StartListen_V30

The vendor library's listen parser crashes on hostile input (nesting, malformed requests;
README vendor-library notes), and it applied hikd's allow-list only after parsing. Here a
sender that is not allowed is cut off (RST) before a byte of its request is read; an allowed
sender's request is read within the limits, vetted (`hikd.listeners.vet`) and relayed from a
loopback address of its own (`SenderMap`): the library reports only the socket peer in
NET_DVR_ALARMER.sDeviceIP, and that address maps back to the real sender for device matching.

One asyncio loop on one thread serves every connection; vetting a big body runs on a worker
thread. With device hosts (`hikd.hosts`) the front runs in the supervisor and relays to the
loopback port of the host that owns the sender's device (a `Router`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import structlog

from hikd.addresses import AddressSet, normal_ip
from hikd.delivery.outbox import HIKD
from hikd.events import Event, health
from hikd.listeners.relayed import MAX_TRIES, RecentRelays, Relayed, unread
from hikd.listeners.senders import SenderMap
from hikd.listeners.vet import Limits, Refused, answer, parse_head, rebuild

log = structlog.get_logger("hikd.listen")

MAX_CONNECTIONS = 128
"""Requests of allowed senders read at the same time (each holds up to max_body_bytes)."""
INLINE_VET_BYTES = 65536
"""Bodies up to this size are vetted on the loop's thread (microseconds; a thread hop costs
more than the work)."""
MAX_PER_SENDER = 16
"""Requests of one sender read at the same time (a device sends one at a time)."""
RELAY_TIMEOUT_S = 30.0
LIBRARY_ADDRESS = "127.0.0.1"
"""Where the vendor library's listen port is: loopback, only the front talks to it."""
REPORT_EVERY_S = 60.0
"""A refused sender is logged (and a health event published) at most this often."""
MAX_TRACKED = 4096
MAX_REPORTS = 20


class Router(Protocol):
    """Picks the library listen port (of the device host that owns the sender's device)."""

    def port(self, sender: str, alias: str) -> int | None:
        """The port, when the host already knows `alias`; None: ask `introduce`."""

    def introduce(self, sender: str, alias: str) -> int | None:
        """Tell the host `alias` stands for `sender` (blocking); its port, None if no host
        can take the request now."""


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
    ) -> None:
        """`router`: where each sender's requests go when devices have processes of their
        own (`hikd.hosts.fronts`); without one, all go to `relay_port`."""
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
        self.refused_by_sender: Counter[str] = Counter()
        self._unreported: dict[str, Counter[str]] = {}
        self._suppressed: Counter[str] = Counter()
        self._last_report: dict[str, float] = {}
        self._minute_start = 0.0
        self._reports = 0
        self._active = 0
        self._by_sender: Counter[str] = Counter()
        self._recent = RecentRelays()
        self._in_order: dict[str, asyncio.Lock] = {}
        """One request of a sender at a time to the library, so its messages come in the
        order of the requests' numbers (`hikd.listeners.relayed`)."""
        self._tasks: set[asyncio.Future[int]] = set()
        self._no_host_logged = -REPORT_EVERY_S
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------
    def start(self) -> None:
        """Listen on the public port; raises OSError when it cannot (port in use, ...)."""
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
            self._relay(last.sender, last.path, last.content_type, last.payload + more, last.tries)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self, timeout: float = 2.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            asyncio.get_running_loop().stop()

        with contextlib.suppress(RuntimeError):  # the loop already ended
            asyncio.run_coroutine_threadsafe(close(), loop)
        thread.join(timeout)
        self._thread = None

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
        if self._active >= MAX_CONNECTIONS or self._by_sender[sender] >= MAX_PER_SENDER:
            self._refused(sender, "too many requests at once")
            await self._answer(writer, 503)
            return
        self._active += 1
        self._by_sender[sender] += 1
        try:
            status = await self._handle(sender, reader, writer)
        except Exception:
            log.exception("listen front error", sender=sender, port=self.port)
            status = 503
        finally:
            self._active -= 1
            self._by_sender[sender] -= 1
            if not self._by_sender[sender]:
                del self._by_sender[sender]
        await self._answer(writer, status)

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
        return await self._relay(sender, head.path, content_type, payload)

    async def _relay(
        self, sender: str, path: str, content_type: str, payload: bytes, tries: int = 0
    ) -> int:
        alias = self.senders.alias_for(sender)
        async with self._in_order.setdefault(alias, asyncio.Lock()):
            return await self._relay_in_order(alias, sender, path, content_type, payload, tries)

    async def _relay_in_order(
        self, alias: str, sender: str, path: str, content_type: str, payload: bytes, tries: int
    ) -> int:
        port: int | None = self.relay_port
        introduced = False
        if self.router is not None:
            port = self.router.port(sender, alias)
            if port is None:  # first request via this alias: the host learns it first
                port = await asyncio.to_thread(self.router.introduce, sender, alias)
                introduced = True
            if port is None:  # its host is restarting: one line a minute, not one a push
                self.counters["relay_failed"] += 1
                self.counters["no_host"] += 1
                if time.monotonic() - self._no_host_logged >= REPORT_EVERY_S:
                    self._no_host_logged = time.monotonic()
                    log.warning(
                        "no device host takes this sender's pushed alarm now (restarting?)",
                        sender=sender,
                        port=self.port,
                        refused=self.counters["no_host"],
                    )
                return 503
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.relay_host}:{port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + payload
        # Numbered and remembered before it is sent: the library's error can come before
        # its answer.
        number = self.senders.count_relayed(alias, restart=introduced)
        now = time.monotonic()
        relayed = Relayed(sender, path, content_type, payload, tries + 1, now)
        self._recent.remember(alias, number, relayed)
        connected = False
        try:
            async with asyncio.timeout(RELAY_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(
                    self.relay_host, port, local_addr=(alias, 0)
                )
                connected = True
                try:
                    writer.write(request)
                    await writer.drain()
                    # The library answers 200 and resets the connection (SO_LINGER 0): the
                    # reset may even swallow the 200. The whole request was taken either way.
                    with contextlib.suppress(ConnectionError):
                        await reader.read(4096)
                finally:
                    writer.transport.abort()
        except (OSError, TimeoutError) as exc:
            if not connected:  # the library never saw it: its number is free again
                self.senders.uncount_relayed(alias)
            self.counters["relay_failed"] += 1
            log.warning(
                "the vendor library's listen port did not take a pushed alarm",
                sender=sender,
                port=self.port,
                error=str(exc) or type(exc).__name__,
            )
            return 503
        self.counters["relayed"] += 1
        return 200

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

    # -- refusals ----------------------------------------------------------------------
    def _refused(self, sender: str, reason: str, status: int = 0) -> int:
        """Count a refusal; log it (and publish health) at most once a minute per sender, and
        at most `MAX_REPORTS` lines a minute in all (a sender may have many addresses)."""
        self.counters["refused"] += 1
        self.counters[f"refused: {reason}"] += 1
        if sender in self.refused_by_sender or len(self.refused_by_sender) < MAX_TRACKED:
            self.refused_by_sender[sender] += 1
        if sender in self._unreported or len(self._unreported) < MAX_TRACKED:
            self._unreported.setdefault(sender, Counter())[reason] += 1
        else:
            self._suppressed[reason] += 1
        now = time.monotonic()
        last = self._last_report.get(sender)
        if last is None or now - last >= REPORT_EVERY_S:
            self._report(sender, now)
        return status

    def _report(self, sender: str, now: float) -> None:
        if now - self._minute_start >= REPORT_EVERY_S:
            self._minute_start, self._reports = now, 0
        if self._reports >= MAX_REPORTS:
            return  # stays pending: the next flush or refusal reports it
        self._reports += 1
        self._last_report[sender] = now
        reasons = self._unreported.pop(sender, Counter())
        self._emit(sender, reasons, self.refused_by_sender[sender])

    def _flush(self) -> None:
        """Every minute: what was refused since the last lines, so no count stays unsaid."""
        now = time.monotonic()
        self._recent.forget_old(now)
        for sender, when in list(self._last_report.items()):
            if now - when >= REPORT_EVERY_S and sender not in self._unreported:
                del self._last_report[sender]  # quiet for a minute: forgotten
        for sender in list(self._unreported):
            if now - self._last_report.get(sender, -REPORT_EVERY_S) >= REPORT_EVERY_S:
                self._report(sender, now)
        if self._suppressed:
            others, self._suppressed = self._suppressed, Counter()
            self._emit("others", others, sum(others.values()))

    def _emit(self, sender: str, reasons: Counter[str], total: int) -> None:
        count = sum(reasons.values())
        if not count:
            return
        reason = reasons.most_common(1)[0][0]
        hint = (
            "add it to listen.allowed (or to a device's allowed_addresses) if it is a device"
            if reason == "not allowed"
            else "see README: The listen front, for the limits and their settings"
        )
        log.warning(
            "pushed alarm refused",
            sender=sender,
            port=self.port,
            reason=reason,
            count=count,
            total=total,
            hint=hint,
        )
        self._publish(
            health(
                HIKD,
                "listen_refused",
                sender=sender,
                port=self.port,
                reason=reason,
                reasons=dict(reasons),
                count=count,
                total=total,
            )
        )
