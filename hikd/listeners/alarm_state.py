"""Start/stop derivation: devices repeat an active alarm about once a second and often
never say it ended. `AlarmStateTracker` turns that stream into one ``start`` when an alarm
begins and one ``stop`` when it ends, the way a person reads it ("motion on camera 3 from
10:02:11 to 10:02:40").

An alarm is identified by device, channel, type and, where the event has one, its rule /
region id, alarm input or disk number (two line-crossing rules on one camera are two
alarms). A ``stop`` comes from the device (``ended_by: "device"``) or, when the device
has repeated nothing for the type's hold time, from `expire` (``ended_by:
"hold_timeout"``).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from hikd.events import Event, State, new_event_id, utc_now

DEFAULT_HOLD_S = 10.0
"""Hold time when the mapping has no "default": long enough to bridge the ~1 s repeats
(and a missed one or two), short enough that a stuck alarm clears soon."""

_SUB_KEYS = ("rule_id", "region_id", "alarm_input", "disk")


class AlarmKey(NamedTuple):
    device: str
    channel: int | None
    type: str
    sub: str | None
    """Rule or region id, alarm input or disk number, as ``"rule_id=3"``; None if none."""


def alarm_key(event: Event) -> AlarmKey:
    sub = None
    for name in _SUB_KEYS:
        value = event.attributes.get(name)
        if value is not None and value != "":
            sub = f"{name}={value}"
            break
    return AlarmKey(event.device.name, event.channel, event.type, sub)


@dataclasses.dataclass(slots=True)
class _Active:
    start: Event
    last: Event
    last_seen: float
    """Tracker clock (monotonic) of the last start."""
    hold: float
    """The hold time when it started: a reload that changes ``[alarms]`` applies to new
    alarms, not to those already on."""


_Due = tuple[float, int, AlarmKey, _Active, float]
"""When an alarm's hold runs out, a tie-breaker, the alarm, and its last repeat then."""


class AlarmStateTracker:
    """Feed it decoded events in arrival order; publish what it returns.

    Thread-safe: the decoder thread feeds, and calls `expire` once `next_expiry` has
    passed; the MQTT sink reads `active` on reconnect."""

    def __init__(
        self,
        hold_s: Mapping[str, float],
        pulse_types: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hold = dict(hold_s)
        self._default_hold = float(self._hold.get("default", DEFAULT_HOLD_S))
        self._pulse_types = frozenset(pulse_types)
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[AlarmKey, _Active] = {}
        # When each open alarm's hold runs out, soonest first: `expire` and `next_expiry`
        # look at the due ones only (not every open alarm), so the decoder can end each
        # alarm on time instead of a pass over all of them every 0.25 s, whose burst of
        # stops delayed the alarms queued behind it by up to 90 ms (bench_delivery at
        # 1,000/s). An entry is stale once its alarm has ended or repeated (a newer one).
        self._due: list[_Due] = []
        self._due_seq = itertools.count()
        self.counters: dict[str, int] = {
            "starts": 0,
            "repeats": 0,
            "stops_by_device": 0,
            "stops_by_hold": 0,
            "stops_without_start": 0,
            "pulses": 0,
        }

    def hold_for(self, type_: str) -> float:
        return float(self._hold.get(type_, self._default_hold))

    def retune(self, hold_s: Mapping[str, float], pulse_types: Collection[str]) -> None:
        """New hold times and one-shot types (a reload changed ``[alarms]``): for the alarms
        that start from now on; the ones on keep the hold they started with."""
        with self._lock:
            self._hold = dict(hold_s)
            self._default_hold = float(self._hold.get("default", DEFAULT_HOLD_S))
            self._pulse_types = frozenset(pulse_types)

    def feed(self, event: Event) -> list[Event]:
        """The transitions `event` causes: [start], [stop], [pulse], [] for a repeat, or
        [stop, start] when an alarm comes back after its hold ran out unnoticed."""
        if event.kind != "alarm":
            return [event]
        with self._lock:
            now = self._clock()
            if event.type in self._pulse_types:
                if event.state == "stop":
                    # A one-shot type has nothing to end.
                    self.counters["stops_without_start"] += 1
                    return []
                self.counters["pulses"] += 1
                return [event if event.state == "pulse" else _changed(event, state="pulse")]
            if event.state == "pulse":
                self.counters["pulses"] += 1
                return [event]
            key = alarm_key(event)
            if event.state == "start":
                return self._start(key, event, now)
            return self._stop(key, event)

    def _start(self, key: AlarmKey, event: Event, now: float) -> list[Event]:
        active = self._active.get(key)
        if active is not None:
            if now - active.last_seen <= active.hold:
                active.last = event
                active.last_seen = now
                self._note_due(key, active)
                self.counters["repeats"] += 1
                if event.files:
                    # A repeat that brings pictures is not swallowed: the pictures reach
                    # the sinks as a pulse tied to the open alarm.
                    return [
                        _changed(
                            event,
                            state="pulse",
                            attributes={**event.attributes, "repeat_of": active.start.id},
                        )
                    ]
                return []
            # Held too long without a repeat and `expire` has not run yet: close the old
            # alarm before opening the new one.
            out = [self._timeout_stop(active)]
        else:
            out = []
        self._active[key] = _Active(event, event, now, self.hold_for(key.type))
        self._note_due(key, self._active[key])
        self.counters["starts"] += 1
        out.append(event)
        return out

    def _stop(self, key: AlarmKey, event: Event) -> list[Event]:
        keys = [key] if key in self._active else []
        if not keys and key.sub is None:
            # A stop that names no rule/region ends every alarm of its channel and type.
            keys = [k for k in self._active if k[:3] == key[:3]]
        if not keys:
            self.counters["stops_without_start"] += 1
            return []
        out = []
        for k in keys:
            active = self._active.pop(k)
            self.counters["stops_by_device"] += 1
            attributes = {**active.last.attributes, **event.attributes}
            attributes.update(_ended(active.start, event.time, "device"))
            if len(keys) > 1 or k != key:
                # One device stop closing several alarms: each stop is its own event.
                stop = _changed(
                    event, id=new_event_id(), attributes={**attributes, **_sub_attrs(k)}
                )
            else:
                stop = _changed(event, attributes=attributes)
            out.append(stop)
        return out

    def _timeout_stop(self, active: _Active) -> Event:
        self.counters["stops_by_hold"] += 1
        last = active.last
        attributes = {**last.attributes, **_ended(active.start, last.time, "hold_timeout")}
        return Event(
            kind="alarm",
            type=last.type,
            state="stop",
            device=last.device,
            channel=last.channel,
            time=last.time,
            received=utc_now(),
            attributes=attributes,
        )

    def expire(self, now: float | None = None) -> list[Event]:
        """Stops for alarms the device has not repeated within their hold time. The stop's
        time is the device time of the last repeat."""
        with self._lock:
            now = self._clock() if now is None else now
            out = []
            due = self._due
            while due:
                _, _, key, active, seen = due[0]
                if not self._current(due[0]):
                    heapq.heappop(due)
                elif now - seen > active.hold:
                    heapq.heappop(due)
                    out.append(self._timeout_stop(self._active.pop(key)))
                else:
                    break
            return out

    def _current(self, entry: _Due) -> bool:
        """False once the entry's alarm has ended, or repeated since (a newer entry)."""
        _, _, key, active, seen = entry
        return self._active.get(key) is active and active.last_seen == seen

    def _note_due(self, key: AlarmKey, active: _Active) -> None:
        due = self._due
        if len(due) > 2 * len(self._active) + 64:  # repeats left many stale entries
            due[:] = [entry for entry in due if self._current(entry)]
            heapq.heapify(due)
        deadline = active.last_seen + active.hold
        heapq.heappush(due, (deadline, next(self._due_seq), key, active, active.last_seen))

    def end_device(self, device: str, ended_by: str) -> list[Event]:
        """Stops, now, for every alarm of `device` that is on (it was removed from the
        configuration: nothing will repeat or end them)."""
        with self._lock:
            keys = [k for k in self._active if k.device == device]
            return [ended_now(self._active.pop(k).start, ended_by) for k in keys]

    def active(self) -> list[AlarmKey]:
        """The alarms on right now (for republishing states after a reconnect)."""
        with self._lock:
            return list(self._active)

    def active_events(self) -> dict[AlarmKey, Event]:
        """The start event of each alarm on right now."""
        with self._lock:
            return {k: a.start for k, a in self._active.items()}

    def next_expiry(self) -> float | None:
        """Clock time at which `expire` next has something to do, None when nothing is on."""
        with self._lock:
            due = self._due
            while due and not self._current(due[0]):
                heapq.heappop(due)
            return due[0][0] if due else None


def _changed(
    event: Event,
    *,
    state: State | None = None,
    attributes: dict[str, Any] | None = None,
    id: str | None = None,
) -> Event:
    """`dataclasses.replace` for the fields the tracker changes, at a third of its cost
    (it runs for every stop)."""
    return Event(
        kind=event.kind,
        type=event.type,
        state=event.state if state is None else state,
        device=event.device,
        channel=event.channel,
        time=event.time,
        received=event.received,
        attributes=event.attributes if attributes is None else attributes,
        raw=event.raw,
        files=event.files,
        id=event.id if id is None else id,
    )


def _ended(start: Event, end: datetime, ended_by: str) -> dict[str, Any]:
    try:
        duration: float | None = round(max(0.0, (end - start.time).total_seconds()), 3)
    except TypeError:  # a naive time slipped in: no duration rather than no stop
        duration = None
    return {
        "started": start.time.isoformat(),
        "start_id": start.id,
        "duration_s": duration,
        "ended_by": ended_by,
    }


def _sub_attrs(key: AlarmKey) -> dict[str, Any]:
    if key.sub is None:
        return {}
    name, _, value = key.sub.partition("=")
    return {name: int(value) if value.lstrip("-").isdigit() else value}


def restart_stop(start: Event) -> Event:
    """The stop of an alarm that was on when its device host crashed (``ended_by:
    "restart"``): the new host knows nothing of it, and a state left ON would stay on."""
    return ended_now(start, "restart")


def ended_now(start: Event, ended_by: str) -> Event:
    """The stop, now, of the alarm `start` opened, that nothing else will end."""
    now = utc_now()
    return Event(
        kind="alarm",
        type=start.type,
        state="stop",
        device=start.device,
        channel=start.channel,
        time=now,
        received=now,
        attributes={**start.attributes, **_ended(start, now, ended_by)},
    )
