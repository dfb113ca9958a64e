"""Backfill after a device host is killed (SIGKILL) in armed mode: the alarms the host heard
and stored live in its last second are not read back from the device's log once more, and
every alarm it had not stored is. `hikd run` with the real vendor library in its device
host, hikd.sim, the disk sink (README "Backfill")."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hikd.events import DeviceRef, Event
from hikd.listeners.backfill_heard import HeardFile, heard_path, with_heard
from hikd.listeners.log_alarms import Live
from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess, disk_events
from tests.hosts.configs import armed_device_config
from tests.hosts.test_device_hosts import host_pids
from tests.hosts.test_nothing_lost import motion_on_disk
from tests.support import wait_until

DEVICE = "door"
AROUND_THE_KILL = range(5, 29)
"""A channel each for the motion raised every 0.1 s around the kill."""
KILL_AFTER = 14
"""Of those, raised before the host is killed (it saves its record once a second)."""


def test_alarms_heard_before_a_host_is_killed_come_once_and_none_is_lost(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator([SimDeviceConfig(name=DEVICE, password=SECRET, ip_channels=32)]).start()
    try:
        device, state = sim.devices[0], tmp_path / "state"
        config = tmp_path / "hikd.toml"
        config.write_text(armed_device_config(config, DEVICE, device.port))
        hikd = run_hikd(config, sim)
        assert device.wait_for_streams(1, timeout=START_TIMEOUT_S), hikd.output()
        for channel in range(1, 5):
            device.trigger("VMD", channel=channel)
        wait_until(lambda: set(range(1, 5)) <= set(motion_on_disk(state)), "live alarms", 30)
        pid = host_pids(hikd)[0]

        raised = threading.Semaphore(0)

        def raise_motion() -> None:
            for channel in AROUND_THE_KILL:
                device.trigger("VMD", channel=channel)
                raised.release()
                time.sleep(0.1)  # the pace of the alarms, not a wait for anything

        raiser = threading.Thread(target=raise_motion)
        raiser.start()
        try:
            for _ in range(KILL_AFTER):
                raised.acquire()
            # Delivered before the kill: stored, so noted (the one being stored as the host
            # dies may come back once, marked; README "Backfill").
            delivered = set(motion_on_disk(state))
        finally:
            os.kill(pid, signal.SIGKILL)
            raiser.join()
        wait_until(lambda: host_pids(hikd).get(0, pid) != pid, "the new host", 30)
        wait_until(
            lambda: any(e["type"] == "backfill" for e in disk_events(state)), "the backfill", 90
        )
        wanted = [*range(1, 5), *AROUND_THE_KILL]
        with contextlib.suppress(AssertionError):
            wait_until(lambda: set(wanted) <= set(motion_on_disk(state)), "every alarm", 30)
        found = motion_on_disk(state)
        assert [c for c in wanted if c not in found] == []  # none lost
        live = [c for c in wanted if not found[c][0]["attributes"].get("backfilled")]
        assert len(delivered) > 4  # some of those around the kill were heard live
        twice = {c: [e["attributes"].get("backfilled") for e in found[c]] for c in delivered}
        assert {c: marks for c, marks in twice.items() if len(marks) > 1} == {}
        for channel in wanted:  # any other copy is marked
            assert [e["attributes"].get("backfilled") for e in found[channel]][1:] in ([], [True])
        [report] = [e for e in disk_events(state) if e["type"] == "backfill"]
        assert report["attributes"]["heard_live"] >= len(live) - 4
        assert hikd.process.poll() is None
    finally:
        sim.stop()


def motion(channel: int, at: float, **attributes: Any) -> Event:
    when = datetime.fromtimestamp(at, UTC)
    ref = DeviceRef(DEVICE, "", "")
    return Event(
        kind="alarm", type="motion", state="start", device=ref, channel=channel, time=when,
        attributes=attributes,
    )  # fmt: skip


def test_the_record_keeps_what_was_stored_since_the_save_before_the_last(tmp_path: Path) -> None:
    def channels(record: HeardFile) -> list[int | None]:
        return [where for _kind, where, _at, _resent in record.take().get(DEVICE, [])]

    record = HeardFile(heard_path(tmp_path, 0))
    record.begin()
    record.note([motion(1, 1000.0)], [DEVICE])
    record.rotate()  # a save: alarm 1 is in it
    record.note([motion(2, 1001.0), motion(3, 1002.0, backfilled=True)], [DEVICE])
    assert channels(record) == [1, 2]  # alarm 2 came after the save
    record.rotate()  # the next save has alarm 2 too: alarm 1 goes
    record.note([motion(4, 1003.0)], [DEVICE])
    record.note([motion(5, 1004.0)], ["another"])  # not a device this backfill watches
    assert channels(record) == [2, 4]  # (a read back is never noted)
    record.close()
    assert channels(HeardFile(heard_path(tmp_path, 0))) == [2, 4]  # what a killed host left


def test_an_alarm_in_both_the_save_and_the_file_counts_once() -> None:
    # Counted twice, one live alarm could stand for a missed one a second from it.
    saved: deque[Live] = deque([("motion", 1, 1000.0, False), ("motion", 1, 1001.0, False)])
    noted: list[Live] = [("motion", 1, 1001.0, False), ("motion", 1, 1002.0, False)]
    assert list(with_heard(saved, noted) or []) == [*saved, ("motion", 1, 1002.0, False)]
    assert with_heard(saved, noted[:1]) is None
