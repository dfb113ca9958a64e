"""The simulator's cached alert rendering sends byte for byte what rendering each alert
afresh sends: the benchmarks' load and the tests' alarms are the same documents."""

from __future__ import annotations

import pytest

from hikd.sim import SimDeviceConfig
from hikd.sim.alerts import ALERT_KINDS, SimAlert, Stamp, render, stream_parts
from hikd.sim.renderer import AlertRenderer

CONFIGS = [
    SimDeviceConfig(name="nvr", utc_offset_minutes=120, analog_channels=4, ip_channels=4),
    SimDeviceConfig(name="cam", device_type="IPCamera", analog_channels=1, ip_channels=0),
]
ALERTS = [
    *(SimAlert(type=t) for t in ALERT_KINDS),
    SimAlert("VMD", 3, "inactive"),
    SimAlert("linedetection", 2, fmt="json", region_id=4, target="vehicle"),
    SimAlert("fielddetection", 1, pictures=2),
    SimAlert("VMD", 1, pictures=1, fmt="json", picture_size=3000),
    SimAlert("IO", 2, extra={"zoneName": "door", "priority": 3}),
    SimAlert("VMD", 1, resent=True),
    SimAlert("videoloss", 1, "inactive", active_post_count=0),
    SimAlert("custom", 2),
]
STAMPS = [
    Stamp(1, 123_456_789, "2026-12-06T20:00:00+02:00", 8080),
    Stamp(987_654, 9_876_543_210_123, "2026-12-06T20:00:01+02:00", 8080),
    Stamp(None, 5, "2026-01-01T00:00:00Z", 65000),  # a heartbeat: no sequence number
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_cached_parts_are_the_freshly_rendered_bytes(cfg: SimDeviceConfig) -> None:
    renderer = AlertRenderer(cfg)
    for _ in range(2):  # the first pass fills the cache, the second reads it
        for alert in ALERTS:
            for stamp in STAMPS:
                assert renderer.body(alert, stamp) == render(alert, cfg, stamp)
                assert renderer.stream_parts(alert, stamp) == stream_parts(alert, cfg, stamp)
