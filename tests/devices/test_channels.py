"""One channel numbering per device (hikd.devices.capabilities.channels), with the real library
against hikd.sim numbering its channels the ways real recorders do (issue 8 item 5):
InputProxy ids from 1 or from 33, alerts naming a channel by the device's id, by the
private protocol's number (33 and up) or by ``dynChannelID``, analog channels before IP
ones. Alarms, snapshots, searches, downloads, status and ``hikd devices`` must all say
the same number for the same camera."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hikd.devices.capabilities.channels import channel_map
from hikd.devices.capabilities.downloads import download
from hikd.devices.capabilities.recordings import search_recordings
from hikd.devices.capabilities.snapshot import snapshot
from hikd.devices.capabilities.work_status import work_status
from hikd.sdk.login import DeviceFacts
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.config import RecordingPlan
from hikd.sim.variants import DocumentVariants
from tests.listeners.test_alarms import PASSWORD, Running, run_daemon
from tests.recorders.test_fetch_recordings import Login, login

__all__ = ["login", "run_daemon"]  # the fixtures, shared with test_alarms and test_download

PROXY_FROM_33 = b"""<?xml version="1.0" encoding="UTF-8"?>
<InputProxyChannelList version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<InputProxyChannel><id>34</id><name>Driveway</name>
<sourceInputPortDescriptor><proxyProtocol>HIKVISION</proxyProtocol>
<ipAddress>10.0.0.12</ipAddress><managePortNo>8000</managePortNo><srcInputPort>1</srcInputPort>
</sourceInputPortDescriptor><enableAnr>false</enableAnr></InputProxyChannel>
<InputProxyChannel><id>33</id><name>Garage</name>
<sourceInputPortDescriptor><ipAddress>10.0.0.11</ipAddress><managePortNo>8000</managePortNo>
</sourceInputPortDescriptor></InputProxyChannel>
</InputProxyChannelList>"""


def facts(protocol: str = "isapi", analog: int = 0, ip: int = 2, start_ip: int = 1) -> DeviceFacts:
    return DeviceFacts(
        serial="S", device_type="NVR", device_type_code=2216, analog_channels=analog,
        start_channel=1, ip_channels=ip, start_ip_channel=start_ip, zero_channels=0,
        audio_channels=0, alarm_inputs=0, alarm_outputs=0, disks=0, protocol=protocol,
    )  # fmt: skip


def test_the_map_numbers_cameras_as_the_device_lists_them() -> None:
    # Over ISAPI the library says IP channels start at 1 whatever the ids are.
    channels = channel_map(facts(), None, PROXY_FROM_33)
    assert channels.numbers == [1, 2]
    garage, driveway = channels.channels
    assert (garage.name, garage.device_id, garage.library_channel) == ("Garage", 33, 33)
    assert (driveway.name, driveway.device_id, driveway.source) == (
        "Driveway",
        34,
        "10.0.0.12:8000",
    )
    assert channels.device_id(2) == 34 and channels.library_channel(2) == 34
    # Alerts: by the device's id, by the private protocol's number, by dynChannelID.
    assert channels.from_alert(34) == 2
    assert channels.from_alert(34, dynamic=True) == 2
    assert channels.from_alert(99) == 99  # unknown: as the device said
    # Private protocol: the library numbers IP channels from byStartDChan (33 here).
    private = channel_map(facts("private", analog=2, start_ip=33), None, None)
    assert private.numbers == [1, 2, 3, 4]
    assert [c.library_channel for c in private.channels] == [1, 2, 33, 34]
    assert private.from_library(34) == 4
    # Ids from 1 and alerts with the private protocol's 33 and up (hikvision_next's capture
    # of a DS-7608NXI-I2: camera 2 alarmed as channelID 34).
    ids_from_1 = channel_map(
        facts(), None, PROXY_FROM_33.replace(b">34<", b">2<").replace(b">33<", b">1<")
    )
    assert ids_from_1.from_alert(34) == 2 and ids_from_1.from_alert(2) == 2


# (variants, analog channels, the simulator channel triggered, hikd's number, the device's
# number in the alert)
ALERT_CASES = {
    "ids-from-33": (DocumentVariants(ip_channel_first_id=33), 0, 2, 2, 34),
    "ids-from-1-alerts-private": (DocumentVariants(alert_channel="private"), 0, 2, 2, 34),
    "ids-from-33-alerts-dyn": (
        DocumentVariants(ip_channel_first_id=33, alert_channel="dyn"), 0, 2, 2, 34
    ),
    "hybrid-alerts-private": (DocumentVariants(alert_channel="private"), 2, 3, 3, 33),
    "ids-from-1": (DocumentVariants(), 0, 2, 2, None),
}  # fmt: skip


@pytest.mark.parametrize("case", ALERT_CASES)
def test_alarms_carry_hikds_channel_number(
    case: str,
    start_sim: Callable[..., Simulator],
    run_daemon: Callable[..., Running],
) -> None:
    variants, analog, sim_channel, number, said = ALERT_CASES[case]
    sim = start_sim(
        SimDeviceConfig(
            name="nvr", password=PASSWORD, analog_channels=analog, ip_channels=4, variants=variants
        )
    )
    device = sim.devices[0]
    running = run_daemon(sim)
    assert device.wait_for_streams(1, timeout=15), "the daemon did not arm the device"
    online = running.wait_event(type="online")
    channels = online["attributes"]["channels"]
    assert [c["number"] for c in channels] == list(range(1, analog + 5))
    assert online["attributes"]["channel_names"][str(analog + 1)] == "IPCamera 01"
    device.trigger(type="VMD", channel=sim_channel, state="active")
    event = running.wait_event(type="motion", state="start")
    assert event["channel"] == number
    assert event["attributes"].get("device_channel") == said


def test_snapshots_searches_downloads_and_status_use_the_devices_ids(
    start_sim: Callable[..., Simulator], login: Login, tmp_path: Path
) -> None:
    plan = RecordingPlan(per_channel=2, segment_s=10, gap_s=60, bytes_per_second=2000)
    config: dict[str, Any] = {"ip_channels": 4, "recordings": plan}
    sim = start_sim(
        SimDeviceConfig(name="nvr", variants=DocumentVariants(ip_channel_first_id=33), **config)
    )
    device = sim.devices[0]
    session = login(sim)
    assert session.channels.numbers == [1, 2, 3, 4]
    assert [c.device_id for c in session.channels.channels] == [33, 34, 35, 36]
    assert session.channels.names()[2] == "IPCamera 02"

    # Snapshot of camera 2: the device's stream 3401.
    assert snapshot(session, 2) == device.snapshot(2)
    assert device.count("/ISAPI/Streaming/channels/3401/picture") == 1

    # Search: the library asks for track 3301, and the recordings say channel 1.
    now = datetime.now(UTC)
    found = search_recordings(session, 1, now - timedelta(hours=1), now + timedelta(minutes=1))
    expected = device.recording_list(1)
    assert [r.name for r in found] == [r.name for r in expected]
    assert {r.channel for r in found} == {1}

    # Download by time: the library streams track 3301 of the device.
    first = found[0]
    target = tmp_path / "one.ps"
    got = download(session, target, 1, first.start, first.end, route="stream")
    assert got.size > 0
    described = [url for method, url in device.rtsp.stats.requests if method == "DESCRIBE"]
    assert described and all("/tracks/3301/" in url for url in described), described

    # Status: the device's chanNo 33..36 are cameras 1..4.
    device.set_channel_online(3, False)
    status = work_status(session)
    assert [(c.channel, c.online) for c in status.channels] == [
        (1, True), (2, True), (3, False), (4, True)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "variants",
    [
        DocumentVariants(ip_channel_first_id=33, namespace=False, reordered=True),
        # The library reads names case-sensitively: it counts no channel here, hikd does.
        DocumentVariants(ip_channel_first_id=33, lower_case=True),
    ],
    ids=["no-namespace-reordered", "lower-case"],
)
def test_the_channel_lists_are_read_in_every_spelling(
    variants: DocumentVariants, start_sim: Callable[..., Simulator], login: Login
) -> None:
    sim = start_sim(
        SimDeviceConfig(name="dvr", analog_channels=2, ip_channels=2, variants=variants)
    )
    session = login(sim)
    channels = session.channels.channels
    assert [(c.number, c.kind, c.device_id, c.name) for c in channels] == [
        (1, "analog", 1, "Camera 01"),
        (2, "analog", 2, "Camera 02"),
        (3, "ip", 33, "IPCamera 01"),
        (4, "ip", 34, "IPCamera 02"),
    ]
    assert channels[2].source == "192.168.254.2:8000"
    described = session.describe()
    assert (described["start_ip_channel"], described["ip_channels"]) == (3, 2)
