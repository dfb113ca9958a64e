"""Device log pull (kind ``device_log``): the device's own log as events, each entry once.

Each run searches the log (NET_DVR_FindDVRLog_V30 by time, seed 5.31.14; over ISAPI the
library turns it into ``POST /ISAPI/ContentMgmt/logSearch``) from the last entry it pulled
and publishes every new entry as an event of kind ``log``: type = the major type's name
(``alarm``, ``exception``, ``operation``, ``information``), attributes = the minor type
(name and code), user, remote host, info, ... Times are the device's wall clock in its
configured zone.

The log's resolution is one second and the search is inclusive, so the cursor in the
state database is the time of the last entry plus the fingerprints of the entries seen at
that second: the next run starts at that second and skips exactly those.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field

from hikd.devices.capabilities.device_log import device_log
from hikd.events import Event
from hikd.jobs.base import Job, JobContext, JobResult
from hikd.sdk.device_log import LogRecord
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

log = structlog.get_logger("hikd.recorders.device_log")


class DeviceLogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    history_days: Annotated[float, Field(gt=0)] = 1.0
    """How far back the first run reaches (later runs continue where the last one ended)."""
    types: list[str] | None = None
    """Major types to publish (``alarm``, ``exception``, ``operation``, ``information``);
    default all. Entries of other types are still counted as pulled."""
    max_entries: Annotated[int, Field(ge=1)] = 20_000
    """Entries read per run at most; the next run continues after the last one."""


def fingerprint(record: LogRecord) -> str:
    """What identifies an entry within its second (the log has no entry id)."""
    data = [
        record.major,
        record.minor,
        record.user,
        record.remote_host,
        record.channel,
        record.disk,
        record.alarm_input,
        record.alarm_output,
        record.parameter_type,
        record.info,
    ]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:20]


def log_event(session: DeviceSession, record: LogRecord) -> Event:
    attributes: dict[str, Any] = {
        "minor": record.minor_name,
        "minor_code": record.minor,
        "major_code": record.major,
        "user": record.user,
        "remote_host": record.remote_host,
        "info": record.info,
    }
    for name in ("disk", "alarm_input", "alarm_output", "parameter_type"):
        value = getattr(record, name)
        if value:
            attributes[name] = value
    assert record.time is not None
    return Event(
        kind="log",
        type=record.major_name,
        state="pulse",
        device=session.device,
        channel=record.channel or None,
        time=record.time,
        attributes=attributes,
    )


def _zone(session: DeviceSession) -> tzinfo:
    return session.config.tzinfo() or UTC


class DeviceLogJob(Job):
    """Kind ``device_log``: every new log entry of the device, once."""

    kind: ClassVar[str] = "device_log"
    Config: ClassVar[type[BaseModel]] = DeviceLogConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, DeviceLogConfig)
        self.config = config

    def run(self, ctx: JobContext) -> JobResult:
        cfg = self.config
        session = ctx.session
        user_id = session.user_id
        if user_id is None:
            return JobResult(False, "device not logged in")
        tz = _zone(session)
        key = f"{session.name}/cursor"
        cursor = ctx.state.get(ctx.job, key, None) or {}
        now = datetime.now(tz).replace(microsecond=0)
        since = (
            datetime.fromisoformat(cursor["time"]).astimezone(tz)
            if cursor.get("time")
            else now - timedelta(days=cfg.history_days)
        )
        seen = set(cursor.get("seen", []))
        # The end lies a day ahead: a device clock that runs fast still has its newest
        # entries found.
        search = device_log(session, since, now + timedelta(days=1), tz)
        try:
            records = list(islice(search, cfg.max_entries))
        except SdkError as exc:
            log.warning("device log search failed", device=session.name, error=str(exc))
            return JobResult(False, f"device log search failed: {exc}")
        finally:
            search.close()  # closes the search handle at once when max_entries cut it short
        undated = sum(1 for r in records if r.time is None)
        dated = sorted((r for r in records if r.time is not None), key=_time)
        occurrences: Counter[tuple[datetime, str]] = Counter()
        new: list[tuple[LogRecord, str]] = []
        last_time = since if cursor.get("time") else None
        at_last: set[str] = set(seen) if last_time is not None else set()
        for record in dated:
            when = _time(record)
            base = fingerprint(record)
            occurrences[(when, base)] += 1
            ident = f"{base}#{occurrences[(when, base)]}"
            if when < since or (when == since and cursor.get("time") and ident in seen):
                continue
            new.append((record, ident))
            if last_time is None or when > last_time:
                last_time, at_last = when, {ident}
            elif when == last_time:
                at_last.add(ident)
        wanted = set(cfg.types) if cfg.types is not None else None
        published = 0
        for record, _ident in new:
            if wanted is None or record.major_name in wanted:
                ctx.publish(log_event(session, record))
                published += 1
        if last_time is not None:
            ctx.state.put(ctx.job, key, {"time": last_time.isoformat(), "seen": sorted(at_last)})
        if undated:
            log.info("log entries without a valid time skipped", device=session.name, count=undated)
        summary = f"{published} new log entries"
        if len(new) > published:
            summary += f" ({len(new) - published} filtered out)"
        return JobResult(
            True,
            summary,
            {"new": len(new), "published": published, "read": len(records), "undated": undated},
        )


def _time(record: LogRecord) -> datetime:
    assert record.time is not None
    return record.time
