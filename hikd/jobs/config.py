"""The ``[[jobs]]`` tables: keys every job has, and the kind's own options.

::

    [[jobs]]
    name = "nightly-recordings"   # unique; also the job's folder and its key in the state db
    kind = "download"             # see hikd.jobs.registry
    devices = ["nvr"]             # default: every device
    channels = [1, 2]             # default: every channel of each device
    cron = "30 3 * * *"           # 5-field crontab, host's local time; or interval_s = 3600
    window_h = 24                 # ... and the kind's own options

The common keys are checked by `JobSettings`; every other key goes to the kind's
``Config`` model, which also gets the common keys it declares itself (a kind that works
per channel declares ``channels``). Problems carry the key path: ``jobs.2.window_h: ...``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from hikd.config import Config, validate_section
from hikd.errors import ConfigError, UserError
from hikd.jobs.base import Job
from hikd.jobs.registry import job_class

COMMON_KEYS = (
    "name",
    "kind",
    "devices",
    "channels",
    "cron",
    "interval_s",
    "enabled",
    "output_dir",
    "misfire_grace_s",
)


def _job_name(value: str) -> str:
    if not value or not all(c.isalnum() or c in "-_" for c in value):
        raise ValueError("must contain only letters, digits, '-' and '_' (it names a folder)")
    return value


def _absolute(path: Path) -> Path:
    return path.expanduser().absolute()


class JobSettings(BaseModel):
    """The keys every ``[[jobs]]`` table has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, AfterValidator(_job_name)]
    kind: str
    devices: list[str] | None = None
    """Device names; None = every configured device."""
    channels: list[Annotated[int, Field(ge=1)]] | None = None
    """Channel numbers as the device numbers them; None = every channel of the device."""
    cron: str | None = None
    """A 5-field crontab line (minute hour day month weekday), in the host's local time."""
    interval_s: Annotated[float, Field(gt=0)] | None = None
    enabled: bool = True
    output_dir: Annotated[Path, AfterValidator(_absolute)] | None = None
    """Where the job writes; default: <daemon output dir>/<job name>."""
    misfire_grace_s: Annotated[float, Field(gt=0)] = 300.0
    """A run that could not start on time (hikd was busy or stopped) still starts if it is
    at most this late; runs missed while hikd was down collapse into one."""


@dataclass(frozen=True)
class JobSpec:
    """One validated job: its common settings, its kind's options and class."""

    index: int
    settings: JobSettings
    options: BaseModel
    cls: type[Job]

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kind(self) -> str:
        return self.settings.kind

    @property
    def event_driven(self) -> bool:
        """A kind that reacts to events (clips) and may run without a schedule."""
        return self.cls.event_driven

    def trigger(self) -> Any:
        """The APScheduler trigger of the job, or None when it has no schedule."""
        return make_trigger(self.settings)

    def build(self) -> Job:
        # The contract of hikd.jobs.base: one instance per configured job.
        factory: Any = self.cls
        job: Job = factory(self.options)
        return job


def make_trigger(settings: JobSettings) -> Any:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if settings.cron is not None:
        return CronTrigger.from_crontab(settings.cron)
    if settings.interval_s is not None:
        return IntervalTrigger(seconds=settings.interval_s)
    return None


def parse_jobs(raw_jobs: Sequence[Any], devices: Sequence[str] | None = None) -> list[JobSpec]:
    """Validate every ``[[jobs]]`` table. Raises `ConfigError` listing all problems.

    With `devices` (the configured device names) the ``devices`` keys are checked too."""
    problems: list[str] = []
    specs: list[JobSpec] = []
    names: dict[str, int] = {}
    for index, raw in enumerate(raw_jobs):
        where = f"jobs.{index}"
        try:
            spec = _parse_one(index, raw, where, devices)
        except ConfigError as exc:
            problems += exc.problems
            continue
        if spec.name in names:
            problems.append(
                f"{where}.name: {spec.name!r} is already the name of jobs.{names[spec.name]}; "
                "job names must be unique"
            )
            continue
        names[spec.name] = index
        specs.append(spec)
    if problems:
        raise ConfigError(problems)
    return specs


def host_jobs(
    raw_jobs: Sequence[Any], devices: Sequence[str], owned: Collection[str]
) -> list[JobSpec]:
    """The jobs a device host runs: checked against every configured device (`devices`),
    each run on the devices of its own (`owned`) that it names; a job without ``devices``
    runs on all of them."""
    return [
        spec
        if spec.settings.devices is None
        else replace(
            spec,
            settings=spec.settings.model_copy(
                update={"devices": [n for n in spec.settings.devices if n in owned]}
            ),
        )
        for spec in parse_jobs(raw_jobs, devices)
    ]


def validate_jobs(raw_jobs: Sequence[Any], devices: Sequence[str] | None = None) -> None:
    """For ``hikd check-config``: raises `ConfigError` with one line per problem."""
    parse_jobs(raw_jobs, devices)


def default_output_dir(config: Config) -> Path:
    """Where jobs write when they name no ``output_dir``: ``<state_dir>/files/<job>``."""
    return Path(config.daemon.state_dir) / "files"


def _parse_one(index: int, raw: Any, where: str, devices: Sequence[str] | None) -> JobSpec:
    if not isinstance(raw, dict):
        raise ConfigError([f"{where}: must be a table ([[jobs]] with keys)"])
    common = {k: v for k, v in raw.items() if k in COMMON_KEYS}
    settings = validate_section(JobSettings, common, where)
    try:
        cls = job_class(settings.kind)
    except UserError as exc:
        raise ConfigError([f"{where}.kind: {exc}"]) from None
    config_model: type[BaseModel] = cls.Config
    declared = set(config_model.model_fields)
    own = {k: v for k, v in raw.items() if k not in COMMON_KEYS or k in declared}
    problems: list[str] = []
    try:
        options = validate_section(config_model, own, where)
    except ConfigError as exc:
        problems += exc.problems
        options = None
    problems += _schedule_problems(settings, cls, where)
    if devices is not None and settings.devices is not None:
        for i, name in enumerate(settings.devices):
            if name not in devices:
                known = ", ".join(devices) or "none"
                problems.append(
                    f"{where}.devices.{i}: no device named {name!r} (configured: {known})"
                )
    if problems or options is None:
        raise ConfigError(problems)
    return JobSpec(index=index, settings=settings, options=options, cls=cls)


def _schedule_problems(settings: JobSettings, cls: type[Job], where: str) -> list[str]:
    if settings.cron is not None and settings.interval_s is not None:
        return [f"{where}: set cron or interval_s, not both"]
    if settings.cron is not None:
        try:
            make_trigger(settings)
        except ValueError as exc:
            return [
                f"{where}.cron: {exc} (a crontab line: minute hour day month weekday, "
                f'like "30 3 * * *") (got {settings.cron!r})'
            ]
        return []
    if settings.interval_s is None and not cls.event_driven:
        return [f'{where}: set cron (like "30 3 * * *") or interval_s to say when it runs']
    return []
