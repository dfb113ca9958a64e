"""A full file system under the outbox, for real (a small tmpfs filled to the last byte):
delivery goes on from memory, says so once, and stores everything once space returns."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from structlog.testing import capture_logs

from hikd.delivery.outbox import Outbox
from hikd.devices.session import DeviceSession
from hikd.errors import UserError
from hikd.events import Event
from hikd.jobs.scheduler import JobScheduler
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.state import StateStore
from tests.delivery.test_bus import Recorder, Stuck, alarm, new_bus, wait_until
from tests.support import Collector, device_config, fill, small_filesystem


def written_cursors(path: Path) -> dict[str, int]:
    """Each sink's cursor as written in the outbox file (not the one kept in memory)."""
    with closing(sqlite3.connect(path)) as conn:
        return dict(conn.execute("SELECT sink, seq FROM cursors"))


def test_a_full_state_dir_reports_once_waits_in_memory_and_stores_everything(
    tmp_path: Path,
) -> None:
    with small_filesystem(tmp_path / "state") as state:
        quick, slow, health = Recorder(), Stuck(), list[Event]()
        outbox = Outbox(state / "outbox.sqlite")
        bus = new_bus(outbox, [("quick", quick), ("slow", slow)], health.append)
        try:
            with capture_logs() as logs:
                bus.start()
                before = [alarm(i) for i in range(10)]
                for event in before:
                    bus.publish(event)
                assert slow.entered.wait(10)  # "slow" holds them, not acknowledged yet
                wait_until(lambda: len(quick.events) == 10)
                # ... and "quick" has acknowledged them on disk: its acknowledgement, written
                # up to 0.2 s later, would otherwise be the first write to find the disk full.
                wait_until(lambda: written_cursors(state / "outbox.sqlite")["quick"] == 10)

                filler = fill(state)
                during = [alarm(i) for i in range(10, 210)]
                for event in during:
                    bus.publish(event)
                # Every sink hears of it straight from memory, while the disk is full ...
                wait_until(lambda: any(e.type == "outbox_unwritable" for e in quick.events))
                slow.release.set()  # ... and "slow" delivers, though its ack cannot be stored
                wait_until(lambda: any(e.type == "outbox_unwritable" for e in slow.events))
                assert bus.stats()["queue"]["queued"] == 200  # waiting in memory
                assert not quick.alarm_ids()[10:]

                filler.unlink()  # space returns
                for sink in (quick, slow):
                    wait_until(lambda s=sink: len(s.alarm_ids()) == 210)  # type: ignore[misc]
                wait_until(lambda: [h.state for h in health] == ["start", "stop"])
                wait_until(
                    lambda: all(s.events[-1].type == "outbox_unwritable" for s in (quick, slow))
                )
        finally:
            slow.release.set()
            bus.stop(timeout=2)
            outbox.close()

    every = [e.id for e in before + during]
    for sink in (quick, slow):
        assert sink.alarm_ids() == every, "lost, repeated or out of order"
        unwritable = [e for e in sink.events if e.type == "outbox_unwritable"]
        assert [(e.state, e.attributes.get("stored")) for e in unwritable] == [
            ("start", False),
            ("stop", None),
        ]
        assert unwritable[1].attributes["start_id"] == unwritable[0].id
    assert unwritable[0].attributes["error"] == "database or disk is full"
    assert unwritable[1].attributes["waited"] == 200
    # The sinks themselves never failed: the outbox did, and that is said once.
    assert not [e for e in quick.events + slow.events if e.type == "sink_unavailable"]
    lines = [(e["log_level"], e["event"]) for e in logs if e["log_level"] != "debug"]
    assert [level for level, _ in lines if level in ("warning", "error")] == ["error"], lines
    assert not [e for e in logs if e.get("exc_info")], "a traceback for a full disk"


def test_a_job_marks_nothing_done_while_its_events_cannot_be_stored(
    tmp_path: Path, sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    """Inside the daemon a job's events go through the bus; what it marks done (a device
    log's cursor) waits until they are stored, and is not written when they cannot be."""
    sim = start_sim(SimDeviceConfig(name="nvr", log_entries=6))
    session = DeviceSession(sdk, device_config(sim), Collector())
    session.login_once()
    state = StateStore(tmp_path / "state.sqlite")  # elsewhere: only the outbox's disk is full
    with small_filesystem(tmp_path / "outbox") as disk:
        sink = Recorder()
        outbox = Outbox(disk / "outbox.sqlite")
        bus = new_bus(outbox, [("quick", sink)])

        def stored() -> None:
            if not bus.wait_stored(1.0):
                raise UserError("its events are not stored in the outbox")

        job = {"name": "logs", "kind": "device_log", "interval_s": 3600, "history_days": 2}
        scheduler = JobScheduler(
            [job], lambda: {"nvr": session}, bus.publish, state, threading.Event(),
            tmp_path / "files", stored=stored,
        )  # fmt: skip
        try:
            bus.start()
            filler = fill(disk)
            (failed,) = scheduler.run_now("logs")
            assert not failed.ok and "not stored" in failed.summary, failed.summary
            assert state.get("logs", "nvr/cursor") is None  # nothing marked done
            filler.unlink()
            (ran,) = scheduler.run_now("logs")  # reads the same entries again
            assert ran.ok, ran.summary
            assert state.get("logs", "nvr/cursor") is not None
            wait_until(lambda: len([e for e in sink.events if e.kind == "log"]) >= 12)
        finally:
            bus.stop(timeout=2)
            outbox.close()
            session.close()
            state.close()
