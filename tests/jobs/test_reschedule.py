"""A reload's jobs (`JobScheduler.reschedule`): added ones are scheduled, removed ones are
not started again, changed ones are scheduled anew, a job whose only change is its devices
keeps its schedule, and a run in progress of a changed or removed job finishes as it was.
The "probe" kind of test_scheduler.py stands in for the recorders; a "gate" kind here holds
its run until the test lets it go.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from hikd.devices.session import DeviceSession
from hikd.jobs.base import Job, JobContext, JobResult
from hikd.jobs.config import parse_jobs
from hikd.jobs.registry import register
from hikd.jobs.scheduler import JobScheduler
from hikd.state import StateStore
from tests.jobs.test_scheduler import ProbeJob, probe, two_devices  # noqa: F401 - a fixture
from tests.support import wait_for

GATE = threading.Event()


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = ""


class GateJob(Job):
    """Runs until `GATE` is set; says which configuration it ran with."""

    kind: ClassVar[str] = "gate"
    Config: ClassVar[type[BaseModel]] = GateConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, GateConfig)
        self.label = config.label
        self.running = threading.Event()

    def run(self, ctx: JobContext) -> JobResult:
        self.running.set()
        GATE.wait(60)
        return JobResult(True, f"ran as {self.label!r}")


register("gate", GateJob)


def test_a_reload_adds_removes_and_changes_jobs_and_lets_a_run_in_progress_finish(
    two_devices: dict[str, DeviceSession],  # noqa: F811
    tmp_path: Path,
) -> None:
    GATE.clear()
    jobs = [
        {"name": "long", "kind": "gate", "label": "old", "devices": ["nvr"], "interval_s": 3600},
        probe("kept", devices=["nvr", "cam"]),
        probe("gone", interval_s=0.05, devices=["nvr"]),
    ]
    with StateStore.open(tmp_path) as state:
        scheduler = JobScheduler(
            jobs, lambda: two_devices, lambda _e: None, state, threading.Event(), tmp_path
        )
        scheduler.start()
        try:
            old = scheduler.jobs["long"]
            assert isinstance(old, GateJob)
            results: list[list[JobResult]] = []
            runner = threading.Thread(target=lambda: results.append(scheduler.run_now("long")))
            runner.start()
            assert old.running.wait(30)
            kept_next = scheduler._scheduler.get_job("kept").next_run_time

            new_jobs = [
                probe("added", interval_s=0.05, devices=["nvr"]),
                probe("kept", devices=["nvr"]),  # its devices only
                {
                    "name": "long",
                    "kind": "gate",
                    "label": "new",
                    "devices": ["nvr"],
                    "cron": "0 3 * * *",
                },
            ]
            changes = scheduler.reschedule(parse_jobs(new_jobs))
            assert changes == {"added": ["added"], "removed": ["gone"], "changed": ["kept", "long"]}
            scheduled = {job.id: job for job in scheduler._scheduler.get_jobs()}
            assert set(scheduled) == {"added", "kept", "long"}
            assert "gone" not in scheduler.jobs
            assert scheduled["kept"].next_run_time == kept_next
            assert str(scheduled["long"].trigger).startswith("cron")
            assert scheduler.spec("kept").settings.devices == ["nvr"]
            added = scheduler.jobs["added"]
            assert isinstance(added, ProbeJob)
            assert wait_for(lambda: len(added.runs) >= 2)

            # The run in progress goes on with the job as it was; the next takes the new one
            # (and waits for the old run: a job never overlaps itself).
            assert old.running.is_set() and not scheduler.stop.is_set() and not results
            second: list[list[JobResult]] = []
            again = threading.Thread(target=lambda: second.append(scheduler.run_now("long")))
            again.start()
            GATE.set()
            runner.join(30)
            again.join(30)
            assert [r.summary for r in results[0]] == ["ran as 'old'"]
            assert [r.summary for r in second[0]] == ["ran as 'new'"]
        finally:
            GATE.set()
            assert scheduler.shutdown(wait_s=10)
