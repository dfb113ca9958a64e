"""A device host's publisher: the alarm decoder stores its own events (`queue` + `flush`, no
hand-over to the writer thread), other threads' events go through the writer, and all of
them are stored once, in the order published, also across a time the outbox fails."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from hikd.delivery.outbox import OUTBOX_FILE, Outbox
from hikd.events import DeviceRef, Event
from hikd.hosts import publisher as publisher_module
from hikd.hosts.publisher import HostPublisher
from tests.support import wait_until

CAM = DeviceRef("cam", "SERIAL", "192.0.2.1")


def event(n: int) -> Event:
    return Event(kind="alarm", type="motion", state="pulse", device=CAM, attributes={"n": n})


def stored_numbers(state: Path) -> list[int]:
    with Outbox(state / OUTBOX_FILE) as outbox:
        outbox.set_sinks(["disk"])
        return [e.attributes["n"] for _, e in outbox.read("disk", 0, 100_000)]


def test_the_decoders_events_are_stored_on_its_own_thread_in_order(tmp_path: Path) -> None:
    wakes: list[str] = []
    noted: list[int] = []

    def note(batch: Sequence[Event]) -> None:
        noted.extend(e.attributes["n"] for e in batch)

    pub = HostPublisher(tmp_path, ["disk"], wake=lambda: wakes.append("w"), note=note)
    pub.start()
    try:
        writer_stored: list[str] = []
        original = pub._appender.append

        def append(batch: Sequence[Event]) -> None:
            writer_stored.append(threading.current_thread().name)
            original(batch)

        pub._appender.append = append  # type: ignore[method-assign]
        for n in range(0, 30, 3):
            pub.queue(event(n))
            pub.queue(event(n + 1))
            pub.flush()  # stored here, now
            pub.publish(event(n + 2))  # a session thread's: the writer stores it
            pub.stored()
        assert stored_numbers(tmp_path) == list(range(30))
        assert noted == list(range(30))  # every batch noted before it is stored
        assert threading.current_thread().name in writer_stored
        assert "hikd-host-writer" in writer_stored
        assert len(wakes) == len(writer_stored)  # the supervisor woken after each commit
    finally:
        pub.stop(5)


def test_while_the_outbox_fails_the_writer_retries_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk cannot be made here: the appender fails three times, then works (a
    stand-in for the real failure, which `tests/delivery/test_outbox_full.py` produces for
    the outbox itself)."""
    monkeypatch.setattr(publisher_module, "RETRY_S", 0.05)
    pub = HostPublisher(tmp_path, ["disk"], wake=lambda: None, note=lambda _batch: None)
    pub.start()
    try:
        original = pub._appender.append
        failures = [3]

        def append(batch: Sequence[Event]) -> None:
            if failures[0]:
                failures[0] -= 1
                raise OSError("database or disk is full")
            original(batch)

        pub._appender.append = append  # type: ignore[method-assign]
        pub.queue(event(0))
        pub.flush()  # fails: left to the writer, which retries
        for n in range(1, 20):
            pub.queue(event(n))
            pub.flush()  # the writer is retrying: left to it
        pub.publish(event(20))
        wait_until(lambda: pub._appender.stored == 21, "the events stored")
        pub.stored()
        assert stored_numbers(tmp_path) == list(range(21))
    finally:
        pub.stop(5)
