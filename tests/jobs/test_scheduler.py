"""The job scheduler and the ``[[jobs]]`` tables: validation with key paths, online-only
runs, no overlap, shutdown, and what ``hikd jobs`` shows.

A small job kind registered here ("probe") stands in for the real recorders: what is under
test is the scheduling, not what a job fetches (test_download.py and test_clips.py do that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from hikd.devices.session import DeviceSession
from hikd.errors import ConfigError
from hikd.jobs.base import Job, JobContext, JobResult
from hikd.jobs.config import parse_jobs, validate_jobs
from hikd.jobs.registry import register
from hikd.jobs.scheduler import JobScheduler, describe_jobs
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.state import StateStore
from tests.support import device_config, wait_for


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hold_s: float = 0.0
    fail: bool = False
    channels: list[int] | None = None


class ProbeJob(Job):
    kind: ClassVar[str] = "probe"
    Config: ClassVar[type[BaseModel]] = ProbeConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, ProbeConfig)
        self.config = config
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0
        self.runs: list[str] = []
        self.stopped_early = 0

    def run(self, ctx: JobContext) -> JobResult:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.runs.append(ctx.session.name)
            n = len(self.runs)
        try:
            if self.config.hold_s and ctx.stop.wait(self.config.hold_s):
                self.stopped_early += 1
            if self.config.fail:
                raise RuntimeError("the probe broke")
            return JobResult(True, f"run {n} on {ctx.session.name}", {"output": ctx.output_dir})
        finally:
            with self.lock:
                self.running -= 1


register("probe", ProbeJob)


def probe(name: str = "p", **options: object) -> dict[str, object]:
    schedule = {} if "cron" in options else {"interval_s": 3600}
    return {"name": name, "kind": "probe", **schedule, **options}


# -- validation ----------------------------------------------------------------------------


def test_every_problem_of_every_job_is_reported_with_its_key_path() -> None:
    jobs: list[object] = [
        {"name": "ok", "kind": "download", "cron": "30 3 * * *", "window_h": 12},
        {"name": "neg", "kind": "download", "interval_s": 60, "window_h": -1},
        {"name": "what", "kind": "nope", "interval_s": 60},
        {"name": "ok", "kind": "probe", "interval_s": 60},
        {"name": "cron", "kind": "probe", "cron": "61 * * * *"},
        {"name": "when", "kind": "probe"},
        {"name": "both", "kind": "probe", "cron": "* * * * *", "interval_s": 5},
        {"name": "ghost", "kind": "probe", "interval_s": 5, "devices": ["nvr", "ghost"]},
        {"name": "typo", "kind": "download", "interval_s": 5, "windw_h": 3},
        {"name": "clips", "kind": "clips", "pre_s": 5},
        {"name": "bad name", "kind": "probe", "interval_s": 5},
        "not a table",
        {"name": "short", "kind": "probe", "cron": "* * *"},
    ]
    with pytest.raises(ConfigError) as caught:
        validate_jobs(jobs, devices=["nvr", "cam"])
    problems = caught.value.problems
    expected_starts = [
        "jobs.1.window_h: ",
        "jobs.2.kind: unknown kind 'nope'; known kinds: ",
        "jobs.3.name: 'ok' is already the name of jobs.0",
        "jobs.4.cron: ",
        "jobs.5: set cron",
        "jobs.6: set cron or interval_s, not both",
        "jobs.7.devices.1: no device named 'ghost' (configured: nvr, cam)",
        "jobs.8.windw_h: unknown key; did you mean 'window_h'?",
        "jobs.10.name: must contain only letters",
        "jobs.11: must be a table",
        "jobs.12.cron: Wrong number of fields",
    ]
    assert len(problems) == len(expected_starts), problems
    for problem, start in zip(problems, expected_starts, strict=True):
        assert problem.startswith(start), (problem, start)
    assert "download" in problems[1] and "clips" in problems[1]
    assert "61" in problems[3]
    # A valid list passes, and the kind's options come out validated.
    specs = parse_jobs([jobs[0], jobs[9]], devices=["nvr"])
    assert [s.name for s in specs] == ["ok", "clips"]
    assert specs[0].options.model_dump()["window_h"] == 12
    assert specs[1].event_driven and specs[1].trigger() is None


def test_common_keys_reach_a_kind_that_declares_them() -> None:
    [spec] = parse_jobs([probe(channels=[2, 3], devices=["nvr"])])
    assert spec.options.model_dump()["channels"] == [2, 3]
    assert spec.settings.channels == [2, 3] and spec.settings.devices == ["nvr"]


# -- running -------------------------------------------------------------------------------


@pytest.fixture
def two_devices(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> Iterator[dict[str, DeviceSession]]:
    """'nvr' online through the real library; 'cam' configured but never logged in."""
    sim = start_sim(SimDeviceConfig(name="nvr"))
    online = DeviceSession(sdk, device_config(sim), publish=lambda _e: None)
    never = DeviceSession(sdk, device_config(sim, name="cam", port=1), publish=lambda _e: None)
    try:
        online.login_once()
        yield {"nvr": online, "cam": never}
    finally:
        online.close()


def test_a_run_goes_to_online_devices_and_records_skips(
    two_devices: dict[str, DeviceSession], tmp_path: Path
) -> None:
    with StateStore.open(tmp_path) as state:
        scheduler = JobScheduler(
            [probe()], lambda: two_devices, lambda _e: None, state, threading.Event(), tmp_path
        )
        results = scheduler.run_now("p")
        by_device = {r.details["device"]: r for r in results}
        assert by_device["nvr"].ok and by_device["nvr"].summary == "run 1 on nvr"
        assert by_device["nvr"].details["output"] == tmp_path / "p"
        assert not by_device["cam"].ok
        assert by_device["cam"].summary == "skipped: device cam is not online"
        job = scheduler.jobs["p"]
        assert isinstance(job, ProbeJob) and job.runs == ["nvr"]
        nvr, cam = state.last_run("p", "nvr"), state.last_run("p", "cam")
        assert nvr is not None and nvr["ok"] and cam is not None and not cam["ok"]
        [row] = scheduler.describe()
        assert row.last_ok is False and row.last_result.startswith("1/2 devices ok; cam: skipped")


def test_a_failing_job_is_recorded_and_the_scheduler_goes_on(
    two_devices: dict[str, DeviceSession], tmp_path: Path
) -> None:
    jobs = [probe("broken", fail=True, devices=["nvr"]), probe("fine", devices=["nvr"])]
    with StateStore.open(tmp_path) as state:
        scheduler = JobScheduler(
            jobs, lambda: two_devices, lambda _e: None, state, threading.Event(), tmp_path
        )
        [broken] = scheduler.run_now("broken")
        assert not broken.ok and "the probe broke" in broken.summary
        [fine] = scheduler.run_now("fine")
        assert fine.ok
        last = state.last_run("broken", "nvr")
        assert last is not None and "the probe broke" in last["summary"]


def test_a_job_never_overlaps_with_itself(
    two_devices: dict[str, DeviceSession], tmp_path: Path
) -> None:
    jobs = [probe("busy", interval_s=0.05, hold_s=0.3, devices=["nvr"], misfire_grace_s=30)]
    with StateStore.open(tmp_path) as state:
        scheduler = JobScheduler(
            jobs, lambda: two_devices, lambda _e: None, state, threading.Event(), tmp_path
        )
        job = scheduler.jobs["busy"]
        assert isinstance(job, ProbeJob)
        scheduler.start()
        try:
            ap_job = scheduler._scheduler.get_job("busy")
            assert ap_job.max_instances == 1 and ap_job.coalesce is True
            assert ap_job.misfire_grace_time == 30
            assert wait_for(lambda: len(job.runs) >= 2)
            # A manual run while a scheduled one may be in progress waits its turn.
            [manual] = scheduler.run_now("busy")
            assert manual.ok
            assert wait_for(lambda: len(job.runs) >= 4)
        finally:
            assert scheduler.shutdown(wait_s=5)
        assert job.max_running == 1


def test_shutdown_stops_a_running_job_and_waits_for_it(
    two_devices: dict[str, DeviceSession], tmp_path: Path
) -> None:
    stop = threading.Event()
    with StateStore.open(tmp_path) as state:
        scheduler = JobScheduler(
            [probe("long", hold_s=60, devices=["nvr"])],
            lambda: two_devices,
            lambda _e: None,
            state,
            stop,
            tmp_path,
        )
        job = scheduler.jobs["long"]
        assert isinstance(job, ProbeJob)
        runner = threading.Thread(target=scheduler.run_now, args=("long",))
        runner.start()
        try:
            assert wait_for(lambda: job.running == 1)
        finally:
            finished = scheduler.shutdown(wait_s=10)
            runner.join(10)
        assert finished and stop.is_set() and job.stopped_early == 1
        # After shutdown no further device is started.
        assert scheduler.run_now("long") == []


def test_hikd_jobs_rows_show_schedule_next_run_and_last_result(
    two_devices: dict[str, DeviceSession], tmp_path: Path
) -> None:
    jobs = [
        probe("nightly", cron="30 3 * * *", devices=["nvr"]),
        probe("often", interval_s=600, enabled=False),
        {"name": "clips", "kind": "clips"},
    ]
    specs = parse_jobs(jobs)
    now = datetime(2024, 5, 1, 12, 0).astimezone()
    rows = describe_jobs(specs, None, now=now)
    assert [(r.name, r.schedule, r.devices) for r in rows] == [
        ("nightly", "cron 30 3 * * *", "nvr"),
        ("often", "every 600 s", "all"),
        ("clips", "on alarms", "all"),
    ]
    assert rows[0].next_run is not None
    assert (rows[0].next_run.day, rows[0].next_run.hour, rows[0].next_run.minute) == (2, 3, 30)
    assert rows[1].next_run is None and not rows[1].enabled
    assert rows[2].next_run is None
    assert all(r.last_result == "never ran" and r.last_ok is None for r in rows)

    with StateStore.open(tmp_path) as state:
        scheduler = JobScheduler(
            specs, lambda: two_devices, lambda _e: None, state, threading.Event(), tmp_path
        )
        scheduler.run_now("nightly")
        scheduler.start()
        try:
            rows = scheduler.describe()
        finally:
            scheduler.shutdown(wait_s=5)
    assert rows[0].last_ok is True and rows[0].last_result == "run 1 on nvr"
    assert rows[0].last_run is not None
    assert rows[0].next_run is not None and rows[0].next_run > datetime.now().astimezone()
    assert rows[1].next_run is None  # disabled: not scheduled


def test_scheduled_runs_happen_without_being_asked(
    two_devices: dict[str, DeviceSession], tmp_path: Path
) -> None:
    with StateStore.open(tmp_path) as state:
        scheduler = JobScheduler(
            [probe("tick", interval_s=0.1, devices=["nvr"])],
            lambda: two_devices,
            lambda _e: None,
            state,
            threading.Event(),
            tmp_path,
        )
        scheduler.start()
        try:
            assert wait_for(lambda: state.last_run("tick", "nvr") is not None)
        finally:
            scheduler.shutdown(wait_s=5)
    assert scheduler.shutdown(wait_s=1)  # a second shutdown is harmless
