"""Device log pulls on a private-protocol session, through the stand-in library.

The real library's log search works over ISAPI too (tests/recorders/test_device_log.py), but only a
private-protocol device fills the channel and the info text, and only the stand-in can put
several entries in one second on demand, answer "still searching" (1002), or repeat an
entry — the cases the cursor must get right.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hikd.config import DeviceConfig
from hikd.devices.session import DeviceSession
from hikd.jobs.base import JobResult
from hikd.recorders.device_log import DeviceLogConfig, DeviceLogJob
from hikd.state import StateStore
from tests.standin import StandIn
from tests.standin.jobs import Events, job_context

pytest_plugins = ["tests.standin.fixtures"]

pytestmark = pytest.mark.standin

# The stand-in's log starts 2024-05-01 10:00:00, two entries per second.
EVERYTHING = DeviceLogConfig(history_days=365 * 30)


def pull(
    session: DeviceSession, state: StateStore, config: DeviceLogConfig = EVERYTHING
) -> tuple[JobResult, Events]:
    ctx, events = job_context(session, state, job="logs")
    return DeviceLogJob(config).run(ctx), events


def test_entries_become_log_events(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI: it leaves channel and info empty."""
    standin.set(log_count=5)
    result, events = pull(standin_session, state_store)
    assert result.ok, result.summary
    assert standin.get("log_select_mode") == 2  # by time (seed 5.31.14)
    assert standin.get("log_closes") == standin.get("log_searches") == 1
    assert [(e.type, e.attributes["minor"]) for e in events] == [
        ("operation", "remote_login"),
        ("alarm", "motdet_start"),
        ("exception", "vi_lost"),
        ("operation", "remote_logout"),
        ("information", "hdd_info"),
    ]
    login, motion = events[0], events[1]
    assert login.kind == "log"
    assert login.time == datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert (login.attributes["user"], login.attributes["remote_host"]) == ("admin", "192.168.1.10")
    assert login.channel is None
    assert motion.channel == 2
    assert motion.attributes["info"] == "stand-in log entry 1"


def test_each_entry_once_even_when_runs_split_a_second(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (the simulator cannot put two entries in
    one second on demand). Entries 4 and 5 share 10:00:02: the first run sees only entry 4,
    the second must start at that second and publish entry 5 but not entry 4 again."""
    standin.set(log_count=5)
    _result, first = pull(standin_session, state_store)
    standin.set(log_count=8)
    _result, second = pull(standin_session, state_store)
    # The second search starts at the last entry's second (inclusive).
    assert (standin.get("log_start_hour"), standin.get("log_start_second")) == (10, 2)
    assert [e.attributes["info"] for e in second] == [f"stand-in log entry {i}" for i in (5, 6, 7)]
    _result, third = pull(standin_session, state_store)
    assert third == []
    assert len({e.id for e in first + second}) == 8


def test_identical_entries_in_one_second_are_all_published_once(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI. A device can log the same thing twice
    in a second (two identical logins): both are entries, neither may come back."""
    standin.set(log_count=3, log_repeat=1)
    _result, events = pull(standin_session, state_store)
    assert [e.attributes["info"] for e in events] == [
        "stand-in log entry 0", "stand-in log entry 0",
        "stand-in log entry 1", "stand-in log entry 1",
        "stand-in log entry 2", "stand-in log entry 2",
    ]  # fmt: skip
    _result, again = pull(standin_session, state_store)
    assert again == []


def test_a_device_still_searching_is_asked_again(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI (it pages by itself and never answers
    NET_DVR_ISFINDING there)."""
    standin.set(log_count=4, log_finding=3)
    result, events = pull(standin_session, state_store)
    assert result.ok and len(events) == 4


def test_a_run_capped_by_max_entries_closes_the_search_and_goes_on_next_time(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore
) -> None:
    """The real library cannot do this over ISAPI."""
    standin.set(log_count=10)
    capped = DeviceLogConfig(history_days=365 * 30, max_entries=4)
    seen: list[str] = []
    for _ in range(4):
        _result, events = pull(standin_session, state_store, capped)
        seen += [e.attributes["info"] for e in events]
    assert standin.get("log_closes") == standin.get("log_searches") == 4
    assert seen == [f"stand-in log entry {i}" for i in range(10)]


def test_log_times_are_in_the_devices_zone(standin: StandIn, state_store: StateStore) -> None:
    """The real library cannot do this over ISAPI: a private login with a configured zone."""
    config = DeviceConfig.model_validate(
        {
            "name": "dvr",
            "host": "127.0.0.1",
            "login_mode": "private",
            "password": "secret1",
            "timezone": "+05:30",
        }
    )
    session = DeviceSession(standin.sdk, config, Events())
    session.login_once()
    try:
        standin.set(log_count=1)
        _result, (event,) = pull(session, state_store)
    finally:
        session.close()
    zone = timezone(timedelta(hours=5, minutes=30))
    assert event.time == datetime(2024, 5, 1, 10, 0, 0, tzinfo=zone)
