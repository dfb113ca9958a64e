"""A reload applies ``[alarms]``, ``[arming]`` and ``[[jobs]]`` (README "Reloading the
configuration"): `hikd run` with two device hosts, the real vendor library in each, hikd.sim
devices. Both hosts are told, though no device changed: a new hold time applies to the
alarms that start afterwards (the alarm on keeps its own), new arming options arm the armed
devices again (one new alert stream each, no new login), and jobs added, changed or removed
run as the file says from then on; the reload line says what was applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.hosts.placement import host_of
from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess
from tests.hosts.configs import daemon_lines, device_lines
from tests.hosts.test_device_hosts import events_of, host_pids
from tests.hosts.test_reload import hikd
from tests.support import wait_until

NAMES = ("yard", "door")
assert [host_of(name, 2) for name in NAMES] == [0, 1]
ALERT_STREAM = "/ISAPI/Event/notification/alertStream"


def write_config(path: Path, sim: Simulator, settings: list[str]) -> None:
    lines = [*daemon_lines(path, device_hosts=2), *settings]
    for name in NAMES:
        lines += [*device_lines(sim, name), "reconnect_min_s = 0.2"]
    path.write_text("\n".join(lines) + "\n")


def test_a_reload_applies_hold_times_to_new_alarms_and_arms_again_with_new_options(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator([SimDeviceConfig(name=name, password=SECRET) for name in NAMES]).start()
    try:
        config = tmp_path / "hikd.toml"
        state = tmp_path / "state"
        (tmp_path / "run").mkdir()
        before = ["[alarms.hold_s]", "default = 600", "[arming]", "retry_s = 1"]
        write_config(config, sim, before)
        daemon = run_hikd(config, sim)

        def armed(name: str) -> int:
            return len(events_of(state, kind="health", type="armed", device=name))

        def alarms(name: str, state_: str) -> list[dict[str, Any]]:
            return events_of(state, kind="alarm", device=name, state=state_)

        for name in NAMES:
            wait_until(lambda n=name: armed(n) == 1, f"{name} armed", START_TIMEOUT_S)
        sim.device("yard").trigger("VMD", channel=1)
        wait_until(lambda: bool(alarms("yard", "start")), "yard's alarm on disk", 30)
        logins = {name: sim.device(name).logins("admin") for name in NAMES}
        streams = {name: sim.device(name).count(ALERT_STREAM) for name in NAMES}
        pids = host_pids(daemon)

        after = [
            "[alarms.hold_s]",
            "default = 600",
            "motion = 0.5",
            "[arming]",
            "retry_s = 1",
            'level = "medium"',
            "heartbeat_misses = 0",  # the heartbeat watch turned off
        ]
        write_config(config, sim, after)
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == (
            "reloaded: no device changed; arming.level now medium; arming.heartbeat_misses now "
            "0; alarms.hold_s.motion now 0.5 for new alarms; 2 devices armed again with the new "
            "[arming]"
        ), done.stdout

        # Armed again, both hosts: a new alert stream each, the old one closed, the same
        # session and the same host process.
        for name in NAMES:
            wait_until(lambda n=name: armed(n) >= 2, f"{name} armed again", 30)
            assert sim.device(name).count(ALERT_STREAM) > streams[name], name
            assert sim.device(name).wait_for_streams(1), name
            assert sim.device(name).logins("admin") == logins[name], name
        wait_until(lambda: sim.device("yard").stream_count == 1, "yard's old stream closed", 30)
        assert host_pids(daemon) == pids

        # A new alarm ends by the new hold time; the one on since before the reload, older,
        # is still on (its hold stays 600 s).
        sim.device("door").trigger("VMD", channel=1)
        wait_until(lambda: bool(alarms("door", "stop")), "door's alarm ended by its hold", 30)
        (stop,) = alarms("door", "stop")
        assert stop["attributes"]["ended_by"] == "hold_timeout"
        assert alarms("yard", "stop") == []
        (event,) = events_of(state, kind="health", type="reload")
        assert event["attributes"]["live"] == {
            "arming.level": "medium",
            "arming.heartbeat_misses": "0",
            "alarms.hold_s.motion": "0.5",
        }
        assert event["attributes"]["needs_restart"] == []
    finally:
        sim.stop()


def test_a_reload_schedules_added_changed_and_removed_jobs_in_every_host(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator([SimDeviceConfig(name=name, password=SECRET) for name in NAMES]).start()
    try:
        config = tmp_path / "hikd.toml"
        state = tmp_path / "state"
        (tmp_path / "run").mkdir()
        write_config(config, sim, [])  # no job: the hosts start without a scheduler
        daemon = run_hikd(config, sim)

        def polls(name: str) -> int:
            return len(events_of(state, kind="health", type="status", device=name))

        for name in NAMES:
            wait_until(
                lambda n=name: bool(events_of(state, kind="health", type="armed", device=n)),
                f"{name} armed",
                START_TIMEOUT_S,
            )
        assert polls("yard") == polls("door") == 0

        def poll(**keys: str) -> list[str]:
            return ["[[jobs]]", 'name = "poll"', 'kind = "status"'] + [
                f"{key} = {value}" for key, value in keys.items()
            ]

        write_config(config, sim, poll(interval_s="0.5"))
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == "reloaded: no device changed; jobs rescheduled: added poll"
        for name in NAMES:  # both hosts run it on their device
            wait_until(lambda n=name: polls(n) >= 2, f"{name} polled by the added job", 30)

        # Changed: from now on on door only, and at once (a cron line would wait for its
        # minute; the interval is what the test can see).
        write_config(config, sim, poll(interval_s="0.5", devices='["door"]'))
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == "reloaded: no device changed; jobs rescheduled: changed poll"
        counts = {name: polls(name) for name in NAMES}
        wait_until(lambda: polls("door") >= counts["door"] + 4, "door polled on", 30)
        assert polls("yard") <= counts["yard"] + 1  # at most a run that was in progress
        # Removed: both hosts say so in answer to the reload, before it returns.
        write_config(config, sim, [])
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == "reloaded: no device changed; jobs rescheduled: removed poll"
        told = [
            json.loads(line)
            for line in daemon.log.read_text().splitlines()
            if '"jobs rescheduled"' in line
        ]
        assert sorted((t["device_host"], tuple(t["removed"])) for t in told[-2:]) == [
            (0, ("poll",)),
            (1, ("poll",)),
        ], told
        assert not events_of(state, type="device_host_crashed")
    finally:
        sim.stop()
