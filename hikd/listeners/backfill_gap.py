"""Backfill of one gap (`hikd.listeners.backfill`): read the device's log for the window the
device was not heard (NET_DVR_FindDVRLog_V30, seed 5.31.14), publish every alarm it has that
did not arrive live, marked ``attributes.backfilled``, then one ``backfill`` health event
that says what was read, skipped and published.

A log without alarm entries although alarms arrived live in the window means the device does
not log alarms: backfill is then off for it until hikd restarts (``backfill_unavailable``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

import structlog

from hikd.devices.capabilities.device_log import device_log
from hikd.events import Event, health
from hikd.listeners.backfill_devices import JOB, Gap, Watched
from hikd.listeners.log_alarms import (
    Live,
    LogAlarm,
    backfilled_events,
    heard_live,
    is_alarm_entry,
    log_alarms,
)
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession
    from hikd.state import StateStore

log = structlog.get_logger("hikd.backfill")

MAX_ENTRIES = 100_000
"""Log entries read per gap at most."""


def read_gap(
    session: DeviceSession,
    device: Watched,
    gap: Gap,
    *,
    publish: Callable[[Event], None],
    state: StateStore,
    tolerance_s: float,
    live_alarms: Callable[[], list[Live]],
) -> bool:
    """Read the log for the gap and publish what was missed. False: the search failed, try
    again. `live_alarms`: a copy of the device's record of live alarms, taken now."""
    name = device.config.name
    zone = device.config.tzinfo() or device.offset or UTC
    max_h = device.config.backfill_max_h
    # The gap is in hikd's clock; the log in the device's: shift by the skew, and
    # widen by the tolerance for the skew's own second of uncertainty.
    skew = timedelta(seconds=device.skew_s + tolerance_s)
    start = max(gap.start, gap.end - timedelta(hours=max_h)) - skew
    start = start.astimezone(zone).replace(microsecond=0)
    end = (gap.end - timedelta(seconds=device.skew_s)).astimezone(zone)
    end = end.replace(microsecond=0) + timedelta(seconds=1)

    def live_between(low: datetime, high: datetime) -> list[Live]:
        first, last = low.timestamp() - tolerance_s, high.timestamp() + tolerance_s
        return [e for e in live_alarms() if first <= e[2] <= last]

    resent = sum(1 for e in live_between(start, end) if e[3])
    report: dict[str, Any] = {
        "gap_start": start.isoformat(),
        "gap_end": end.isoformat(),
        "resent": resent,
        "backfilled": 0,
    }
    if device.unavailable:
        publish(health(session.device, "backfill", **report, skipped="no alarm log"))
        return True
    # The search reaches a tolerance further on both sides: the live alarms near the
    # window's ends then meet their own log entries, and none stands in for a missed one.
    margin = timedelta(seconds=tolerance_s + 1)
    search = device_log(session, start - margin, end + margin, zone)
    try:
        records = list(islice(search, MAX_ENTRIES))
    except SdkError as exc:
        log.warning("device log search for backfill failed", device=name, error=str(exc))
        publish(health(session.device, "backfill_failed", **report, code=exc.code, reason=str(exc)))
        return exc.code == 23  # 23: the device has no log search; trying again won't help
    finally:
        search.close()
    alarms, stray_stops = log_alarms(records)
    # The log names a camera as the device does: hikd's number, as live alarms have it.
    alarms = [_renumbered(alarm, session) for alarm in alarms]
    live = live_between(start - margin, end + margin)
    inside = [e for e in live if start.timestamp() <= e[2] <= end.timestamp()]
    if inside and not any(is_alarm_entry(r) for r in records):
        # Alarms arrived live inside the window, yet the log has none of them.
        _mark_unavailable(session, device, report, publish)
        return True
    heard = heard_live(alarms, live, tolerance_s)
    published = skipped_live = already = 0
    for alarm, was_heard in zip(alarms, heard, strict=True):
        if not start <= alarm.time <= end:
            continue
        if was_heard:
            skipped_live += 1
        elif state.is_done(JOB, f"{name}|{alarm.start_id}"):
            already += 1
        else:
            _publish_alarm(session, name, alarm, publish, state)
            published += 1
    report.update(
        backfilled=published,
        heard_live=skipped_live,
        backfilled_before=already,
        log_entries=len(records),
        stops_without_start=stray_stops,
    )
    if len(records) >= MAX_ENTRIES:
        report["truncated"] = True
    log.info("backfill", device=name, **report)
    publish(health(session.device, "backfill", **report))
    return True


def _publish_alarm(
    session: DeviceSession,
    name: str,
    alarm: LogAlarm,
    publish: Callable[[Event], None],
    state: StateStore,
) -> None:
    first, stop = backfilled_events(alarm, session.device)
    publish(first)
    state.mark_done(JOB, f"{name}|{alarm.start_id}", {"event": first.id})
    if stop is not None:
        publish(stop)
        state.mark_done(JOB, f"{name}|{alarm.stop_id}", {"start": first.id})


def _mark_unavailable(
    session: DeviceSession,
    device: Watched,
    report: dict[str, Any],
    publish: Callable[[Event], None],
) -> None:
    device.unavailable = True  # until hikd restarts: then it looks again
    reason = (
        "the device's log has no alarm entries although alarms arrived live: backfill "
        "is off for this device; enable alarm logging on the device (or set "
        "backfill = false to silence this)"
    )
    log.warning("backfill unavailable", device=device.config.name, hint=reason)
    publish(health(session.device, "backfill_unavailable", **report, reason=reason))


def _renumbered(alarm: LogAlarm, session: DeviceSession) -> LogAlarm:
    if alarm.channel is None or alarm.type == "io":
        return alarm
    return dataclasses.replace(alarm, channel=session.channels.from_alert(alarm.channel))
