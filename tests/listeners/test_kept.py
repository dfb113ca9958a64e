"""What the listen front keeps for device hosts (`KeptRequests`): pure bookkeeping, so it is
tested on its own; `tests/hosts/test_nothing_lost.py` runs it against a host that dies."""

from __future__ import annotations

from hikd.listeners.relayed import KeptRequests, Relayed

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


def test_pushes_wait_while_the_library_port_is_gone_with_one_warning_a_minute() -> None:
    """A running host whose library takes nothing (its port closed): pushes are answered
    200 and kept, tried again every `RELAY_DUE_S`, and said once, not once a try."""
    import socket

    from structlog.testing import capture_logs

    from hikd.addresses import AddressSet
    from hikd.listeners.front import ListenFront
    from hikd.listeners.senders import SenderMap
    from tests.support import free_port, wait_for

    gone = free_port()

    class GoneLibrary:
        """Stands in for the supervisor's `HostRouter`: the real library cannot be made to
        close its listen port while its host runs."""

        def port(self, sender: str, alias: str) -> int:
            return gone

        def introduce(self, sender: str, alias: str, again: int) -> int:
            return gone

        def incarnation(self, sender: str) -> tuple[int, int]:
            return (0, 0)

    body = b"<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>"
    request = (
        b"POST / HTTP/1.1\r\nHost: hikd\r\nContent-Type: application/xml\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    front = ListenFront(
        "127.0.0.1", free_port(), 0, AddressSet(["127.0.0.1"]), SenderMap(), lambda _e: None,
        router=GoneLibrary(),
    )  # fmt: skip
    front.start()
    try:
        with capture_logs() as logs:
            answers = []
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", front.port), timeout=10) as push:
                    push.sendall(request)
                    answers.append(push.recv(4096).split(b" ")[1])
            assert wait_for(lambda: front.counters["relay_failed"] >= 6, 30)
        assert answers == [b"200"] * 3
        warnings = [e for e in logs if e["event"].endswith("did not take a pushed alarm")]
        assert len(warnings) == 1
    finally:
        front.stop()
