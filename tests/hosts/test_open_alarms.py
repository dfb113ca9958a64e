"""A device host notes the alarms each batch opens and closes in a file, one write per batch
(no message to the supervisor); after a crash the supervisor takes from it what was on and
closes it (end to end: tests/hosts/test_device_hosts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hikd.events import DeviceRef, Event, health
from hikd.hosts import open_alarms
from hikd.hosts.open_alarms import OpenAlarmsFile, open_alarms_path, take_open_alarms

CAM = DeviceRef("cam", "SERIAL", "192.0.2.1")


def start(channel: int) -> Event:
    return Event(kind="alarm", type="motion", state="start", device=CAM, channel=channel)


def stop(of: Event) -> Event:
    return Event(
        kind="alarm",
        type=of.type,
        state="stop",
        device=CAM,
        channel=of.channel,
        attributes={"start_id": of.id},
    )


def test_what_was_on_at_the_crash_is_taken_once_in_order(tmp_path: Path) -> None:
    path = open_alarms_path(tmp_path, 3)
    noted = OpenAlarmsFile(path)
    first, second, third = start(1), start(2), start(3)
    pulse = Event(kind="alarm", type="io", state="pulse", device=CAM)
    noted.note([first, health(CAM, "online"), second, pulse])
    noted.note([stop(first), third])
    size = path.stat().st_size
    noted.note([pulse, health(CAM, "offline")])  # nothing to note: nothing written
    assert path.stat().st_size == size
    # The process dies here (the file is not closed). The JSON is the stored one.
    assert take_open_alarms(path) == [second, third]
    assert take_open_alarms(path) == []  # each closed once
    noted.close()


def test_a_new_host_starts_empty_and_a_stop_in_order_leaves_nothing(tmp_path: Path) -> None:
    path = open_alarms_path(tmp_path, 0)
    OpenAlarmsFile(path).note([start(1)])
    again = OpenAlarmsFile(path)  # the earlier host's were closed, or stay as they were
    assert take_open_alarms(path) == []
    again.note([start(2)])
    again.close(remove=True)
    assert not path.exists()


def test_a_long_running_host_keeps_the_file_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(open_alarms, "COMPACT_BYTES", 4096)
    path = open_alarms_path(tmp_path, 0)
    noted = OpenAlarmsFile(path)
    held = start(99)
    noted.note([held])
    for n in range(200):
        on = start(n)
        noted.note([on])
        noted.note([stop(on)])
        assert path.stat().st_size <= 4096 + 1024
    assert take_open_alarms(path) == [held]


def test_a_write_cut_by_the_crash_is_left_out(tmp_path: Path) -> None:
    path = open_alarms_path(tmp_path, 0)
    noted = OpenAlarmsFile(path)
    on = start(1)
    noted.note([on])
    with path.open("ab") as f:
        f.write(b"+" + start(2).to_json_bytes()[:40])  # no newline: the write was cut
    assert take_open_alarms(path) == [on]
