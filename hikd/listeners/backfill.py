"""Backfill: the alarms that happened while hikd could not hear a device.

A device is "deaf" from the moment its alert stream may have broken (the library's
reconnect episode, arming lost or refused, the session offline; hikd itself down since the
last time it heard the device, kept in ``state.sqlite``) until it is armed again. After
each such gap this worker reads the device's log for the gap's window
(NET_DVR_FindDVRLog_V30, seed 5.31.14) and publishes every alarm the log has that did not
arrive live, marked ``attributes.backfilled``, with the device's time, then one ``backfill``
health event for the gap (`backfill_gap`).

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

import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from hikd.events import Event
from hikd.listeners.backfill_devices import (
    JOB,
    Gap,
    Watched,
    heard_key,
    heard_record,
    recall,
)
from hikd.listeners.backfill_gap import read_gap
from hikd.listeners.backfill_heard import HeardFile, with_heard
from hikd.listeners.log_alarms import Live, match_class

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

    # -- one gap (hikd.listeners.backfill_gap) -----------------------------------------
    def _backfill(self, name: str, device: Watched, gap: Gap) -> bool | None:
        """Read the log for the gap and publish what was missed. False: the search failed,
        try again; None: the device is not online."""
        session = self._sessions().get(name)
        if session is None or session.state != "online" or session.user_id is None:
            return None

        def live_alarms() -> list[Live]:
            with self._lock:  # the decoder thread appends to them
                return list(device.live)

        return read_gap(
            session,
            device,
            gap,
            publish=self._publish,
            state=self.state,
            tolerance_s=self.tolerance_s,
            live_alarms=live_alarms,
        )
