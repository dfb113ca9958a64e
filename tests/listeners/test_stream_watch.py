"""A broken alert-stream part no longer costs 35 s of alarms: the heartbeat watch re-arms.

The real vendor library, the daemon and hikd.sim. After certain broken parts the library
silently stops delivering anything on the stream until its own reconnect 35 s later
(README, vendor-library notes); hikd sees the device's ``heartBeat`` parts stop and arms
again at once. A device whose heartbeat the library swallows is never re-armed for being
quiet, and one that stops its heartbeat is re-armed once at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from hikd.sim import Simulator
from hikd.sim.device import SimDevice
from tests.listeners.test_alarms import Running, nvr, run_daemon
from tests.support import free_port, wait_for

__all__ = ["run_daemon"]  # the daemon fixture of test_alarms, shared

TYPES = ["VMD", "linedetection", "fielddetection", "tamperdetection"]
HIKD_TYPES = {"VMD": "motion", "linedetection": "line_crossing", "fielddetection": "intrusion"}


def learned(running: Running, name: str) -> bool:
    watch = running.daemon.stream_watch
    assert watch is not None
    return watch.period(name) is not None


def alarms_until_delivered(device: SimDevice, running: Running, timeout: float) -> list[int]:
    """Trigger a new alarm every 0.3 s until one reaches the disk sink; the seqs sent."""
    sent: list[int] = []
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while time.monotonic() < deadline:
        i = len(sent)
        alert = device.trigger(type=TYPES[i % 4], channel=i // 4 % 4 + 1)
        sent.append(alert.seq)
        time.sleep(0.3)
        seen = {
            e["attributes"].get("hikd_sim_seq")
            for e in running.events(kind="alarm")
            if e["attributes"].get("hikd_sim_seq") is not None
        }
        if seen & set(sent):
            break
    return sent


@pytest.mark.parametrize("kind", ["headerless", "boundary_in_body", "empty"])
def test_a_broken_part_is_noticed_and_the_device_armed_again(
    kind: str, start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    sim = start_sim(nvr("beating", heartbeat_s=1, heartbeat_event="heartBeat"))
    device = sim.devices[0]
    running = run_daemon(sim)
    assert device.wait_for_streams(1, timeout=15)
    assert wait_for(lambda: learned(running, "beating"), timeout=20), "no heartbeat period"

    device.send_malformed(kind)
    sent = alarms_until_delivered(device, running, timeout=30)
    stalled = running.wait_event(type="arming_stalled", state="start")
    assert stalled["attributes"]["heartbeat_s"] >= 1
    running.wait_event(type="arming_stalled", state="stop")
    # hikd opened the new stream itself; the library's own reconnect (0x8006) never came.
    assert device.alarms.streams_opened == 2
    assert not running.events(type="arming_reconnecting")
    delivered = {e["attributes"].get("hikd_sim_seq") for e in running.events(kind="alarm")}
    print(f"{kind}: {len([s for s in sent if s not in delivered])} of {len(sent)} lost")


def test_a_quiet_device_is_not_rearmed_and_a_stopped_heartbeat_rearms_once(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    sim = start_sim(
        nvr("quiet", heartbeat_s=1),  # videoloss heartbeats: the library swallows them
        nvr("stops", heartbeat_s=1, heartbeat_event="heartBeat"),
    )
    quiet, stops = sim.devices
    running = run_daemon(sim)
    assert quiet.wait_for_streams(1, timeout=15) and stops.wait_for_streams(1, timeout=15)
    assert wait_for(lambda: learned(running, "stops"), timeout=20)

    stops.alarms.heartbeat_s = None  # the device stops sending heartbeats
    end = running.wait_event(type="arming_stalled", state="stop", timeout=20)
    assert end["attributes"]["heartbeat_stopped"] is True
    time.sleep(5)  # room for more re-arms, were there any (the period is 1 s)
    assert stops.alarms.streams_opened == 2
    assert quiet.alarms.streams_opened == 1
    assert [e["device"]["name"] for e in running.events(type="arming_stalled")] == [
        "stops",
        "stops",
    ]
    # The quiet device's stream was healthy all along.
    quiet.trigger(type="VMD", channel=1)
    event = running.wait_event(type="motion", state="start")
    assert event["device"]["name"] == "quiet"


def test_a_killed_device_is_left_to_the_librarys_own_reconnect(
    start_sim: Callable[..., Simulator], run_daemon: Callable[..., Running]
) -> None:
    port = free_port()
    config = nvr("phoenix", port=port, heartbeat_s=1, heartbeat_event="heartBeat")
    sim = start_sim(config)
    running = run_daemon(sim)
    assert sim.devices[0].wait_for_streams(1, timeout=15)
    assert wait_for(lambda: learned(running, "phoenix"), timeout=20)

    sim.stop()  # its heartbeats stop too, but the library knows the link broke
    running.wait_event(type="arming_reconnecting", state="start", timeout=20)
    time.sleep(6)  # longer than the watch's limit (5 s): room for a wrong re-arm
    reborn = start_sim(config)
    running.wait_event(type="rearmed", timeout=30)
    assert reborn.devices[0].wait_for_streams(1, timeout=15)
    assert not running.events(type="arming_stalled")
    assert not running.events(type="arming_failed")
