"""Device log pulls with the real vendor library against hikd.sim over ISAPI
(FindDVRLog_V30 becomes ``POST /ISAPI/ContentMgmt/logSearch``, paged by the library)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from hikd.devices.session import DeviceSession
from hikd.jobs.base import JobResult
from hikd.recorders.device_log import DeviceLogConfig, DeviceLogJob
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.state import StateStore
from tests.standin.jobs import Events, job_context
from tests.support import device_config, logged_in

pytest_plugins = ["tests.standin.fixtures"]


@pytest.fixture
def nvr(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> Iterator[tuple[Simulator, DeviceSession]]:
    # 90 entries: more than two of the library's 40-entry pages.
    sim = start_sim(SimDeviceConfig(name="nvr", log_entries=90, utc_offset_minutes=120))
    with logged_in(sdk, device_config(sim, timezone="+02:00"), Events()) as session:
        yield sim, session


def pull(
    session: DeviceSession, state: StateStore, config: DeviceLogConfig | None = None
) -> tuple[JobResult, Events]:
    ctx, events = job_context(session, state, job="logs")
    return DeviceLogJob(config or DeviceLogConfig(history_days=2)).run(ctx), events


def test_each_entry_is_published_once_across_runs(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore
) -> None:
    sim, session = nvr
    device_log = sim.devices[0].log
    first, events = pull(session, state_store)
    assert first.ok, first.summary
    assert len(events) == len(device_log.entries()) == 91  # 90 + hikd's own login
    assert len({e.id for e in events}) == len(events)
    assert all(e.kind == "log" for e in events)
    times = [e.time for e in events]
    assert times == sorted(times)

    second, events = pull(session, state_store)
    assert second.ok and events == []

    device_log.add("Exception", "videoLost", info="video loss", channel=2)
    third, events = pull(session, state_store)
    assert third.ok
    (entry,) = events
    assert (entry.type, entry.attributes["minor"]) == ("exception", "vi_lost")
    assert (entry.attributes["major_code"], entry.attributes["minor_code"]) == (2, 0x21)
    # The log's wall-clock time is the device's (UTC+2 here, as configured).
    added = device_log.entries()[-1].time
    assert entry.time.utcoffset() == timedelta(hours=2)
    assert entry.time.replace(tzinfo=None) == added


def test_login_entries_carry_user_and_remote_host(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore
) -> None:
    _sim, session = nvr
    _result, events = pull(session, state_store)
    logins = [e for e in events if e.attributes["minor"] == "remote_login"]
    assert logins
    assert logins[-1].type == "operation"
    assert logins[-1].attributes["user"] == "admin"
    assert logins[-1].attributes["remote_host"] == "127.0.0.1"


def test_a_type_filter_still_moves_the_cursor(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore
) -> None:
    _sim, session = nvr
    config = DeviceLogConfig(history_days=2, types=["exception"])
    result, events = pull(session, state_store, config)
    assert events and {e.type for e in events} == {"exception"}
    assert result.details["new"] > len(events)
    _result, events = pull(session, state_store, config)
    assert events == []
