"""Start/stop derivation from the repeated "active" stream devices send.

Time is injected (a clock the test advances), so hold timeouts are exact and the tests
never sleep."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from hikd.events import DeviceRef, Event, State, health
from hikd.listeners.alarm_state import AlarmKey, AlarmStateTracker

CAM = DeviceRef("cam")
T0 = datetime(2024, 3, 10, 10, 2, 11, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def ev(
    type_: str = "motion",
    state: State = "start",
    channel: int | None = 1,
    at: float = 0.0,
    device: DeviceRef = CAM,
    **attributes: Any,
) -> Event:
    return Event(
        kind="alarm",
        type=type_,
        state=state,
        device=device,
        channel=channel,
        time=T0 + timedelta(seconds=at),
        attributes=attributes,
    )


def tracker(clock: Clock, **hold: float) -> AlarmStateTracker:
    return AlarmStateTracker({"default": 5.0, **hold}, {"face_snap"}, clock=clock)


def test_repeated_actives_give_one_start() -> None:
    clock = Clock()
    t = tracker(clock)
    first = ev(at=0)
    assert t.feed(first) == [first]
    for i in range(1, 10):
        clock.advance(1)
        assert t.feed(ev(at=i)) == []
    assert t.active() == [AlarmKey("cam", 1, "motion", None)]
    assert t.counters["repeats"] == 9


def test_device_stop_ends_the_alarm_with_start_and_duration() -> None:
    clock = Clock()
    t = tracker(clock)
    start = ev(at=0)
    t.feed(start)
    clock.advance(1)
    t.feed(ev(at=1))
    clock.advance(1)
    stop_in = ev(state="stop", at=29)
    (stop,) = t.feed(stop_in)
    assert (stop.state, stop.type, stop.channel, stop.id) == ("stop", "motion", 1, stop_in.id)
    assert stop.attributes["ended_by"] == "device"
    assert stop.attributes["started"] == start.time.isoformat()
    assert stop.attributes["start_id"] == start.id
    assert stop.attributes["duration_s"] == 29.0
    assert t.active() == []


def test_missing_inactive_stops_after_hold() -> None:
    clock = Clock()
    t = tracker(clock)
    start = ev(at=0)
    t.feed(start)
    clock.advance(1)
    last = ev(at=3)
    t.feed(last)
    clock.advance(5)  # exactly the hold: not yet
    assert t.expire() == []
    assert t.next_expiry() == clock.now
    clock.advance(0.5)
    (stop,) = t.expire()
    assert (stop.state, stop.type, stop.channel) == ("stop", "motion", 1)
    assert stop.attributes["ended_by"] == "hold_timeout"
    assert stop.time == last.time  # the last-seen device time
    assert stop.attributes["duration_s"] == 3.0
    assert stop.id not in (start.id, last.id)
    assert t.active() == [] and t.expire() == []
    assert t.next_expiry() is None


def test_expire_accepts_an_explicit_now() -> None:
    clock = Clock()
    t = tracker(clock)
    t.feed(ev())
    assert t.expire(now=clock.now + 4) == []
    assert len(t.expire(now=clock.now + 6)) == 1


def test_flapping_start_stop_start() -> None:
    clock = Clock()
    t = tracker(clock)
    assert [e.state for e in t.feed(ev(at=0))] == ["start"]
    clock.advance(1)
    assert [e.state for e in t.feed(ev(state="stop", at=1))] == ["stop"]
    clock.advance(1)
    assert [e.state for e in t.feed(ev(at=2))] == ["start"]
    clock.advance(1)
    assert [e.state for e in t.feed(ev(state="stop", at=3))] == ["stop"]
    assert t.counters["starts"] == 2 and t.counters["stops_by_device"] == 2


def test_stop_without_start_is_dropped_and_counted() -> None:
    t = tracker(Clock())
    assert t.feed(ev(state="stop")) == []
    assert t.counters["stops_without_start"] == 1


def test_hold_is_per_type() -> None:
    clock = Clock()
    t = tracker(clock, io=30.0)
    t.feed(ev("motion"))
    t.feed(ev("io", channel=None, alarm_input=1))
    clock.advance(10)
    assert [e.type for e in t.expire()] == ["motion"]
    clock.advance(15)
    assert t.expire() == []
    clock.advance(6)
    (stop,) = t.expire()
    assert (stop.type, stop.attributes["alarm_input"]) == ("io", 1)
    assert t.hold_for("io") == 30.0 and t.hold_for("tamper") == 5.0


def test_repeat_after_hold_without_expire_closes_then_reopens() -> None:
    clock = Clock()
    t = tracker(clock)
    t.feed(ev(at=0))
    clock.advance(60)
    out = t.feed(ev(at=60))
    assert [(e.state, e.attributes.get("ended_by")) for e in out] == [
        ("stop", "hold_timeout"),
        ("start", None),
    ]


def test_pulses_pass_and_one_shot_types_become_pulses() -> None:
    t = tracker(Clock())
    pulse = ev("vehicle", state="pulse")
    assert t.feed(pulse) == [pulse]
    snap = ev("face_snap", state="start")
    (out,) = t.feed(snap)
    assert (out.state, out.id, out.type) == ("pulse", snap.id, "face_snap")
    assert t.feed(ev("face_snap", state="stop")) == []
    assert t.active() == []


def test_health_events_pass_untouched() -> None:
    t = tracker(Clock())
    h = health(CAM, "online")
    assert t.feed(h) == [h]
    assert t.active() == []


def test_channels_devices_and_regions_are_independent() -> None:
    clock = Clock()
    t = tracker(clock)
    other = DeviceRef("cam2")
    assert len(t.feed(ev(channel=1))) == 1
    assert len(t.feed(ev(channel=2))) == 1
    assert len(t.feed(ev(channel=1, device=other))) == 1
    assert len(t.feed(ev("line_crossing", region_id=1))) == 1
    assert len(t.feed(ev("line_crossing", region_id=2))) == 1
    assert len(t.active()) == 5
    (stop,) = t.feed(ev(state="stop", channel=2))
    assert stop.channel == 2
    assert len(t.active()) == 4
    assert {k.sub for k in t.active() if k.type == "line_crossing"} == {
        "region_id=1",
        "region_id=2",
    }


def test_stop_naming_no_region_ends_every_region_of_that_channel_and_type() -> None:
    t = tracker(Clock())
    t.feed(ev("line_crossing", region_id=1))
    t.feed(ev("line_crossing", region_id=2))
    t.feed(ev("line_crossing", channel=2, region_id=1))
    stops = t.feed(ev("line_crossing", state="stop"))
    assert sorted(s.attributes["region_id"] for s in stops) == [1, 2]
    assert len({s.id for s in stops}) == 2
    assert t.active() == [AlarmKey("cam", 2, "line_crossing", "region_id=1")]


def test_active_events_snapshot_for_republishing() -> None:
    t = tracker(Clock())
    start = ev()
    t.feed(start)
    assert t.active_events() == {AlarmKey("cam", 1, "motion", None): start}


def test_default_hold_without_default_key() -> None:
    t = AlarmStateTracker({}, set(), clock=Clock())
    assert t.hold_for("motion") == 10.0


def test_feed_from_several_threads_keeps_one_start() -> None:
    clock = Clock()
    t = tracker(clock)
    results: list[list[Event]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            out = t.feed(ev())
            with lock:
                results.append(out)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    try:
        for th in threads:
            th.start()
    finally:
        for th in threads:
            th.join(timeout=30)
    assert sum(len(r) for r in results) == 1


def test_a_repeat_with_pictures_is_passed_on_as_a_pulse_of_the_open_alarm() -> None:
    from hikd.events import DeviceRef, Event

    tracker = AlarmStateTracker({"default": 10.0}, clock=lambda: 100.0)
    device = DeviceRef("nvr")
    start = Event(kind="alarm", type="intrusion", state="start", device=device, channel=2)
    again = Event(
        kind="alarm",
        type="intrusion",
        state="start",
        device=device,
        channel=2,
        files=("/pictures/a.jpg",),
    )
    assert tracker.feed(start) == [start]
    [pulse] = tracker.feed(again)
    assert pulse.state == "pulse" and pulse.files == ("/pictures/a.jpg",)
    assert pulse.attributes["repeat_of"] == start.id
    # Without pictures a repeat is still swallowed.
    bare = Event(kind="alarm", type="intrusion", state="start", device=device, channel=2)
    assert tracker.feed(bare) == []


def test_alarms_end_in_the_order_their_holds_run_out_and_a_repeat_moves_its_end() -> None:
    """`expire` ends only the alarms that are due, soonest first; an alarm that repeated is
    due from its last repeat, one that ended otherwise is never due again."""
    clock = Clock()
    t = tracker(clock, motion=3.0, line_crossing=1.0)
    for channel in range(1, 41):
        t.feed(ev(channel=channel, at=0))  # motion, due at +3
    t.feed(ev("line_crossing", channel=1, at=0))  # due at +1
    clock.advance(0.5)
    t.feed(ev(channel=7, at=0.5))  # a repeat: due at +3.5
    t.feed(ev(channel=8, state="stop", at=0.5))  # ended by the device
    assert t.next_expiry() == 1001.0
    clock.advance(0.6)
    assert [s.type for s in t.expire()] == ["line_crossing"]
    assert t.next_expiry() == 1003.0
    clock.advance(2.0)
    ended = t.expire()
    assert sorted(s.channel or 0 for s in ended) == [c for c in range(1, 41) if c not in (7, 8)]
    assert t.next_expiry() == 1003.5
    clock.advance(0.5)
    assert [s.channel for s in t.expire()] == [7]
    assert t.next_expiry() is None and t.active() == []


def test_many_repeats_of_one_alarm_keep_it_open_and_its_bookkeeping_small() -> None:
    clock = Clock()
    t = tracker(clock)
    t.feed(ev(at=0))
    for i in range(1, 2001):
        clock.advance(0.01)
        assert t.feed(ev(at=i / 100)) == []
    assert t.expire() == [] and len(t._due) <= 2 * len(t.active()) + 65
    clock.advance(5.01)
    assert len(t.expire()) == 1


def test_new_hold_times_and_one_shot_types_apply_to_alarms_that_start_afterwards() -> None:
    """A reload changed ``[alarms]`` (`retune`): the alarm on keeps the hold it started
    with, repeats included; an alarm that starts afterwards takes the new one; a type made
    one-shot is a pulse from then on."""
    clock = Clock()
    t = tracker(clock)
    t.feed(ev(channel=1))
    t.retune({"default": 5.0, "motion": 60.0}, {"face_snap", "tamper"})
    assert len(t.feed(ev(channel=2))) == 1  # a start
    clock.advance(4)
    assert t.feed(ev(channel=1, at=4)) == []  # still the same alarm: a repeat
    assert t.next_expiry() == clock.now + 5  # channel 1's old hold, from its repeat
    clock.advance(5.5)
    (stop,) = t.expire()
    assert (stop.channel, stop.attributes["ended_by"]) == (1, "hold_timeout")
    assert t.active() == [AlarmKey("cam", 2, "motion", None)]
    assert t.next_expiry() == clock.now - 9.5 + 60  # channel 2 started under the new hold
    (pulse,) = t.feed(ev("tamper"))
    assert pulse.state == "pulse"
