"""The alarms in a device's log (NET_DVR_LOG_V30 types, guide chapter 6.5) as hikd alarms.

Over ISAPI the library maps the entry's ``<metaId>`` path to major/minor types with its own
table (``Alarm/alarmIn``, ``motionStart``/``motionStop``, ``hideStart``, ``vcaStart``/
``vcaStop``, ``Exception/videoLost``, ...) and takes the path's trailing number as the
channel (the alarm input for ``alarmIn``): ``log.hikvision.com/Alarm/motionStart/15``
(sdk-over-isapi.md part 2 §e; measured in tests/sim/test_device_log_alarms.py). Smart
events are logged as "VCA alarm" without their kind, so they come back as
``smart_detection`` and match any live smart event of the channel.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from hikd.events import DeviceRef, Event
from hikd.sdk.device_log import LogRecord

Edge = Literal["start", "stop", "pulse"]

MAJOR_ALARM = 1
MAJOR_EXCEPTION = 2

LOG_ALARMS: dict[tuple[int, int], tuple[str, Edge]] = {
    (MAJOR_ALARM, 0x01): ("io", "pulse"),  # MINOR_ALARM_IN (no "alarm input ended")
    (MAJOR_ALARM, 0x03): ("motion", "start"),  # MINOR_MOTDET_START
    (MAJOR_ALARM, 0x04): ("motion", "stop"),  # MINOR_MOTDET_STOP
    (MAJOR_ALARM, 0x05): ("tamper", "start"),  # MINOR_HIDE_ALARM_START
    (MAJOR_ALARM, 0x06): ("tamper", "stop"),  # MINOR_HIDE_ALARM_STOP
    (MAJOR_ALARM, 0x07): ("smart_detection", "start"),  # MINOR_VCA_ALARM_START
    (MAJOR_ALARM, 0x08): ("smart_detection", "stop"),  # MINOR_VCA_ALARM_STOP
    (MAJOR_EXCEPTION, 0x21): ("video_loss", "pulse"),  # MINOR_VI_LOST
}
"""(dwMajorType, dwMinorType) -> (hikd type, what the entry marks)."""

SMART_TYPES = frozenset(
    {
        "smart_detection",
        "line_crossing",
        "intrusion",
        "region_entrance",
        "region_exit",
        "loitering",
        "people_gathering",
        "fast_moving",
        "parking",
        "unattended_baggage",
        "object_removal",
        "face_detection",
        "scene_change",
        "defocus",
        "audio_exception",
    }
)
"""Live types a log's "VCA alarm" entry may stand for."""


def match_class(event_type: str) -> str:
    """What a live alarm and a log entry must share to be the same alarm."""
    return "smart" if event_type in SMART_TYPES else event_type


def is_alarm_entry(record: LogRecord) -> bool:
    """An entry the log writes for an alarm (any alarm minor, mapped or not)."""
    return record.major == MAJOR_ALARM or (record.major, record.minor) in LOG_ALARMS


@dataclass(frozen=True, slots=True)
class LogAlarm:
    """One alarm read from the log: a start with its stop where the log has both."""

    type: str
    channel: int | None
    alarm_input: int | None
    start: LogRecord
    stop: LogRecord | None
    start_id: str
    """Identity of the start entry in the log (the log has no entry ids)."""
    stop_id: str | None

    @property
    def time(self) -> datetime:
        assert self.start.time is not None
        return self.start.time

    @property
    def end(self) -> datetime:
        record = self.stop or self.start
        assert record.time is not None
        return record.time

    @property
    def where(self) -> int | None:
        """The channel, or the alarm input for io."""
        return self.alarm_input if self.type == "io" else self.channel


def backfilled_events(alarm: LogAlarm, device: DeviceRef) -> tuple[Event, Event | None]:
    """The events of an alarm read from the log, marked ``backfilled``: its start (a
    pulse when the log has no stop) and its stop, which names the start's event id."""
    attributes: dict[str, Any] = {"backfilled": True, "log_type": alarm.start.minor_name}
    if alarm.alarm_input is not None and alarm.type == "io":
        attributes["alarm_input"] = alarm.alarm_input
    channel = None if alarm.type == "io" else alarm.channel
    first = Event(
        kind="alarm",
        type=alarm.type,
        state="start" if alarm.stop is not None else "pulse",
        device=device,
        channel=channel,
        time=alarm.time,
        attributes=attributes,
    )
    if alarm.stop is None or alarm.stop_id is None:
        return first, None
    stop = Event(
        kind="alarm",
        type=alarm.type,
        state="stop",
        device=device,
        channel=channel,
        time=alarm.end,
        attributes={**attributes, "log_type": alarm.stop.minor_name, "start_id": first.id},
    )
    return first, stop


def _entry_base(record: LogRecord) -> str:
    assert record.time is not None
    return (
        f"{record.time.replace(tzinfo=None).isoformat()}|{record.major}|{record.minor}"
        f"|{record.channel}|{record.alarm_input}"
    )


def log_alarms(records: list[LogRecord]) -> tuple[list[LogAlarm], int]:
    """The alarms in ``records`` (one search, whole seconds at both ends, so the identity
    of an entry is the same in every search that holds its second), and how many stops
    had no start in the window (their start was before it: nothing to publish)."""
    dated = sorted((r for r in records if r.time is not None), key=_time)
    seen: Counter[str] = Counter()
    open_starts: dict[tuple[str, int | None], tuple[LogRecord, str]] = {}
    alarms: list[LogAlarm] = []
    stray_stops = 0
    for record in dated:
        mapped = LOG_ALARMS.get((record.major, record.minor))
        if mapped is None:
            continue
        base = _entry_base(record)
        seen[base] += 1
        ident = f"{base}#{seen[base]}"
        type_, edge = mapped
        channel = record.channel or None
        alarm_input = record.alarm_input or None
        key = (type_, alarm_input if type_ == "io" else channel)
        if edge == "stop":
            opened = open_starts.pop(key, None)
            if opened is None:
                stray_stops += 1
                continue
            start, start_id = opened
            alarms.append(LogAlarm(type_, channel, alarm_input, start, record, start_id, ident))
            continue
        if edge == "start":
            earlier = open_starts.pop(key, None)
            if earlier is not None:  # started again without a stop: the first stays a pulse
                alarms.append(
                    LogAlarm(type_, channel, alarm_input, earlier[0], None, earlier[1], None)
                )
            open_starts[key] = (record, ident)
            continue
        alarms.append(LogAlarm(type_, channel, alarm_input, record, None, ident, None))
    for (type_, _where), (record, ident) in open_starts.items():
        alarms.append(
            LogAlarm(
                type_, record.channel or None, record.alarm_input or None, record, None, ident, None
            )
        )
    alarms.sort(key=lambda a: a.time)
    return alarms, stray_stops


Live = tuple[str, int | None, float, bool]
"""A live alarm: (match class, channel or alarm input, device time in POSIX seconds, re-sent)."""


def heard_live(alarms: list[LogAlarm], live: list[Live], tolerance_s: float) -> list[bool]:
    """Which of ``alarms`` arrived live. Each live alarm stands for one log entry at most, of
    its kind and channel: exact seconds pair up first, then one second apart, ... up to the
    tolerance, so a busy channel's live alarms cannot hide a missed one next to them; last,
    an entry with a stop takes a live alarm inside its span (a device that logs one start
    per motion episode while the stream repeats it every second)."""
    times: dict[tuple[str, int | None], list[float]] = {}
    for kind, where, at, _resent in live:
        times.setdefault((kind, where), []).append(at)
    wanted: dict[tuple[str, int | None], list[int]] = {}
    for index, alarm in enumerate(alarms):
        wanted.setdefault((match_class(alarm.type), alarm.where), []).append(index)
    heard = [False] * len(alarms)
    for key, indices in wanted.items():
        free = sorted(times.get(key, []))
        if not free:
            continue
        for distance in range(int(tolerance_s) + 1):
            for index in indices:
                if not heard[index]:
                    at = alarms[index].time.timestamp()
                    heard[index] = _take(free, at - distance - 0.5, at + distance + 0.5)
        for index in indices:
            alarm = alarms[index]
            if not heard[index] and alarm.stop is not None:
                heard[index] = _take(free, alarm.time.timestamp(), alarm.end.timestamp())
    return heard


def _take(free: list[float], low: float, high: float) -> bool:
    """Remove one time within [low, high] from the sorted ``free``; False if none."""
    at = bisect.bisect_left(free, low)
    if at < len(free) and free[at] <= high:
        del free[at]
        return True
    return False


def _time(record: LogRecord) -> datetime:
    assert record.time is not None
    return record.time
