"""Recording searches of several devices at once (the vendor library's ISAPI search is not
safe to run twice at the same time: README, vendor-library notes)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hikd.devices.capabilities.recordings import search_recordings
from hikd.devices.session import DeviceSession
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.config import RecordingPlan
from tests.support import device_config

SEARCHES = 100
"""Per thread, 16 threads. Without hikd's lock 1-3 of the 1,600 searches failed in 3 runs of 4
(an entry with its name and all-zero times); with it none failed in 4 runs."""


def test_searches_running_at_once_each_get_every_recording_with_its_times(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> None:
    plan = RecordingPlan(per_channel=2, segment_s=60, gap_s=120, channels=[1])
    sim = start_sim(*(SimDeviceConfig(name=n, recordings=plan) for n in "abcd"))
    sessions = [
        DeviceSession(sdk, device_config(sim, i), publish=lambda _e: None) for i in range(4)
    ]
    failures: list[str] = []
    counts: list[int] = []

    def search(session: DeviceSession) -> None:
        for _ in range(SEARCHES):
            now = datetime.now(UTC)
            try:
                counts.append(len(search_recordings(session, 1, now - timedelta(hours=1), now)))
            except Exception as exc:  # the test reports every failure, whatever its kind
                failures.append(repr(exc))

    try:
        for session in sessions:
            session.login_once()
        threads = [threading.Thread(target=search, args=(s,)) for s in sessions for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for session in sessions:
            session.close()
    assert not failures, f"{len(failures)} of {16 * SEARCHES} searches failed: {failures[:3]}"
    assert set(counts) == {2}
