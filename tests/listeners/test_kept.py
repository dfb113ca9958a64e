"""What the listen front keeps for device hosts (`KeptRequests`, bookkeeping tested on its
own) and the front with a host whose library takes nothing; `tests/hosts/test_nothing_lost.py`
runs it against the real library in a host that dies."""

from __future__ import annotations

import socket

import pytest

from hikd.addresses import AddressSet
from hikd.events import Event
from hikd.listeners import front as front_module
from hikd.listeners.front import ListenFront
from hikd.listeners.relayed import KeptRequests, Relayed
from hikd.listeners.senders import SenderMap
from tests.support import free_port, wait_for

OLD, NEW = (0, 0), (0, 1)
"""Two starts of device host 0."""


def request(body: bytes, sender: str = "192.0.2.7") -> Relayed:
    return Relayed(sender, "/", "application/xml", body, 1, 0.0)


def test_a_request_is_kept_until_its_host_has_stored_it() -> None:
    kept = KeptRequests(1000)
    for n, body in enumerate([b"a", b"bb", b"ccc"], start=1):
        entry = kept.add("alias", request(body))
        assert entry is not None
        entry.number, entry.host = n, OLD
    kept.confirm("alias", OLD, 2)
    assert [k.relayed.payload for k in kept.to_relay("alias", NEW)] == [b"ccc"]
    assert kept.bytes == 3
    kept.confirm("alias", NEW, 3)  # another start's third message: not this request's
    assert len(kept) == 1
    kept.confirm("alias", OLD, 3)
    assert len(kept) == 0 and kept.bytes == 0


def test_what_a_dead_host_had_not_stored_goes_to_the_next_first() -> None:
    kept = KeptRequests(1000)
    taken = kept.add("alias", request(b"taken"))
    assert taken is not None
    taken.number, taken.host = 1, OLD
    assert kept.add("alias", request(b"waiting")) is not None
    assert [k.relayed.payload for k in kept.to_relay("alias", OLD)] == [b"waiting"]
    assert [k.relayed.payload for k in kept.to_relay("alias", NEW)] == [b"taken", b"waiting"]
    assert list(kept.due(lambda _sender: NEW)) == [("alias", "192.0.2.7")]


def test_nothing_is_due_while_the_host_that_took_it_runs() -> None:
    kept = KeptRequests(1000)
    entry = kept.add("alias", request(b"x"))
    assert entry is not None
    assert list(kept.due(lambda _sender: OLD)) == [("alias", "192.0.2.7")]  # not relayed yet
    entry.number, entry.host = 1, OLD
    assert list(kept.due(lambda _sender: OLD)) == []


def test_a_past_hosts_request_behind_the_new_hosts_is_due_too() -> None:
    """Relaying again to a new host stopped after the first (a send failed): the rest wait
    behind what the new host took, and are still relayed."""
    kept = KeptRequests(1000)
    for body, host in ((b"again", NEW), (b"left behind", OLD)):
        entry = kept.add("alias", request(body))
        assert entry is not None
        entry.number, entry.host = 1, host
    assert list(kept.due(lambda _sender: NEW)) == [("alias", "192.0.2.7")]
    assert [k.relayed.payload for k in kept.to_relay("alias", NEW)] == [b"left behind"]


def test_kept_bytes_are_bounded_but_one_request_always_fits() -> None:
    kept = KeptRequests(10)
    assert kept.add("a", request(b"x" * 50)) is not None  # bigger than the bound, alone
    assert kept.add("b", request(b"y")) is None
    kept = KeptRequests(10)
    assert kept.add("a", request(b"x" * 6)) is not None
    assert kept.add("b", request(b"y" * 4)) is not None
    assert kept.add("b", request(b"z")) is None


def test_a_misread_request_is_forgotten_for_its_retry() -> None:
    kept = KeptRequests(1000)
    first = kept.add("alias", request(b"misread"))
    assert first is not None
    first.number, first.host = 1, OLD
    kept.drop("alias", 1, OLD)
    assert len(kept) == 0 and kept.bytes == 0


class GoneLibrary:
    """Stands in for the supervisor's `HostRouter`: the real library cannot be made to close
    its listen port while its host runs."""

    def __init__(self) -> None:
        self.gone = free_port()

    def port(self, sender: str, alias: str) -> int:
        return self.gone

    def introduce(self, sender: str, alias: str, again: int) -> int:
        return self.gone

    def mark_resent(self, sender: str, alias: str, number: int) -> bool:
        return True

    def incarnation(self, sender: str) -> tuple[int, int]:
        return (0, 0)


def gone_library_front(published: list[Event]) -> ListenFront:
    front = ListenFront(
        "127.0.0.1", free_port(), 0, AddressSet(["127.0.0.1"]), SenderMap(), published.append,
        router=GoneLibrary(),
    )  # fmt: skip
    front.start()
    return front


def push(port: int) -> bytes:
    """POST one alarm to the front; the status it answers."""
    body = b"<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>"
    request = (
        b"POST / HTTP/1.1\r\nHost: hikd\r\nContent-Type: application/xml\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(4096).split(b" ")[1]


def test_pushes_wait_while_the_library_port_is_gone_with_one_warning_a_minute() -> None:
    """A running host whose library takes nothing (its port closed): pushes are answered
    200 and kept, tried again every `RELAY_DUE_S`, and said once, not once a try."""
    from structlog.testing import capture_logs

    front = gone_library_front([])
    try:
        with capture_logs() as logs:
            answers = [push(front.port) for _ in range(3)]
            assert wait_for(lambda: front.counters["relay_failed"] >= 6, 30)
        assert answers == [b"200"] * 3
        warnings = [e for e in logs if e["event"].endswith("did not take a pushed alarm")]
        assert len(warnings) == 1
    finally:
        front.stop()


def test_over_the_kept_bound_a_push_is_answered_503_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While no host stores anything, pushes are kept up to `MAX_KEPT_BYTES` (one always
    fits); the next is refused with 503 (the device may send it again) and said."""
    monkeypatch.setattr(front_module, "MAX_KEPT_BYTES", 1)
    published: list[Event] = []
    front = gone_library_front(published)
    try:
        assert [push(front.port), push(front.port)] == [b"200", b"503"]
        assert wait_for(lambda: any(e.type == "listen_refused" for e in published), 10)
        (refused,) = [e for e in published if e.type == "listen_refused"]
        assert refused.attributes["reason"] == "too many pushed alarms kept for device hosts"
    finally:
        front.stop()
