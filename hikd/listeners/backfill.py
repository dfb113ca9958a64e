"""Backfill: the alarms that happened while hikd could not hear a device.

A device is "deaf" from the moment its alert stream may have broken (the library's
reconnect episode, arming lost or refused, the session offline; hikd itself down since the
last time it heard the device, kept in ``state.sqlite``) until it is armed again. After
each such gap this worker reads the device's log for the gap's window
(NET_DVR_FindDVRLog_V30, seed 5.31.14) and publishes every alarm the log has that did not
arrive live, marked ``attributes.backfilled``, with the device's time, then one ``backfill``
health event for the gap.

Never twice: an entry is skipped when a live alarm of its kind and channel (re-sent ones
included) has a device time within ``TOLERANCE_S`` of it; each live alarm stands for one
entry at most (`heard_live`). Every published entry is recorded in the state database,
so an overlapping later gap skips it. The record of live alarms is saved once a second;
what a device host stored since is noted after each commit (`backfill_heard`), so the
alarms of a killed host's last second are not read back as missed.

Everything runs on this worker's thread: the decoder thread and the publishers only
append to a deque or a queue; the log search never holds up arming.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hikd.devices.capabilities.device_log import device_log
from hikd.events import Event, health
from hikd.listeners.backfill_devices import (
    JOB,
    Gap,
    Watched,
    heard_key,
    heard_record,
    recall,
)
from hikd.listeners.backfill_heard import HeardFile, with_heard
from hikd.listeners.log_alarms import (
    Live,
    LogAlarm,
    backfilled_events,
    heard_live,
    is_alarm_entry,
    log_alarms,
    match_class,
)
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.config import DeviceConfig
    from hikd.devices.session import DeviceSession
    from hikd.state import StateStore

log = structlog.get_logger("hikd.backfill")

LOOKBACK_S = 40.0
"""How long before a reported break the stream may already have been silent: the library
notices a dead stream only after 35 s without data (sdk-over-isapi.md part 1 §2)."""
SETTLE_S = 2.0
"""Wait after re-arming before reading the log: re-sent alarms and alarms in flight arrive
live first, and the device has written its log."""
TOLERANCE_S = 3.0
"""A live alarm and a log entry this close in device time are the same alarm."""
MAX_ENTRIES = 100_000
"""Log entries read per gap at most."""
RETRY_S = 30.0
TRIES = 3
_HEARD_EVERY_S = 1.0

DEAF = frozenset(
    {"offline", "arming_failed", "arming_lost", "arming_stalled", "relogin", "arming_reconnecting"}
)
"""Health types that say the device may have raised alarms nobody heard (start states)."""
HEARING = frozenset({"armed", "rearmed"})


class Backfill:
    def __init__(
        self,
        devices: list[DeviceConfig],
        sessions: Callable[[], dict[str, DeviceSession]],
        publish: Callable[[Event], None],
        state: StateStore,
        *,
        settle_s: float = SETTLE_S,
        lookback_s: float = LOOKBACK_S,
        tolerance_s: float = TOLERANCE_S,
        heard: Path | None = None,
    ) -> None:
        """`heard`: the file of the alarms a device host stored since the last save."""
        self._devices = {d.name: Watched(d) for d in devices if d.backfill and d.arm}
        self._heard = HeardFile(heard) if heard is not None else None
        self._sessions = sessions
        self._publish = publish
        self.state = state
        self.settle_s = settle_s
        self.lookback_s = lookback_s
        self.tolerance_s = tolerance_s
        self._queue: queue.SimpleQueue[tuple[str, str, datetime] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._records = threading.Lock()
        """Held while a device's record in the state database is written or deleted, so a
        reload's removal is never undone by a save on the worker."""
        self._thread: threading.Thread | None = None
        self._closing = False
        self._hearing_at_close: list[str] = []
        self._closing_at = datetime.now(UTC)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        for name, device in self._devices.items():
            recall(self.state, name, device)
        if self._heard is not None:
            self._take_heard(self._heard)
        self._thread = threading.Thread(target=self._run, name="backfill", daemon=True)
        self._thread.start()

    def _take_heard(self, heard: HeardFile) -> None:
        """Add what the last run stored after its last save to the record (a device never
        heard before has none: no gap), save that, and start the file afresh."""
        for name, entries in heard.take().items():
            device = self._devices.get(name)
            if device is None or device.deaf_since is None:
                continue
            if (live := with_heard(device.live, entries)) is not None:
                device.live = live
                self._save_heard(name, device.deaf_since)
        heard.begin()

    def stored(self, batch: Sequence[Event]) -> None:
        """After `batch` is stored in the outbox, on the thread that stored it."""
        if self._heard is not None:
            self._heard.note(batch, self._devices)

    def devices_changed(self, devices: list[DeviceConfig]) -> None:
        """A reload: these are the devices from now on (before the added ones log in). An
        added one is read back as at a start (from when an earlier run last heard it, if it
        did); a changed one keeps what was heard, with its new settings; a removed or
        disabled one is dropped with its record, so the time it spent out of the
        configuration is not read back should it come back."""
        wanted = {d.name: d for d in devices if d.backfill and d.arm}
        before = self._devices
        now: dict[str, Watched] = {}
        for name, config in wanted.items():
            device = now[name] = before.get(name) or Watched(config)
            if name in before:
                device.config = config
            else:
                recall(self.state, name, device)
        with self._lock:
            self._devices = now
        with self._records:
            for name in before.keys() - now.keys():
                self.state.delete(JOB, heard_key(name))

    def closing(self) -> None:
        """hikd is stopping: what happens from now on is no gap of the device's."""
        with self._lock:
            self._closing = True
            self._closing_at = datetime.now(UTC)
            self._hearing_at_close = [n for n, d in self._devices.items() if d.hearing]

    def stop(self, timeout: float = 2.0) -> None:
        """After the alarm channels are closed and the decoder drained: note until when each
        device was heard, so the next start knows the gap of hikd's own downtime."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        for name, device in self._devices.items():
            # A gap not read back yet (or still open) is the next run's: it starts there.
            starts = [g.start for g in device.gaps]
            if device.deaf_since is not None:
                starts.append(device.deaf_since)
            if starts:
                self._save_heard(name, min(starts))
            elif name in self._hearing_at_close:
                # Heard until the channels began to close; what still arrived after that
                # is in the saved list of recent live alarms.
                self._save_heard(name, self._closing_at)
        if self._heard is not None:
            self._heard.close(remove=True)  # all of it is saved

    # -- what other threads call: note and return ----------------------------------------
    def watch(self, event: Event) -> None:
        """Every decoded alarm, on the decoder thread."""
        device = self._devices.get(event.device.name)
        if device is None or event.kind != "alarm" or event.state == "stop":
            return
        where = event.attributes.get("alarm_input") if event.type == "io" else event.channel
        resent = bool(event.attributes.get("resent"))
        with self._lock:
            device.live.append((match_class(event.type), where, event.time.timestamp(), resent))
            device.offset = event.time.tzinfo
            if not resent:
                device.skew_s = (event.received - event.time).total_seconds()

    def observe(self, event: Event) -> None:
        """Every published event: health transitions go to the worker."""
        if event.kind != "health" or event.device.name not in self._devices:
            return
        if event.type in HEARING:
            self._queue.put(("hearing", event.device.name, event.received))
        elif event.type in DEAF and event.state != "stop":
            self._queue.put(("deaf", event.device.name, event.received))

    # -- the worker --------------------------------------------------------------------
    def _run(self) -> None:
        next_save = time.monotonic() + _HEARD_EVERY_S
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                item = ("tick", "", datetime.now(UTC))
            if item is None:
                return
            try:
                self._transition(*item)
                self._run_due()
                if time.monotonic() >= next_save:
                    next_save = time.monotonic() + _HEARD_EVERY_S
                    self._save_all_heard()
                    self._forget_old()
            except Exception:
                log.exception("backfill worker error")

    def _transition(self, what: str, name: str, at: datetime) -> None:
        device = self._devices.get(name)
        with self._lock:
            if device is None or self._closing:
                return
        if what == "deaf":
            device.hearing = False
            if device.deaf_since is None:
                device.deaf_since = at - timedelta(seconds=self.lookback_s)
                # Should hikd stop before the device is heard again, the next run starts
                # the gap here, not at the last periodic save.
                self._save_heard(name, device.deaf_since)
        elif what == "hearing":
            device.hearing = True
            if device.deaf_since is not None:
                end = at + timedelta(seconds=1)
                # Read when the live alarms of the search's margin after the gap are in.
                due = time.monotonic() + self.settle_s + self.tolerance_s + 1
                device.gaps.append(Gap(device.deaf_since, end, due))
                device.deaf_since = None
            self._save_heard(name, at)

    def _run_due(self) -> None:
        now = time.monotonic()
        for name, device in self._devices.items():
            for gap in [g for g in device.gaps if g.due <= now]:
                # The gap stays listed while it is read: a stop meanwhile keeps it.
                done = self._backfill(name, device, gap)
                if done is None:  # the device is offline now: later, no try used up
                    gap.due = now + RETRY_S
                elif done or gap.tries + 1 >= TRIES:
                    device.gaps.remove(gap)
                else:
                    gap.tries += 1
                    gap.due = now + RETRY_S

    def _forget_old(self) -> None:
        """Drop live alarms no gap can reach any more (the record stays small)."""
        now = datetime.now(UTC)
        for device in self._devices.values():
            starts = [now, *(g.start for g in device.gaps)]
            if device.deaf_since is not None:
                starts.append(device.deaf_since)
            reach = self.lookback_s + 2 * self.tolerance_s + device.skew_s + 10
            cutoff = min(starts).timestamp() - reach
            with self._lock:
                while device.live and device.live[0][2] < cutoff:
                    device.live.popleft()

    def _save_all_heard(self) -> None:
        now = datetime.now(UTC)
        for name, device in self._devices.items():
            if device.hearing:
                self._save_heard(name, now)
            elif self._heard is not None:
                # Deaf, or a gap not read back yet: from its start, with the live alarms
                # heard since (the file forgets them at the next save).
                starts = [g.start for g in device.gaps]
                if device.deaf_since is not None:
                    starts.append(device.deaf_since)
                if starts:
                    self._save_heard(name, min(starts))
        if self._heard is not None:
            self._heard.rotate()

    def _save_heard(self, name: str, when: datetime) -> None:
        device = self._devices.get(name)
        if device is None:  # removed by a reload meanwhile
            return
        with self._lock:  # the decoder thread appends to its live alarms
            value = heard_record(device, when, self.tolerance_s)
        with self._records:
            if name in self._devices:
                self.state.put(JOB, heard_key(name), value)

    # -- one gap -----------------------------------------------------------------------
    def _backfill(self, name: str, device: Watched, gap: Gap) -> bool | None:
        """Read the log for the gap and publish what was missed. False: the search failed,
        try again; None: the device is not online."""
        session = self._sessions().get(name)
        if session is None or session.state != "online" or session.user_id is None:
            return None
        zone = device.config.tzinfo() or device.offset or UTC
        max_h = device.config.backfill_max_h
        # The gap is in hikd's clock; the log in the device's: shift by the skew, and
        # widen by the tolerance for the skew's own second of uncertainty.
        skew = timedelta(seconds=device.skew_s + self.tolerance_s)
        start = max(gap.start, gap.end - timedelta(hours=max_h)) - skew
        start = start.astimezone(zone).replace(microsecond=0)
        end = (gap.end - timedelta(seconds=device.skew_s)).astimezone(zone)
        end = end.replace(microsecond=0) + timedelta(seconds=1)
        resent = self._resent_between(device, start, end)
        report: dict[str, Any] = {
            "gap_start": start.isoformat(),
            "gap_end": end.isoformat(),
            "resent": resent,
            "backfilled": 0,
        }
        if device.unavailable:
            self._publish(health(session.device, "backfill", **report, skipped="no alarm log"))
            return True
        # The search reaches a tolerance further on both sides: the live alarms near the
        # window's ends then meet their own log entries, and none stands in for a missed one.
        margin = timedelta(seconds=self.tolerance_s + 1)
        search = device_log(session, start - margin, end + margin, zone)
        try:
            records = list(islice(search, MAX_ENTRIES))
        except SdkError as exc:
            log.warning("device log search for backfill failed", device=name, error=str(exc))
            self._publish(
                health(session.device, "backfill_failed", **report, code=exc.code, reason=str(exc))
            )
            return exc.code == 23  # 23: the device has no log search; trying again won't help
        finally:
            search.close()
        alarms, stray_stops = log_alarms(records)
        # The log names a camera as the device does: hikd's number, as live alarms have it.
        alarms = [_renumbered(alarm, session) for alarm in alarms]
        live = self._live_between(device, start - margin, end + margin)
        inside = [e for e in live if start.timestamp() <= e[2] <= end.timestamp()]
        if inside and not any(is_alarm_entry(r) for r in records):
            # Alarms arrived live inside the window, yet the log has none of them.
            self._mark_unavailable(session, name, device, report)
            return True
        heard = heard_live(alarms, live, self.tolerance_s)
        published = skipped_live = already = 0
        for alarm, was_heard in zip(alarms, heard, strict=True):
            if not start <= alarm.time <= end:
                continue
            if was_heard:
                skipped_live += 1
            elif self.state.is_done(JOB, f"{name}|{alarm.start_id}"):
                already += 1
            else:
                self._publish_alarm(session, name, alarm)
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
        self._publish(health(session.device, "backfill", **report))
        return True

    def _publish_alarm(self, session: DeviceSession, name: str, alarm: LogAlarm) -> None:
        first, stop = backfilled_events(alarm, session.device)
        self._publish(first)
        self.state.mark_done(JOB, f"{name}|{alarm.start_id}", {"event": first.id})
        if stop is not None:
            self._publish(stop)
            self.state.mark_done(JOB, f"{name}|{alarm.stop_id}", {"start": first.id})

    def _mark_unavailable(
        self, session: DeviceSession, name: str, device: Watched, report: dict[str, Any]
    ) -> None:
        device.unavailable = True  # until hikd restarts: then it looks again
        reason = (
            "the device's log has no alarm entries although alarms arrived live: backfill "
            "is off for this device; enable alarm logging on the device (or set "
            "backfill = false to silence this)"
        )
        log.warning("backfill unavailable", device=name, hint=reason)
        self._publish(health(session.device, "backfill_unavailable", **report, reason=reason))

    # -- the live record ---------------------------------------------------------------
    def _live_between(self, device: Watched, start: datetime, end: datetime) -> list[Live]:
        low = start.timestamp() - self.tolerance_s
        high = end.timestamp() + self.tolerance_s
        with self._lock:
            entries = list(device.live)
        return [e for e in entries if low <= e[2] <= high]

    def _resent_between(self, device: Watched, start: datetime, end: datetime) -> int:
        return sum(1 for e in self._live_between(device, start, end) if e[3])


def _renumbered(alarm: LogAlarm, session: DeviceSession) -> LogAlarm:
    if alarm.channel is None or alarm.type == "io":
        return alarm
    return dataclasses.replace(alarm, channel=session.channels.from_alert(alarm.channel))
