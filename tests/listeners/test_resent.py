"""Pushes a dead device host may have stored keep their ``resent`` mark wherever they go next:
after a relaying again cut short by a failed send, and when the new host's library misreads one
and it is relayed once more.

The host side here is a stand-in (a TCP server that reads each relayed request and a real
`SenderMap` that numbers and marks it, as a host's pipeline does): the real library cannot be
made to misread a given request, nor its listen port to refuse one connection while its host
runs. `tests/hosts/test_nothing_lost.py` runs the front against the real library in a host
that dies."""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hikd.addresses import AddressSet
from hikd.listeners import front as front_module
from hikd.listeners import relayed as relayed_module
from hikd.listeners.front import ListenFront
from hikd.listeners.senders import SenderMap
from hikd.listeners.spool import Spool
from tests.support import free_port, wait_for

OLD, NEW = (0, 0), (0, 1)
"""Two starts of device host 0."""


class StandInHost:
    """A device host's library listen port and its pipeline's numbering (`Router` too)."""

    def __init__(self) -> None:
        self.library_port = free_port()
        self.current = OLD
        self.senders = SenderMap()
        self.known: set[str] = set()
        self.heard: list[tuple[tuple[int, int], int, bool]] = []
        """(host, push number, marked resent) per request the library read."""
        self.before_answer: Callable[[str, int], None] | None = None
        """Called with (alias, number) after the library read a request, before it answers."""
        self.after_answer: Callable[[str, int], None] | None = None
        self.drop = 0
        """Requests to take without a word (no answer, a reset), as the library does some."""
        self._server: socket.socket | None = None
        self._lock = threading.Lock()
        self.listen()

    # -- Router ----------------------------------------------------------------------------
    def port(self, sender: str, alias: str) -> int | None:
        return self.library_port if alias in self.known else None

    def introduce(self, sender: str, alias: str, again: int) -> int | None:
        self.senders.learn(alias, sender, again)
        self.known.add(alias)
        return self.library_port

    def mark_resent(self, sender: str, alias: str, number: int) -> bool:
        self.senders.mark_resent(alias, number)
        return True

    def incarnation(self, sender: str) -> tuple[int, int]:
        return self.current

    # -- the host dies and starts again ------------------------------------------------------
    def restart(self) -> None:
        with self._lock:
            self.current, self.senders, self.known = NEW, SenderMap(), set()

    # -- the library's listen port -----------------------------------------------------------
    def listen(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.library_port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def refuse(self) -> None:
        """Close the port: the next relay cannot connect."""
        if self._server is not None:
            # shutdown first: it wakes the thread blocked in accept(), a close alone does not.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                connection, peer = server.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"</EventNotificationAlert>" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                found = re.search(rb"<n>(\d+)</n>", data)
                if found is not None and self.drop:
                    self.drop -= 1
                    connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    continue
                if found is not None:
                    with self._lock:
                        alias, number, _unheard = self.senders.count_heard(peer[0])
                        marked = self.senders.again(alias, number)
                        self.heard.append((self.current, int(found[1]), marked))
                    if self.before_answer is not None:
                        self.before_answer(alias, number)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                if found is not None and self.after_answer is not None:
                    self.after_answer(alias, number)

    def close(self) -> None:
        self.refuse()


@pytest.fixture
def host() -> Iterator[StandInHost]:
    stand_in = StandInHost()
    try:
        yield stand_in
    finally:
        stand_in.close()


ALERT = b"<EventNotificationAlert><eventType>VMD</eventType><n>%d</n></EventNotificationAlert>"


def push(port: int, number: int) -> bytes:
    body = ALERT % number
    request = (
        b"POST / HTTP/1.1\r\nHost: hikd\r\nContent-Type: application/xml\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(4096).split(b" ")[1]


def start_front(host: StandInHost, spool: Spool | None = None) -> ListenFront:
    front = ListenFront(
        "127.0.0.1", free_port(), 0, AddressSet(["127.0.0.1"]), SenderMap(), lambda _e: None,
        router=host, spool=spool,
    )  # fmt: skip
    front.start()
    return front


def test_a_relaying_again_cut_short_and_a_misread_keep_the_resent_mark(
    host: StandInHost,
) -> None:
    """Three pushes taken by a host that dies before saying it stored them. The new host takes
    the first, refuses the second (its port is closed for a moment: the relaying again is cut
    short), then takes the rest, and its library misreads the first: every copy of the three
    the new host reads is marked ``resent``, the retry of the misread one too."""
    front = start_front(host)
    try:
        assert [push(front.port, n) for n in (1, 2, 3)] == [b"200"] * 3
        assert wait_for(lambda: len(host.heard) == 3, 15)
        alias = front.senders.alias_for("127.0.0.1")

        def new_heard() -> list[tuple[int, bool]]:
            return [(n, marked) for h, n, marked in list(host.heard) if h == NEW]

        # The host dies; the new one takes one relayed request, then its port refuses.
        original_send = front._send
        sent = threading.Event()

        async def send_then_refuse(*args: object, **kwargs: object) -> int | None:
            number = await original_send(*args, **kwargs)  # type: ignore[arg-type]
            if not sent.is_set():
                sent.set()
                host.refuse()
            return number

        front._send = send_then_refuse  # type: ignore[method-assign]
        host.restart()
        assert wait_for(lambda: front.counters["relay_failed"] >= 1, 15)
        host.listen()
        assert wait_for(lambda: len(new_heard()) == 3, 15), new_heard()
        # The new host's library misreads the first request relayed to it.
        front.misread(alias, 1)
        assert wait_for(lambda: len(new_heard()) == 4, 15), new_heard()
        assert [n for n, _marked in new_heard()] == [1, 2, 3, 1]
        assert [n for n, marked in new_heard() if not marked] == []
    finally:
        front.stop()


def test_a_push_no_host_took_before_is_not_marked(host: StandInHost) -> None:
    """Only what a host took before may be stored: a push that waited for the new host is
    not marked, nor a retry of its misreading."""
    front = start_front(host)
    try:
        host.refuse()
        assert push(front.port, 1) == b"200"  # kept: the library's port takes nothing
        host.restart()
        host.listen()
        assert wait_for(lambda: len(host.heard) == 1, 15)
        front.misread(front.senders.alias_for("127.0.0.1"), 1)
        assert wait_for(lambda: len(host.heard) == 2, 15)
        assert [(n, marked) for _h, n, marked in host.heard] == [(1, False), (1, False)]
    finally:
        front.stop()


def test_a_push_its_host_stored_before_the_library_answered_is_not_kept(
    host: StandInHost,
) -> None:
    """The library calls back before it answers 200, so the host may report a request stored
    while the front still waits for the answer: the front forgets it all the same (it was
    kept forever, and read back from the spool at every start)."""
    front = start_front(host)

    def stored_first(alias: str, number: int) -> None:
        front.stored(host.current, {alias: number})
        time.sleep(0.2)  # the report reaches the front's loop first

    host.before_answer = stored_first
    try:
        assert [push(front.port, n) for n in (1, 2)] == [b"200"] * 2
        assert wait_for(lambda: front.stats()["kept"] == 0, 5), front.stats()
    finally:
        front.stop()


def test_a_stop_waits_for_what_the_host_is_storing(host: StandInHost, tmp_path: Path) -> None:
    """A stop right after a push was answered: the host reports it stored a moment later, and
    the front waits for that (up to `DRAIN_S`), so the next start does not read it back from
    the spool as a copy marked ``resent``."""
    path = tmp_path / "listen.spool"
    front = start_front(host, Spool(path))

    def stored_later(alias: str, number: int) -> None:
        threading.Timer(0.3, front.stored, args=(host.current, {alias: number})).start()

    host.after_answer = stored_later
    try:
        assert push(front.port, 1) == b"200"
    finally:
        front.stop()
    assert Spool(path).open() == []


def test_the_retry_of_a_misread_push_is_kept_whatever_the_bound(
    host: StandInHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept pushes fill the bound exactly, and the library misreads the first: its retry
    (one byte longer) is relayed all the same, it was answered 200 before (it was refused,
    to nobody, and lost)."""
    body = len(
        b"<EventNotificationAlert><eventType>VMD</eventType><n>1</n></EventNotificationAlert>"
    )
    monkeypatch.setattr(front_module, "MAX_KEPT_BYTES", 2 * body)
    front = start_front(host)
    try:
        assert [push(front.port, n) for n in (1, 2)] == [b"200"] * 2  # none reported stored
        assert push(front.port, 3) == b"503"  # the bound is full
        front.misread(front.senders.alias_for("127.0.0.1"), 1)
        assert wait_for(lambda: [n for _h, n, _m in host.heard] == [1, 2, 1], 15), host.heard
    finally:
        front.stop()


def test_a_push_the_library_takes_without_a_word_is_relayed_again_and_not_forgotten(
    host: StandInHost, tmp_path: Path
) -> None:
    """The library resets the first push unanswered and never calls back for it. The host
    reports the later ones stored by their own numbers: none is taken for another, the first
    is relayed again, and nothing stays kept (counted, the first was forgotten as stored and
    the last kept for ever)."""
    path = tmp_path / "listen.spool"
    front = start_front(host, Spool(path))
    host.after_answer = lambda alias, number: front.stored(host.current, {alias: number})
    host.drop = 1
    try:
        assert [push(front.port, n) for n in (1, 2, 3)] == [b"200"] * 3
        assert wait_for(lambda: sorted(n for _h, n, _m in host.heard) == [1, 2, 3], 15)
        assert wait_for(lambda: front.stats()["kept"] == 0, 15), front.stats()
        assert front.counters["unanswered by the library"] == 1
    finally:
        front.stop()
    assert Spool(path).open() == []


def test_a_push_that_waited_longer_than_requests_are_remembered_is_relayed_again(
    host: StandInHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push kept while its host's library could not be reached, longer than a relayed
    request is remembered for a second try, is dropped by the library once relayed: it is
    relayed again all the same (it was forgotten for a second try, and kept for ever)."""
    monkeypatch.setattr(relayed_module, "KEEP_S", 0.5)
    front = start_front(host)
    host.after_answer = lambda alias, number: front.stored(host.current, {alias: number})
    try:
        host.refuse()
        assert push(front.port, 1) == b"200"  # kept: the library's port takes nothing
        time.sleep(1.0)  # longer than KEEP_S
        host.drop = 1
        host.listen()
        assert wait_for(lambda: [n for _h, n, _m in host.heard] == [1], 15), host.heard
        assert wait_for(lambda: front.stats()["kept"] == 0, 15), front.stats()
    finally:
        front.stop()
