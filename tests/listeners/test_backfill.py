"""Alarms that happened while hikd could not hear them: re-sent by the device, or read back
from its log (README "Backfill"). The real vendor library, hikd.sim, the daemon and the disk
sink; every event is read back as a user would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from hikd.sim import Simulator
from hikd.sim.device import SimDevice
from hikd.sim.variants import DocumentVariants
from tests.listeners.test_alarms import Running, nvr, run_daemon
from tests.support import wait_for

__all__ = ["run_daemon"]  # the fixture, shared with test_alarms


def _cut_stream(device: SimDevice) -> None:
    """The link breaks and stays broken: the stream ends and every new one is refused."""
    device.alert_stream_status = 500
    device.close_streams()
    assert wait_for(lambda: device.stream_count == 0)


def _raise_missed(device: SimDevice) -> None:
    """Alarms nobody hears: motion with its end, an alarm input, a smart event."""
    sent = [
        device.trigger("VMD", channel=2),
        device.trigger("VMD", channel=2, state="inactive"),
        device.trigger("IO", channel=2),
        device.trigger("linedetection", channel=3),
    ]
    assert all(s.streams == 0 for s in sent)


def _assert_backfilled(running: Running, before: datetime) -> None:
    """The alarms of `_raise_missed`, each once, marked, with the device's time."""
    motion = [e for e in running.events(type="motion") if e["channel"] == 2]
    assert [e["state"] for e in motion] == ["start", "stop"]
    assert motion[1]["attributes"]["start_id"] == motion[0]["id"]
    io = running.events(type="io")
    assert [(e["state"], e["attributes"]["alarm_input"]) for e in io] == [("pulse", 2)]
    smart = running.events(type="smart_detection")
    assert [(e["state"], e["channel"]) for e in smart] == [("pulse", 3)]
    for event in [*motion, *io, *smart]:
        assert event["attributes"]["backfilled"] is True
        when = datetime.fromisoformat(event["time"])
        assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 3600
        assert before.replace(microsecond=0) <= when <= datetime.fromisoformat(event["received"])


def _armed(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running], config: Any
) -> tuple[Simulator, SimDevice, Running]:
    """One simulated device, armed by a running daemon."""
    sim = start_sim(config)
    device = sim.devices[0]
    running = run_daemon(sim)
    assert device.wait_for_streams(1, timeout=15)
    return sim, device, running


def _live_motion(running: Running, device: SimDevice) -> None:
    device.trigger("VMD", channel=1)
    running.wait_event(type="motion", channel=1, state="start")


def _report(running: Running, count: int = 1) -> list[dict[str, Any]]:
    assert wait_for(lambda: len(running.events(type="backfill")) >= count, 30), [
        (e["type"], e["state"]) for e in running.events(kind="health")
    ]
    return running.events(type="backfill")


def _outage(device: SimDevice, running: Running, *, restart_device: bool) -> datetime:
    _cut_stream(device)
    running.wait_event(type="arming_reconnecting", state="start", timeout=20)
    if restart_device:
        device.forget_sessions()  # a restarted device knows no session: the library logs in
    before = datetime.now(UTC)
    _raise_missed(device)
    device.alert_stream_status = 200
    return before


@pytest.mark.parametrize(
    "first_id",
    # 33: IP channels the device numbers from 33 in its alerts and its log; the backfilled
    # alarms carry hikd's numbers like the live ones (README "Channel numbers").
    [0, 33],
    ids=["ids-from-1", "ids-from-33"],
)
def test_alarms_of_a_stream_outage_are_backfilled_once(
    first_id: int, start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    _sim, device, running = _armed(
        start_sim, run_daemon, nvr(variants=DocumentVariants(ip_channel_first_id=first_id))
    )
    _live_motion(running, device)
    before = _outage(device, running, restart_device=False)
    (report,) = _report(running)
    _assert_backfilled(running, before)
    # The live alarm just before the cut lies in the window, and is not published again.
    assert len([e for e in running.events(type="motion", state="start") if e["channel"] == 1]) == 1
    assert report["attributes"]["backfilled"] == 3
    assert report["attributes"]["heard_live"] == 1
    assert report["attributes"]["resent"] == 0
    assert report["attributes"]["gap_start"] < report["attributes"]["gap_end"]
    # Live again afterwards: unmarked.
    device.trigger("VMD", channel=4)
    assert "backfilled" not in running.wait_event(type="motion", channel=4)["attributes"]


def test_alarms_raised_while_the_device_restarted_are_backfilled_once(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    _sim, device, running = _armed(start_sim, run_daemon, nvr())
    _live_motion(running, device)
    before = _outage(device, running, restart_device=True)
    _report(running)
    running.wait_event(type="relogin", state="stop")
    _assert_backfilled(running, before)


def test_alarms_raised_while_hikd_was_down_are_backfilled_once_and_only_once(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    sim, device, first = _armed(start_sim, run_daemon, nvr())
    _live_motion(first, device)
    first.stop()
    assert wait_for(lambda: device.stream_count == 0)
    before = datetime.now(UTC)
    _raise_missed(device)

    second = run_daemon(sim)
    (report,) = _report(second)
    _assert_backfilled(second, before)
    assert report["attributes"]["backfilled"] == 3
    # The alarm heard live before the restart is not in the gap.
    assert len([e for e in second.events(type="motion", state="start") if e["channel"] == 1]) == 1

    # Another restart with nothing missed: nothing is published again.
    second.stop()
    third = run_daemon(sim)
    reports = _report(third, 2)
    assert reports[-1]["attributes"]["backfilled"] == 0
    _assert_backfilled(third, before)


def test_a_device_whose_log_has_no_alarms_gets_a_clear_health_event(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    _sim, device, running = _armed(start_sim, run_daemon, nvr(log_alarms=False))
    _live_motion(running, device)
    _outage(device, running, restart_device=False)
    event = running.wait_event(type="backfill_unavailable", timeout=30)
    assert "no alarm entries" in event["attributes"]["reason"]
    assert not running.events(type="io")


def test_alarms_the_device_resends_arrive_once_marked_with_their_own_time(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    _sim, device, running = _armed(start_sim, run_daemon, nvr(resend_missed=True))
    running.wait_event(type="armed")
    _cut_stream(device)
    missed = [device.trigger("VMD", channel=ch) for ch in (1, 2, 3)]
    assert all(s.streams == 0 for s in missed)
    reopened = datetime.now(UTC)
    device.alert_stream_status = 200
    (report,) = _report(running)
    motion = running.events(type="motion")
    # Re-sent ones count as heard live: the log's copies are not published again.
    assert sorted(e["channel"] for e in motion) == [1, 2, 3]
    for event in motion:
        assert event["attributes"]["resent"] is True
        assert event["state"] == "pulse"
        assert datetime.fromisoformat(event["time"]) <= reopened
    assert report["attributes"]["resent"] == 3
    assert report["attributes"]["backfilled"] == 0


def test_alarms_of_the_past_never_change_a_state_topic() -> None:
    from hikd.events import DeviceRef, Event
    from hikd.sinks.mqtt.topics import Topics, event_messages

    device = DeviceRef("nvr", "SERIAL1")
    live = Event(kind="alarm", type="motion", state="stop", device=device, channel=2)
    assert "hikd/nvr/2/motion" in {m.topic for m in event_messages(Topics("hikd"), live)}
    for mark in ("backfilled", "resent"):
        past = Event(
            kind="alarm", type="motion", state="stop", device=device, channel=2,
            attributes={mark: True},
        )  # fmt: skip
        assert [m.topic for m in event_messages(Topics("hikd"), past)] == ["hikd/nvr/events"]


def test_each_live_alarm_stands_for_one_log_entry_at_most() -> None:
    from datetime import timedelta, timezone

    from hikd.listeners.log_alarms import heard_live, log_alarms
    from hikd.sdk.device_log import LogRecord

    zone = timezone(timedelta(hours=1))
    t0 = datetime(2026, 12, 6, 11, 0, 0, tzinfo=zone)

    def motion(second: int, minor: int = 0x03, channel: int = 2) -> LogRecord:
        return LogRecord(
            t0 + timedelta(seconds=second), 1, minor, "alarm", "motdet_start",
            "", "", channel, 0, 0, 0, 0, "",
        )  # fmt: skip

    # Two motion starts a second apart on one channel, one heard live: one is missed.
    alarms, stray = log_alarms([motion(0), motion(1), motion(5, minor=0x04)])
    assert stray == 0 and [(a.time.second, a.stop is not None) for a in alarms] == [
        (0, False),
        (1, True),
    ]
    live = [("motion", 2, t0.timestamp(), False)]
    assert heard_live(alarms, live, 3) == [True, False]
    # A live alarm one second off does not hide an entry of its own second from its owner.
    late = [motion(0), motion(1)]
    pairs, _ = log_alarms(late)
    assert heard_live(pairs, [("motion", 2, t0.timestamp() + 1, False)], 3) == [False, True]
    # Another channel or kind never matches.
    other = [("motion", 3, t0.timestamp(), False), ("tamper", 2, t0.timestamp(), False)]
    assert heard_live(alarms, other, 3) == [False, False]
