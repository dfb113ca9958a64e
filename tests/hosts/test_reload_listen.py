"""A reload and who may push (README "Reloading the configuration"): `hikd run` with the real
vendor library in its device host, hikd.sim devices that post from their own addresses, and
a ``[[listen]]`` port without an ``allowed`` list, so the devices' addresses are the
allow-list. A device added by a reload is let in at once (its pushes reach its host and the
sinks), a removed one is shut out (cut off before its request is read), and a listen port
that changes says that it needs a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import SimAlert
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess
from tests.hosts.configs import daemon_lines, device_lines
from tests.hosts.test_device_hosts import events_of
from tests.hosts.test_reload import hikd
from tests.support import free_port, wait_until

KEEP, GONE, NEW = "door", "porch", "shed"
ADDRESS = {KEEP: "127.0.0.31", GONE: "127.0.0.32", NEW: "127.0.0.33"}


def write_config(path: Path, sim: Simulator, names: list[str], listen: int) -> None:
    lines = [
        *daemon_lines(path),
        "[[listen]]",
        'address = "127.0.0.1"',
        f"port = {listen}",
    ]
    for name in names:
        lines += [*device_lines(sim, name), "arm = false"]
    path.write_text("\n".join(lines) + "\n")


def test_a_reload_lets_added_devices_push_and_shuts_removed_ones_out(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator(
        [SimDeviceConfig(name=n, password=SECRET, host=a) for n, a in ADDRESS.items()]
    ).start()
    try:
        config = tmp_path / "hikd.toml"
        state = tmp_path / "state"
        (tmp_path / "run").mkdir()
        port = free_port()
        write_config(config, sim, [KEEP, GONE], port)
        daemon = run_hikd(config, sim)
        for name in (KEEP, GONE):
            wait_until(
                lambda n=name: bool(events_of(state, kind="health", type="online", device=n)),
                f"{name} online",
                START_TIMEOUT_S,
            )

        def push(name: str, kind: str) -> bool:
            """Whether the front took a push of `name` (answered 200)."""
            alert = SimAlert(type=kind)
            result = sim.device(name).push_to("127.0.0.1", port, alert, source=ADDRESS[name])
            return result.status == 200

        def alarms(name: str, kind: str) -> list[object]:
            return events_of(state, kind="alarm", type=kind, device=name)

        assert push(GONE, "linedetection")
        wait_until(lambda: bool(alarms(GONE, "line_crossing")), "the push on disk", 30)
        assert not push(NEW, "linedetection")  # not configured yet: not allowed

        write_config(config, sim, [KEEP, NEW], port)
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        # Not "needs a restart ...: listen": the allow-list it takes from the devices follows.
        assert done.stdout.strip() == f"reloaded: added {NEW}; removed {GONE}; 1 untouched"

        assert push(NEW, "fielddetection")
        wait_until(lambda: bool(alarms(NEW, "intrusion")), "the added device's push on disk", 30)
        assert push(KEEP, "fielddetection")
        wait_until(lambda: bool(alarms(KEEP, "intrusion")), "the untouched one's push", 30)
        assert not push(GONE, "fielddetection")
        wait_until(
            lambda: any(
                e["attributes"]["sender"] == ADDRESS[GONE]
                for e in events_of(state, kind="health", type="listen_refused")
            ),
            "the removed device's push refused",
            30,
        )
        assert not alarms(GONE, "intrusion")

        # A new port cannot be taken live: said, and the old port keeps working.
        moved = free_port()
        write_config(config, sim, [KEEP, NEW], moved)
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (
            "reloaded: no device changed; needs a restart to take effect (not applied): "
            "listen.0.port"
        )
        assert push(NEW, "linedetection")
        wait_until(lambda: bool(alarms(NEW, "line_crossing")), "a push to the old port", 30)
        assert daemon.process.poll() is None
    finally:
        sim.stop()
