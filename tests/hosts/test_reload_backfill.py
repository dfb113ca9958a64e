"""A reload and backfill (README "Backfill"): `hikd run` with the real vendor library in its
device host and hikd.sim devices. A device added by a reload has the alarms of its gaps read
back from its log from then on, as one configured at the start has; a device the reload
removes is dropped from backfill with its record, so the time it spends out of the
configuration is not read back should it come back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hikd.sim import SimDeviceConfig, Simulator
from hikd.state import StateStore
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess
from tests.hosts.configs import daemon_lines, device_lines
from tests.hosts.test_device_hosts import events_of
from tests.hosts.test_reload import hikd
from tests.support import wait_until

KEEP, NEW = "door", "shed"


def write_config(path: Path, sim: Simulator, names: list[str]) -> None:
    lines = [*daemon_lines(path), "[alarms.hold_s]", "default = 3"]
    for name in names:
        lines += [*device_lines(sim, name), "reconnect_min_s = 0.2"]
    path.write_text("\n".join(lines) + "\n")


def heard_until(state: Path, name: str) -> Any:
    """The record of until when `name` was heard (what the next gap starts from)."""
    with StateStore(state / "state.sqlite", read_only=True) as store:
        return store.get("backfill", f"{name}/heard_until")


def test_a_device_added_by_a_reload_is_backfilled_and_a_removed_one_no_more(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator([SimDeviceConfig(name=n, password=SECRET) for n in (KEEP, NEW)]).start()
    try:
        config = tmp_path / "hikd.toml"
        state = tmp_path / "state"
        (tmp_path / "run").mkdir()
        write_config(config, sim, [KEEP])
        daemon = run_hikd(config, sim)

        def armed(name: str) -> int:
            return len(events_of(state, kind="health", type="armed", device=name))

        wait_until(lambda: armed(KEEP) == 1, f"{KEEP} armed", START_TIMEOUT_S)
        write_config(config, sim, [KEEP, NEW])
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == f"reloaded: added {NEW}; 1 untouched"
        wait_until(lambda: armed(NEW) == 1, f"{NEW} armed", START_TIMEOUT_S)

        # Its link breaks, it raises alarms nobody hears, the link comes back.
        device = sim.device(NEW)
        device.alert_stream_status = 500
        device.close_streams()
        wait_until(
            lambda: bool(events_of(state, type="arming_reconnecting", state="start", device=NEW)),
            "the broken stream noticed",
            30,
        )
        missed = [
            device.trigger("VMD", channel=1),
            device.trigger("VMD", channel=1, state="inactive"),
            device.trigger("IO", channel=1),
        ]
        assert all(s.streams == 0 for s in missed)
        device.alert_stream_status = 200

        wait_until(
            lambda: bool(events_of(state, kind="health", type="backfill", device=NEW)),
            "the added device's backfill",
            60,
        )
        (report,) = events_of(state, kind="health", type="backfill", device=NEW)
        assert report["attributes"]["backfilled"] == 2, report
        motion = events_of(state, kind="alarm", type="motion", device=NEW)
        assert [e["state"] for e in motion] == ["start", "stop"]
        io = events_of(state, kind="alarm", type="io", device=NEW)
        assert [e["state"] for e in io] == ["pulse"]
        assert all(e["attributes"]["backfilled"] is True for e in [*motion, *io])
        wait_until(lambda: heard_until(state, NEW) is not None, "its record", 30)

        # Removed: no record left to read back from when it comes back.
        assert heard_until(state, KEEP) is not None
        write_config(config, sim, [NEW])
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"reloaded: removed {KEEP}; 1 untouched"
        assert heard_until(state, KEEP) is None
        assert heard_until(state, NEW) is not None
        assert daemon.process.poll() is None
    finally:
        sim.stop()
