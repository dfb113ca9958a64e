"""A device host started in place of one that crashed uses what the dead one read after
each login (channel map, identity) instead of reading it again (`hikd.devices.remembered`;
README "Processes": what a crash costs in time)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from hikd.devices.capabilities.channels import (
    INPUT_PROXY_URL,
    VIDEO_INPUTS_URL,
    Channel,
    ChannelMap,
)
from hikd.devices.capabilities.event_triggers import TRIGGERS_URL
from hikd.devices.remembered import COMPACT_BYTES, RememberedDevices
from hikd.hosts.placement import host_of
from hikd.sdk.login import DeviceFacts
from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess, LosslessSubscriber
from tests.hosts.test_device_hosts import BYSTANDER, VICTIM, Site, events_of, host_pids
from tests.mosquitto import Mosquitto
from tests.support import wait_until

FACTS = DeviceFacts("DS-1", "IPCamera", 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, "isapi")
CHANNELS = ChannelMap([Channel(1, "analog", "Door", 1, 1, 1)])
IDENTITY = {"model": "DS-2CD", "firmware": "V5.7", "supported_types": {"motion": [1]}}
READS = ("/ISAPI/System/deviceInfo", TRIGGERS_URL, VIDEO_INPUTS_URL, INPUT_PROXY_URL)


def test_only_a_host_after_a_crash_gets_what_was_read_once(tmp_path: Path) -> None:
    path = tmp_path / "device-host-0.devices"
    dead = RememberedDevices(path, after_crash=False)
    dead.keep("door", FACTS, CHANNELS, IDENTITY)
    dead.keep("yard", FACTS, CHANNELS, {"model": "other"})
    with path.open("ab") as file:
        file.write(b'{"name": "porch", "fac')  # cut short by the crash

    new = RememberedDevices(path, after_crash=True)
    taken = new.take("door", FACTS)
    assert taken is not None
    assert taken[0].to_list() == CHANNELS.to_list() and taken[1] == IDENTITY
    assert new.take("door", FACTS) is None  # once: a later login reads again
    rebooted = DeviceFacts("DS-1", "IPCamera", 0, 2, 1, 0, 0, 0, 0, 1, 1, 1, "isapi")
    assert new.take("yard", rebooted) is None  # other facts: read again
    assert new.take("porch", FACTS) is None

    assert RememberedDevices(path, after_crash=False).take("door", FACTS) is None
    stopped = RememberedDevices(path, after_crash=True)
    stopped.close(remove=True)
    assert not path.exists()


def test_the_file_keeps_each_device_s_last_read_when_it_grows(tmp_path: Path) -> None:
    path = tmp_path / "device-host-0.devices"
    kept = RememberedDevices(path, after_crash=False)
    big = {"model": "x" * 100_000}
    for n in range(COMPACT_BYTES // 100_000 + 5):
        kept.keep("door", FACTS, CHANNELS, {**big, "n": n})
    kept.keep("yard", FACTS, CHANNELS, IDENTITY)
    assert path.stat().st_size < COMPACT_BYTES
    new = RememberedDevices(path, after_crash=True)
    door = new.take("door", FACTS)
    assert door is not None and door[1]["n"] == COMPACT_BYTES // 100_000 + 4
    assert new.take("yard", FACTS) is not None


def test_a_host_after_a_crash_does_not_read_its_devices_again(
    tmp_path: Path,
    broker: Mosquitto,
    subscribe: Callable[..., LosslessSubscriber],
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    """SIGKILL of a host: the new one logs in and arms its device again, and its ``online``
    says the same channels, model and alarm types, without reading them from the device."""
    sim = Simulator(
        [SimDeviceConfig(name=name, password=SECRET) for name in (VICTIM, BYSTANDER)]
    ).start()
    try:
        site = Site(tmp_path, broker, subscribe, run_hikd, sim)
        wait_until(lambda: site.armed(VICTIM) == 1, "the victim armed", START_TIMEOUT_S)
        device = site.devices[VICTIM]
        reads = {url: device.count(url) for url in READS}
        assert all(reads.values()), reads
        logins = device.count("/ISAPI/Security/sessionLogin")

        os.kill(host_pids(site.hikd)[host_of(VICTIM, 2)], signal.SIGKILL)
        wait_until(lambda: site.armed(VICTIM) == 2, "the victim re-armed", START_TIMEOUT_S)

        assert device.count("/ISAPI/Security/sessionLogin") > logins  # a new login
        # The library's login reads some of them too: the new login read less than the
        # first one, and hikd's own reads (the event triggers only it reads) not at all.
        again = {url: device.count(url) - reads[url] for url in READS}
        assert all(again[url] < reads[url] for url in READS), (reads, again)
        assert again[TRIGGERS_URL] == 0, site.hikd.output()
        online = events_of(site.state, kind="health", type="online", device=VICTIM)
        assert len(online) == 2
        said = [
            {k: e["attributes"].get(k) for k in ("channels", "model", "supported_types")}
            for e in online
        ]
        assert said[0] == said[1] and said[0]["channels"]
    finally:
        sim.stop()
