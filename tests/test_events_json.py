"""An event's JSON: the text `to_json()` writes (made once per event, and kept by events
read back from the outbox) is exactly `to_dict()` encoded, whatever the event holds."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hikd.events import DeviceRef, Event, health, new_event_id


def _reference(event: Event) -> str:
    return json.dumps(event.to_dict(), separators=(",", ":"), default=str)


INT_KEY: dict[Any, Any] = {3: "int key"}
EVENTS = [
    health(DeviceRef("nvr"), "online"),
    Event(
        kind="alarm",
        type="line_crossing",
        state="start",
        device=DeviceRef("Tür-Kamera 3", "DS-2CD\u00e9", "fe80::1"),
        channel=33,
        time=datetime(2024, 3, 10, 10, 2, 11, tzinfo=timezone(timedelta(hours=1))),
        received=datetime(2024, 3, 10, 9, 2, 11, 123456, tzinfo=UTC),
        attributes={
            "regions": [{"region_id": 1, "coordinates": [[0.25, 1e-7], [890, -0.0]]}],
            "name": 'quote " backslash \\ newline \n tab \t 中文 \ud83d\ude00',
            "nan": math.nan,
            "inf": -math.inf,
            "big": 2**70,
            "flag": True,
            "none": None,
            "path": Path("/var/lib/hikd/x.jpg"),
            "when": datetime(2024, 1, 1, tzinfo=UTC),
            "tuple": (1, "a"),
            **INT_KEY,
        },
        raw={"command": 0x6009, "encoding": "text", "payload": "<a>\u00e9</a>"},
        files=("/pictures/a.jpg", "b.jpg"),
    ),
    Event(kind="alarm", type="io", state="stop", device=DeviceRef(""), channel=None),
    Event(kind="file", type="download_done", state="pulse", device=DeviceRef("x"), channel=0),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_to_json_is_to_dict_encoded(event: Event) -> None:
    assert event.to_json() == _reference(event)
    assert event.to_json().isascii()


def test_odd_field_types_are_encoded_as_to_dict_would() -> None:
    # Not what hikd builds, but what the dataclass lets through.
    anything: Any = (5, None, 1.5, True, 7)
    kind, name, serial, channel, id_ = anything
    odd = Event(
        kind="alarm",
        type=kind,
        state="pulse",
        device=DeviceRef(name, serial, channel),
        channel=channel,
        id=id_,
    )
    assert odd.to_json() == _reference(odd)


def test_the_text_is_made_once_and_a_changed_event_gets_its_own() -> None:
    event = EVENTS[1]
    assert event.to_json() is event.to_json()
    stopped = dataclasses.replace(event, state="stop")
    assert '"state":"stop"' in stopped.to_json()
    assert stopped.to_json() == _reference(stopped)
    assert stopped != event and repr(stopped).startswith("Event(kind='alarm'")


@pytest.mark.parametrize("event", EVENTS[:1] + EVENTS[2:], ids=lambda e: e.type)
def test_round_trip_and_stored_text(event: Event) -> None:
    text = event.to_json()
    assert Event.from_json(text) == event
    stored = Event.from_stored_json(text)
    assert stored == event
    assert stored.to_json() is text


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_the_stored_bytes_are_the_text_and_are_kept(event: Event) -> None:
    """One serialisation per event: the bytes the outbox stores are what sinks send, and an
    event read back from them keeps them. Reading them gives what json reads, even where
    orjson alone would not (NaN, integers past 64 bits, lone surrogates)."""
    data = event.to_json_bytes()
    assert data == event.to_json().encode()
    assert event.to_json_bytes() is data
    stored = Event.from_stored_json(data)
    assert stored.to_json_bytes() is data
    assert stored.to_json() == event.to_json()
    assert json.dumps(stored.to_dict(), default=str) == json.dumps(
        json.loads(data), default=str
    )


def test_event_ids_are_unique_ordered_and_differ_in_a_forked_child() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, then out without running anything else
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = new_event_id()
    # The random part (the last 62 bits) comes from the OS afresh in the child.
    assert child[19:] != parent[19:]
