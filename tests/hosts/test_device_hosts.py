"""Device hosts (architecture.md "Processes"): `hikd run` with two device hosts, the real
vendor library in each, hikd.sim devices and a real mosquitto. One host is killed (SIGSEGV,
SIGKILL, or a hostile part on its device's alert stream): it is started again, its device
re-armed and its alarms delivered again; the other host, the daemon's process and its MQTT
session stay as they were; the alarm that was on at the crash is closed (``ended_by:
"restart"``); every event stored reaches the subscriber.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hikd.hosts.handle import HANG_S
from hikd.hosts.placement import host_of
from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import (
    EVENTS,
    SECRET,
    START_TIMEOUT_S,
    HikdProcess,
    LosslessSubscriber,
    disk_events,
    wait_all_delivered,
    write_config,
)
from tests.mosquitto import Mosquitto
from tests.shim import use_route
from tests.support import wait_until

VICTIM = "door"
BYSTANDER = "yard"
assert host_of(VICTIM, 2) != host_of(BYSTANDER, 2), "the two devices must be on two hosts"


def host_pids(hikd: HikdProcess) -> dict[int, int]:
    """Device host index -> pid of its latest start, from hikd's JSON log."""
    pids: dict[int, int] = {}
    for line in hikd.log.read_text(errors="replace").splitlines():
        if '"device host started"' in line:
            entry = json.loads(line)
            pids[int(entry["device_host"])] = int(entry["pid"])
    return pids


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text()
        except FileNotFoundError:  # a thread that ended since the listing
            continue
        found.update(int(p) for p in text.split())
    return found


def realtime_threads(pid: int) -> list[int]:
    """The threads of `pid` that run under a real-time scheduling policy."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if os.sched_getscheduler(int(task.name)) in (os.SCHED_FIFO, os.SCHED_RR):
                found.append(int(task.name))
        except ProcessLookupError:  # a thread that ended since the listing
            continue
    return found


def events_of(where: Path, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in disk_events(where)
        if all((e.get(k) if k != "device" else e["device"]["name"]) == v for k, v in match.items())
    ]


class Site:
    """hikd with two hosts, one device each; what the test looks at."""

    def __init__(
        self,
        tmp_path: Path,
        broker: Mosquitto,
        subscribe: Callable[..., LosslessSubscriber],
        run_hikd: Callable[[Path, Simulator], HikdProcess],
        sim: Simulator,
    ) -> None:
        self.state = tmp_path / "state"
        self.sim = sim
        self.broker = broker
        config = write_config(tmp_path / "hikd.toml", sim, self.state, broker, hold_s=60)
        with config.open("a") as f:
            f.write("\n[sdk]\nreconnect_interval_ms = 500\n[arming]\nretry_s = 1\n")
        text = config.read_text().replace("[daemon]\n", "[daemon]\ndevice_hosts = 2\n", 1)
        config.write_text(text)
        self.sub = subscribe(EVENTS, "hikd/status", "hikd/+/availability")
        self.hikd = run_hikd(config, sim)
        self.devices = {d.name: d for d in sim.devices}
        for device in sim.devices:
            assert device.wait_for_streams(1, timeout=START_TIMEOUT_S), self.hikd.output()

    def armed(self, device: str) -> int:
        return len(events_of(self.state, kind="health", type="armed", device=device))

    def alarm(self, device: str, channel: int) -> dict[str, Any]:
        """Trigger motion on `device` and wait for its start on disk."""
        before = {e["id"] for e in events_of(self.state, kind="alarm", device=device)}
        self.devices[device].trigger("VMD", channel=channel)

        def started() -> list[dict[str, Any]]:
            found = events_of(self.state, kind="alarm", device=device, state="start")
            return [e for e in found if e["id"] not in before and e["channel"] == channel]

        wait_until(lambda: bool(started()), f"an alarm of {device} on disk", 30)
        return started()[0]


# How the host is made to end -> the signal the crash event names (None: killed as hung).
CRASHES = {"SIGSEGV": "SIGSEGV", "SIGKILL": "SIGKILL", "nested_xml": "SIGSEGV", "SIGSTOP": None}
# Each crash with the C alarm callback; one with the Python callback too.
CRASH_ROUTES = [(crash, "c") for crash in CRASHES] + [("SIGKILL", "python")]
ROUTE_LOGGED = {"c": '"alarm callback in C', "python": '"alarm callback in Python"'}


@pytest.mark.parametrize(("crash", "route"), CRASH_ROUTES)
def test_a_crashed_device_host_is_restarted_and_nothing_else_is(
    tmp_path: Path,
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
    run_hikd: Callable[[Path, Simulator], HikdProcess],
    monkeypatch: pytest.MonkeyPatch,
    crash: str,
    route: str,
) -> None:
    """SIGSEGV and SIGKILL (the OOM killer) sent to the host; ``nested_xml``: the armed
    device sends a part of 1,000 nested XML elements on its alert stream, which the vendor
    library parses before hikd sees it, and crashes in (issue 11; README "Processes");
    SIGSTOP: the host hangs, answers no heartbeat, and is killed after `HANG_S`."""
    use_route(route, monkeypatch)
    sim = Simulator(
        [SimDeviceConfig(name=name, password=SECRET) for name in (VICTIM, BYSTANDER)]
    ).start()
    try:
        site = Site(tmp_path, broker, subscribe, run_hikd, sim)
        hikd, state = site.hikd, site.state
        wait_until(lambda: site.armed(VICTIM) == 1, "the victim armed", START_TIMEOUT_S)
        pids = host_pids(hikd)
        assert set(pids.values()) == children(hikd.process.pid), hikd.output()
        # The supervisor never loads the vendor library: only the hosts do.
        maps = Path(f"/proc/{hikd.process.pid}/maps").read_text()
        assert "libhcnetsdk" not in maps
        victim_pid = pids[host_of(VICTIM, 2)]
        assert "libhcnetsdk" in Path(f"/proc/{victim_pid}/maps").read_text()

        on = site.alarm(VICTIM, 1)  # on at the crash (hold time 60 s)
        site.alarm(BYSTANDER, 1)
        if crash.startswith("SIG"):
            os.kill(victim_pid, signal.Signals[crash])
        else:
            assert site.devices[VICTIM].send_malformed(crash) == 1

        wait_until(lambda: site.armed(VICTIM) == 2, "the victim re-armed", START_TIMEOUT_S + HANG_S)

        def victim_stops() -> list[dict[str, Any]]:
            stops = events_of(state, kind="alarm", state="stop")
            return [e for e in stops if e["device"]["name"] == VICTIM]

        # The supervisor's own events (the crash, the stops it ends) are stored by its bus
        # writer, the new host's `armed` by the host: on disk in either order.
        wait_until(
            lambda: bool(events_of(state, type="device_host_crashed")) and bool(victim_stops()),
            "the crash reported and the victim's open alarm ended",
            30,
        )
        crashed = events_of(state, type="device_host_crashed")
        assert len(crashed) == 1, hikd.output()
        assert crashed[0]["attributes"]["signal"] == CRASHES[crash]
        if CRASHES[crash] is None:
            assert crashed[0]["attributes"]["reason"].startswith("hung"), crashed
        assert crashed[0]["attributes"]["devices"] == [VICTIM]
        stops = victim_stops()
        assert [s["attributes"]["start_id"] for s in stops] == [on["id"]]
        assert stops[0]["attributes"]["ended_by"] == "restart"

        after = site.alarm(VICTIM, 2)  # alarms flow again from the new host
        site.alarm(BYSTANDER, 2)

        # The daemon, the other host and the MQTT session are the ones from before.
        assert hikd.process.poll() is None
        now = host_pids(hikd)
        assert now[host_of(BYSTANDER, 2)] == pids[host_of(BYSTANDER, 2)]
        assert now[host_of(VICTIM, 2)] != victim_pid
        assert site.armed(BYSTANDER) == 1
        received = wait_all_delivered(site.sub, state, hikd)
        assert {on["id"], after["id"], crashed[0]["id"]} <= received
        assert b"offline" not in site.sub.payloads("hikd/status")
        availability = site.sub.payloads(f"hikd/{VICTIM}/availability")
        assert availability[-2:] == [b"offline", b"online"], availability
        assert site.sub.payloads(f"hikd/{BYSTANDER}/availability") == [b"online"]
        # Every host start (two, and the victim's restart) ran the route asked for.
        assert hikd.log.read_text(errors="replace").count(ROUTE_LOGGED[route]) == 3
    finally:
        sim.stop()


def test_supervisor_api_commands_and_host_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `hikd status` and Home Assistant commands build on: a command reaches the
    session of its device in its host and comes back with the value; the hosts' state."""
    from hikd.config import load_config
    from hikd.hosts.supervisor import CommandFailed, HostSupervisor

    sim = Simulator([SimDeviceConfig(name=VICTIM, password=SECRET)]).start()
    monkeypatch.setenv(f"HIKD_PASSWORD_{VICTIM.upper()}", SECRET)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    config = tmp_path / "hikd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}"\ndevice_hosts = 2\n'
        f'[[devices]]\nname = "{VICTIM}"\nhost = "127.0.0.1"\nport = {sim.devices[0].port}\n'
    )
    published: list[Any] = []
    supervisor = HostSupervisor(load_config(config), published.append, lambda: None)
    try:
        supervisor.start()
        owner = host_of(VICTIM, 2)

        def online() -> bool:
            return supervisor.hosts()[owner].devices[0].state == "online"

        wait_until(online, "the device online in its host's state", START_TIMEOUT_S)
        states = supervisor.hosts()
        assert [s.state for s in states] == ["running", "running"]
        assert states[owner].pid in children(os.getpid())
        assert states[1 - owner].devices == ()
        # glibc's arenas capped in the hosts (the vendor library's hundreds of threads)
        environ = Path(f"/proc/{states[owner].pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ
        # The vendor library asks for SCHED_FIFO for its threads (as root it got it: 128 of
        # ~200 threads); a host refuses it, as the systemd unit's RestrictRealtime= does.
        assert len(list(Path(f"/proc/{states[owner].pid}/task").iterdir())) > 20
        assert realtime_threads(states[owner].pid) == []
        described = supervisor.command(VICTIM, "describe", timeout=30)
        assert described["state"] == "online"
        assert described["serial"] == sim.devices[0].config.serial_number
        with pytest.raises(CommandFailed, match="no command 'nosuch'"):
            supervisor.command(VICTIM, "nosuch", timeout=30)
        with pytest.raises(LookupError):
            supervisor.command("nosuch", "describe")
    finally:
        supervisor.stop(time.monotonic() + 15)
        sim.stop()
    assert [s.state for s in supervisor.hosts()] == ["stopped", "stopped"]
    assert not published  # no crash


def test_the_listen_front_stays_up_while_a_host_restarts(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    """The front is in the supervisor: a host's crash does not close the public port; the
    pushes it cannot relay meanwhile wait in the front, and once the new host is ready,
    pushes reach it (it learns the sender's relay address anew)."""
    from hikd.sim.alerts import SimAlert
    from tests.support import free_port, wait_until

    sim = Simulator([SimDeviceConfig(name=VICTIM, password=SECRET)]).start()
    try:
        device, port, state = sim.devices[0], free_port(), tmp_path / "state"
        config = tmp_path / "hikd.toml"
        config.write_text(
            f'[daemon]\nstate_dir = "{state}"\n[logging]\nformat = "json"\n'
            f'[sinks.disk]\npath = "{state / "events"}"\n'
            f'[[devices]]\nname = "{VICTIM}"\nhost = "127.0.0.1"\nport = {device.port}\n'
            f'arm = false\n[[listen]]\naddress = "127.0.0.1"\nport = {port}\n'
        )
        hikd = run_hikd(config, sim)

        def pushed(channel: int) -> bool:
            """Push motion on `channel` until the front takes it; then it is on disk."""
            result = device.push_to("127.0.0.1", port, SimAlert(type="VMD", channel=channel))
            return result.status == 200

        def on_disk(channel: int) -> bool:
            return any(
                e["channel"] == channel
                for e in events_of(state, kind="alarm", state="start", device=VICTIM)
            )

        wait_until(lambda: pushed(1), "the front relaying", START_TIMEOUT_S)
        wait_until(lambda: on_disk(1), "the pushed alarm on disk", 30)
        os.kill(host_pids(hikd)[0], signal.SIGKILL)
        wait_until(lambda: bool(events_of(state, type="device_host_crashed")), "the crash", 30)
        wait_until(lambda: pushed(2), "the front relaying to the new host", START_TIMEOUT_S)
        wait_until(lambda: on_disk(2), "the alarm pushed after the crash on disk", 30)
        assert hikd.process.poll() is None
        logged = hikd.log.read_text()
        assert logged.count("listening for pushed alarms") == 1
        # The pushes kept while the host restarted: one warning, not one a push.
        assert logged.count("no device host takes") <= 1
    finally:
        sim.stop()


def test_a_crash_loop_backs_off_to_minutes() -> None:
    from hikd.hosts.handle import MAX_BACKOFF_S, restart_delay_s

    delays = [restart_delay_s(n) for n in range(1, 12)]
    assert delays[:4] == [0.0, 2.0, 4.0, 8.0]
    assert delays == sorted(delays)
    assert delays[-1] == MAX_BACKOFF_S == 300.0


def test_hosts_keep_a_malloc_arena_max_the_user_set() -> None:
    from hikd.hosts.handle import host_environment

    assert host_environment({"PATH": "/bin"}) == {"PATH": "/bin", "MALLOC_ARENA_MAX": "2"}
    assert host_environment({"MALLOC_ARENA_MAX": "8"}) == {"MALLOC_ARENA_MAX": "8"}


def test_a_job_naming_devices_runs_in_the_host_of_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose ``devices`` are on one host: the other host starts all the same (it did
    not: the job's device names were checked against its own devices only, a crash loop)
    and records nothing for devices that are not its own."""
    from hikd.config import load_config
    from hikd.hosts.supervisor import HostSupervisor

    sim = Simulator(
        [SimDeviceConfig(name=name, password=SECRET) for name in (VICTIM, BYSTANDER)]
    ).start()
    lines = [f'[daemon]\nstate_dir = "{tmp_path}"\ndevice_hosts = 2']
    for device in sim.devices:
        monkeypatch.setenv(f"HIKD_PASSWORD_{device.name.upper()}", SECRET)
        lines.append(
            f'[[devices]]\nname = "{device.name}"\nhost = "127.0.0.1"\nport = {device.port}'
        )
    lines.append(
        f'[[jobs]]\nname = "poll"\nkind = "status"\ninterval_s = 3600\ndevices = ["{VICTIM}"]'
    )
    config = tmp_path / "hikd.toml"
    config.write_text("\n".join(lines) + "\n")
    published: list[Any] = []
    supervisor = HostSupervisor(load_config(config), published.append, lambda: None)
    try:
        supervisor.start()

        def online() -> bool:
            return all(d.state == "online" for h in supervisor.hosts() for d in h.devices)

        wait_until(online, "both devices online", START_TIMEOUT_S)
        assert not published, published  # no host crashed
        results = supervisor.run_job("poll", timeout=60)
        assert [r.details["device"] for r in results] == [VICTIM]
    finally:
        supervisor.stop(time.monotonic() + 15)
        sim.stop()
