"""The job scheduler: runs each ``[[jobs]]`` entry on its cron line or interval.

APScheduler 3's `BackgroundScheduler` with a thread pool decides *when*; this module
decides *what*: one run of a job goes through its devices one after the other (a device
is never asked for two jobs' worth of downloads by one job), only on devices whose session
is online (an offline device's run is recorded as skipped), and records every run in the
state database. Each job has ``max_instances = 1`` and ``coalesce = True``: it never
overlaps with itself (a manual `run_now` waits for a scheduled run in progress), and runs
missed while hikd was busy or down collapse into one, started if it is at most
``misfire_grace_s`` late.

Event-driven kinds (clips) are started here too and fed every event through `on_event`.

A configuration reload hands the new jobs to `reschedule`: an added job is scheduled, a
removed one is not started again, a changed one is scheduled anew; a run in progress of a
removed or changed job is left to finish (with the job as it was when the run started).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hikd.errors import UserError
from hikd.events import Event, utc_now
from hikd.jobs.base import EventContext, EventDrivenJob, Job, JobContext, JobResult
from hikd.jobs.config import JobSpec, parse_jobs
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession
    from hikd.state import StateStore

log = structlog.get_logger("hikd.jobs.scheduler")

Sessions = Callable[[], "dict[str, DeviceSession]"]


@dataclass(frozen=True, slots=True)
class JobRow:
    """One line of ``hikd jobs``."""

    name: str
    kind: str
    devices: str
    schedule: str
    enabled: bool
    next_run: datetime | None
    last_run: datetime | None
    last_ok: bool | None
    last_result: str


class JobScheduler:
    def __init__(
        self,
        jobs_config: Sequence[dict[str, Any]] | Sequence[JobSpec],
        sessions: Sessions,
        publish: Callable[[Event], None],
        state: StateStore,
        stop_event: threading.Event,
        output_dir: Path,
        *,
        devices: Sequence[str] | None = None,
        max_workers: int = 4,
        stored: Callable[[], None] | None = None,
    ) -> None:
        """`jobs_config`: the raw ``[[jobs]]`` tables (validated here; `ConfigError` on a
        problem) or specs from `parse_jobs`. `devices`: the configured device names, to
        check the jobs' ``devices`` keys. `stop_event` is set by `shutdown`. `stored`:
        returns once what was published is stored (raises `UserError` when it cannot be);
        a job's `put` and `mark_done` wait for it."""
        if jobs_config and all(isinstance(j, JobSpec) for j in jobs_config):
            self.specs: list[JobSpec] = [j for j in jobs_config if isinstance(j, JobSpec)]
        else:
            raw = [j for j in jobs_config if isinstance(j, dict)]
            self.specs = parse_jobs(raw, devices)
        self._sessions = sessions
        self._publish = publish
        self.state = state
        self._job_state = state.waiting_for(stored) if stored is not None else state
        self.stop = stop_event
        self.output_dir = Path(output_dir)
        self.jobs: dict[str, Job] = {spec.name: spec.build() for spec in self.specs}
        self._locks: dict[str, threading.Lock] = {}
        """Job name -> held by its run in progress; kept across a reload, so that a changed
        job's first run waits for the old one's to end (a job never overlaps itself)."""
        self._specs_lock = threading.Lock()  # `reschedule` against `run_now` and runs
        self._active = 0
        self._idle = threading.Condition()
        self._max_workers = max_workers
        self._scheduler: Any = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(self._max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        for spec in self.specs:
            self._schedule(spec)
        self._scheduler.start()
        log.info("scheduler started", jobs=len(self.specs))

    def _schedule(self, spec: JobSpec) -> None:
        """Start `spec`'s event-driven part and put it on its schedule (if it has one)."""
        if not spec.settings.enabled:
            return
        job = self.jobs[spec.name]
        if isinstance(job, EventDrivenJob):
            job.start(
                EventContext(
                    job=spec.name,
                    sessions=self._sessions,
                    publish=self._publish,
                    state=self.state,
                    output_dir=self.output_for(spec),
                    devices=spec.settings.devices,
                    stop=self.stop,
                )
            )
        trigger = spec.trigger()
        if trigger is not None:
            self._scheduler.add_job(
                self._scheduled,
                trigger,
                args=[spec.name],
                id=spec.name,
                name=spec.name,
                misfire_grace_time=max(1, int(spec.settings.misfire_grace_s)),
                coalesce=True,
                max_instances=1,
            )

    def reschedule(self, specs: Sequence[JobSpec], close_s: float = 2.0) -> dict[str, list[str]]:
        """Run `specs` from now on (a configuration reload): what was added, removed and
        changed, by name. A job whose only change is its devices keeps its schedule (the
        next run takes the new devices); any other change schedules it anew. Runs in
        progress finish; an event-driven job removed or changed is closed (what it has
        not fetched stays in the state database, and a changed one fetches it)."""
        old = {spec.name: spec for spec in self.specs}
        new = {spec.name: spec for spec in specs}
        removed = [name for name in old if name not in new]
        added = [name for name in new if name not in old]
        changed = [n for n in new if n in old and _differs(old[n], new[n])]
        anew = [n for n in changed if _differs(old[n], new[n], but_devices=True)]
        anew += [n for n in changed if n not in anew and old[n].event_driven]
        for name in [*removed, *anew]:
            self._unschedule(name, close_s)
        with self._specs_lock:
            jobs = {n: self.jobs[n] for n in new if n not in added and n not in anew}
            jobs.update({name: new[name].build() for name in [*added, *anew]})
            self.jobs, self.specs = jobs, list(specs)
        if self._scheduler is not None:
            for name in [*added, *anew]:
                self._schedule(new[name])
        if removed or added or changed:
            log.info("jobs rescheduled", added=added, removed=removed, changed=changed)
        return {"added": added, "removed": removed, "changed": changed}

    def _unschedule(self, name: str, close_s: float) -> None:
        from apscheduler.jobstores.base import JobLookupError

        if self._scheduler is not None:
            # Not there when disabled, or without a schedule (event-driven only).
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(name)
        self.jobs[name].close(close_s)

    def shutdown(self, wait_s: float = 5.0) -> bool:
        """Stop scheduling, tell running jobs to stop (sets the stop event) and wait for
        them up to `wait_s`. Returns False when some job was still running."""
        deadline = time.monotonic() + wait_s
        self.stop.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for job in self.jobs.values():
            job.close(max(0.0, deadline - time.monotonic()))
        with self._idle:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("jobs still running at shutdown", count=self._active)
                    return False
                self._idle.wait(left)
        return True

    # -- events ------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Feed one event to the event-driven jobs (returns at once)."""
        jobs = self.jobs  # `reschedule` replaces it (and `specs`) whole, never changes it
        for spec in self.specs:
            job = jobs.get(spec.name)
            if isinstance(job, EventDrivenJob) and spec.settings.enabled:
                job.on_event(event)

    # -- running -----------------------------------------------------------------------
    def output_for(self, spec: JobSpec) -> Path:
        return spec.settings.output_dir or self.output_dir / spec.name

    def spec(self, name: str) -> JobSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.specs) or "none"
        raise UserError(f"no job named {name!r} (configured: {known})")

    def run_now(self, name: str) -> list[JobResult]:
        """Run job `name` once on each of its devices, now, on this thread. Waits for a
        scheduled run of the same job that is in progress. One result per device."""
        return self._run(name)

    def _scheduled(self, name: str) -> None:
        try:
            self._run(name)
        except Exception:  # never let a job kill the scheduler's worker
            log.exception("job run failed", job=name)

    def _run(self, name: str) -> list[JobResult]:
        with self._idle:
            self._active += 1
        try:
            with self._specs_lock:
                lock = self._locks.setdefault(name, threading.Lock())
            with lock:
                with self._specs_lock:  # the job as it is when its run starts
                    spec = self.spec(name)
                    job = self.jobs[name]
                return self._run_devices(spec, job)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _run_devices(self, spec: JobSpec, job: Job) -> list[JobResult]:
        sessions = self._sessions()
        names = spec.settings.devices if spec.settings.devices is not None else sorted(sessions)
        results: list[JobResult] = []
        for device in names:
            if self.stop.is_set():
                break
            started = utc_now()
            session = sessions.get(device)
            if session is None or session.state != "online" or session.user_id is None:
                result = JobResult(False, f"skipped: device {device} is not online")
            else:
                result = self._run_one(spec, job, session)
            result.details.setdefault("device", device)
            try:
                self.state.record_run(
                    spec.name, device, started, utc_now(), result.ok, result.summary
                )
            except sqlite3.Error as exc:  # a full disk: the run happened all the same
                log.warning("cannot record the job run", job=spec.name, error=str(exc))
            (log.info if result.ok else log.warning)(
                "job run", job=spec.name, device=device, ok=result.ok, summary=result.summary
            )
            results.append(result)
        return results

    def _run_one(self, spec: JobSpec, job: Job, session: DeviceSession) -> JobResult:
        ctx = JobContext(
            job=spec.name,
            session=session,
            publish=self._publish,
            state=self._job_state,
            stop=self.stop,
            output_dir=self.output_for(spec),
        )
        try:
            return job.run(ctx)
        except (UserError, SdkError, OSError) as exc:
            return JobResult(False, str(exc))
        except sqlite3.OperationalError as exc:  # a full or failing disk, not a bug
            return JobResult(False, f"cannot write the state database: {exc}")
        except Exception as exc:
            log.exception("job raised", job=spec.name, device=session.name)
            return JobResult(False, f"internal error: {exc!r}")

    # -- reporting ---------------------------------------------------------------------
    def describe(self) -> list[JobRow]:
        next_runs: dict[str, datetime | None] = {}
        if self._scheduler is not None and self._scheduler.running:
            for ap_job in self._scheduler.get_jobs():
                next_runs[ap_job.id] = ap_job.next_run_time
        return describe_jobs(self.specs, self.state, next_runs)


def _differs(old: JobSpec, new: JobSpec, but_devices: bool = False) -> bool:
    """Whether a job's keys differ (all of them, or all but ``devices``); its place in the
    file is no change."""
    exclude = {"devices"} if but_devices else set()
    settings = old.settings.model_dump(exclude=exclude) != new.settings.model_dump(exclude=exclude)
    return settings or old.cls is not new.cls or old.options != new.options


def describe_jobs(
    specs: Sequence[JobSpec],
    state: StateStore | None,
    next_runs: dict[str, datetime | None] | None = None,
    now: datetime | None = None,
) -> list[JobRow]:
    """Rows for ``hikd jobs``: next runs from `next_runs` (a running scheduler) or
    computed from each trigger, last results from the state database (if any)."""
    now = now or datetime.now().astimezone()
    rows = []
    for spec in specs:
        s = spec.settings
        if next_runs is not None and spec.name in next_runs:
            next_run = next_runs[spec.name]
        else:
            trigger = spec.trigger() if s.enabled else None
            next_run = trigger.get_next_fire_time(None, now) if trigger is not None else None
        if s.cron is not None:
            schedule = f"cron {s.cron}"
        elif s.interval_s is not None:
            schedule = f"every {s.interval_s:g} s"
        else:
            schedule = "on alarms" if spec.event_driven else "manual"
        runs = state.last_runs(spec.name) if state is not None else []
        last_run = max((r["ended"] for r in runs), default=None)
        if not runs:
            last_ok, result = None, "never ran"
        elif len(runs) == 1:
            last_ok, result = runs[0]["ok"], runs[0]["summary"]
        else:
            good = sum(1 for r in runs if r["ok"])
            failing = [f"{r['device']}: {r['summary']}" for r in runs if not r["ok"]]
            last_ok = not failing
            result = f"{good}/{len(runs)} devices ok" + (f"; {failing[0]}" if failing else "")
        rows.append(
            JobRow(
                name=s.name,
                kind=s.kind,
                devices=", ".join(s.devices) if s.devices is not None else "all",
                schedule=schedule,
                enabled=s.enabled,
                next_run=next_run,
                last_run=last_run,
                last_ok=last_ok,
                last_result=result,
            )
        )
    return rows
