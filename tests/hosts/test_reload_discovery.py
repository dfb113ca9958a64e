"""A reload and Home Assistant (README "Reloading the configuration"): `hikd run` with the
real vendor library, hikd.sim devices and a real mosquitto. A device the reload removes (or
disables) leaves Home Assistant: every discovery config announced for it is emptied and its
retained topics (availability, health, alarm states) are cleared on the broker, also after a
reconnect, and at the reload itself when no device it adds may be the removed one renamed;
an added device is announced; the untouched one keeps all it had.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess
from tests.hosts.configs import daemon_lines, device_lines
from tests.hosts.test_device_hosts import events_of
from tests.hosts.test_reload import hikd
from tests.mosquitto import Mosquitto, Subscriber, retained
from tests.support import free_port, wait_until

KEEP, GONE, OFF, NEW = "door", "porch", "attic", "shed"


def write_config(
    path: Path,
    sim: Simulator,
    mqtt: Mosquitto,
    names: list[str],
    disabled: str = "",
    renamed: dict[str, str] | None = None,
) -> None:
    """`renamed`: name in the file -> the simulated device it is (its password in the file)."""
    lines = [
        *daemon_lines(path),
        "[sinks.mqtt]",
        f'host = "{mqtt.host}"',
        f"port = {mqtt.port}",
        'client_id = "hikd-reload-test"',
        'instance_id = "test"',
    ]
    for name in names:
        lines += [
            *device_lines(sim, name, as_device=(renamed or {}).get(name)),
            *(["enabled = false"] if name == disabled else []),
            *([f'password = "{SECRET}"'] if name in (renamed or {}) else []),
        ]
    path.write_text("\n".join(lines) + "\n")


def announced(mqtt: Mosquitto) -> dict[str, set[str]]:
    """Serial -> the discovery topics the broker holds for it (non-empty configs)."""
    found: dict[str, set[str]] = {}
    for topic, message in retained(mqtt, "homeassistant/#").items():
        if topic.endswith("/config") and message.payload:
            device = json.loads(message.payload)["device"]
            serial = device.get("serial_number") or device.get("via_device") or ""
            found.setdefault(serial, set()).add(topic)
    return found


def held(mqtt: Mosquitto, name: str) -> set[str]:
    """The retained topics under hikd/<name>/."""
    return {t for t, m in retained(mqtt, f"hikd/{name}/#").items() if m.payload}


def test_a_reload_removes_the_devices_it_removes_from_home_assistant(
    tmp_path: Path,
    broker: Mosquitto,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    names = [KEEP, GONE, OFF, NEW]
    sim = Simulator([SimDeviceConfig(name=n, password=SECRET) for n in names]).start()
    try:
        serial = {n: sim.device(n).config.serial_number for n in names}
        assert len(set(serial.values())) == len(names) and all(serial.values())
        config = tmp_path / "hikd.toml"
        state = tmp_path / "state"
        (tmp_path / "run").mkdir()
        write_config(config, sim, broker, [KEEP, GONE, OFF])
        daemon = run_hikd(config, sim)
        for name in (KEEP, GONE, OFF):
            wait_until(
                lambda n=name: bool(events_of(state, kind="health", type="armed", device=n)),
                f"{name} armed",
                START_TIMEOUT_S,
            )
        sim.device(GONE).trigger("VMD", channel=1)
        wait_until(
            lambda: f"hikd/{GONE}/1/motion" in held(broker, GONE), "the removed one's motion", 30
        )
        wait_until(
            lambda: {KEEP, GONE, OFF} <= {n for n in names if serial[n] in announced(broker)},
            "the devices announced",
            30,
        )
        kept_before = announced(broker)[serial[KEEP]]
        assert held(broker, GONE) and held(broker, OFF)

        write_config(config, sim, broker, [KEEP, OFF, NEW], disabled=OFF)
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == (
            f"reloaded: added {NEW}; removed {GONE}, {OFF}; 1 untouched"
        ), done.stdout

        def gone() -> bool:
            now = announced(broker)
            return (
                serial[GONE] not in now
                and serial[OFF] not in now
                and serial[NEW] in now
                and not held(broker, GONE)
                and not held(broker, OFF)
            )

        wait_until(gone, "the removed devices gone from the broker, the added one there", 30)
        assert announced(broker)[serial[KEEP]] >= kept_before  # none of its entities withdrawn
        assert held(broker, KEEP) >= {f"hikd/{KEEP}/availability", f"hikd/{KEEP}/1/motion"}
        assert retained(broker, "hikd/status")["hikd/status"].payload == b"online"

        # After a reconnect (everything retained is published again) they stay gone.
        broker.restart()
        wait_until(
            lambda: bool(retained(broker, "hikd/status")), "hikd republished after the restart", 30
        )
        wait_until(lambda: serial[NEW] in announced(broker), "republished discovery", 30)
        assert gone()
        assert daemon.process.poll() is None
    finally:
        sim.stop()


def test_a_device_removed_while_hikd_was_stopped_leaves_at_the_next_start(
    tmp_path: Path,
    broker: Mosquitto,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = Simulator([SimDeviceConfig(name=n, password=SECRET) for n in (KEEP, GONE)]).start()
    try:
        serial = {n: sim.device(n).config.serial_number for n in (KEEP, GONE)}
        config = tmp_path / "hikd.toml"
        (tmp_path / "run").mkdir()
        write_config(config, sim, broker, [KEEP, GONE])
        first = run_hikd(config, sim)
        wait_until(lambda: set(serial.values()) <= set(announced(broker)), "both announced", 60)
        first.stop()
        assert first.process.returncode == 0, first.output()

        write_config(config, sim, broker, [KEEP])
        second = run_hikd(config, sim)
        wait_until(
            lambda: serial[GONE] not in announced(broker) and not held(broker, GONE),
            "the removed device gone from the broker",
            60,
        )
        assert serial[KEEP] in announced(broker)
        assert second.process.poll() is None
    finally:
        sim.stop()


def test_a_device_renamed_in_the_file_keeps_its_entities(
    tmp_path: Path,
    broker: Mosquitto,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    """Renamed: the reload removes the old name and adds the new one, the same device. Its
    entities (tied to its serial) are never withdrawn, so Home Assistant keeps them and their
    history; they now point at the new name's topics, and the old name's are cleared."""
    sim = Simulator([SimDeviceConfig(name=n, password=SECRET) for n in (KEEP, GONE)]).start()
    try:
        serial = sim.device(GONE).config.serial_number
        config = tmp_path / "hikd.toml"
        (tmp_path / "run").mkdir()
        write_config(config, sim, broker, [KEEP, GONE])
        daemon = run_hikd(config, sim)
        wait_until(lambda: serial in announced(broker), "announced", START_TIMEOUT_S)
        wait_until(lambda: f"hikd/{GONE}/availability" in held(broker, GONE), "online", 30)
        wait_until(
            lambda: any("_health_arming/" in t for t in announced(broker).get(serial, ())),
            "its arming concern announced",
            30,
        )
        before = announced(broker)[serial]
        with Subscriber(broker, ["homeassistant/#"]) as ha:
            write_config(config, sim, broker, [KEEP, "garden"], renamed={"garden": GONE})
            done = hikd("reload", config)
            assert done.returncode == 0, done.stderr + daemon.output()
            assert done.stdout.strip() == f"reloaded: added garden; removed {GONE}; 1 untouched"
            wait_until(
                lambda: (
                    not held(broker, GONE) and "hikd/garden/availability" in held(broker, "garden")
                ),
                "the old name's topics cleared, the new one online",
                30,
            )
            ha.publish("homeassistant/test-marker", "x")
            ha.wait_topic("homeassistant/test-marker")
            withdrawn = [m.topic for m in ha.messages if serial in m.topic and not m.payload]
        assert withdrawn == []
        assert announced(broker)[serial] >= before
        found = retained(broker, "homeassistant/#")
        states = {
            json.loads(m.payload).get("state_topic", "")
            for t, m in found.items()
            if serial in t and m.payload
        }
        assert not [t for t in states if t.startswith(f"hikd/{GONE}/")], states
    finally:
        sim.stop()


def test_removed_devices_leave_at_the_reload_though_the_added_ones_never_log_in(
    tmp_path: Path,
    broker: Mosquitto,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    """The reload adds a device that never answers, at an address of its own: it cannot be a
    removed device renamed, so nothing waits for it; and one at a removed device's address
    whose login is refused (a wrong password): waited for until it says so. Nothing else
    happens on the site, and both removed devices leave Home Assistant at once (before, they
    waited 60 s for the added devices' serials, then for whatever event came next)."""
    names = [KEEP, GONE, OFF]
    sim = Simulator([SimDeviceConfig(name=n, password=SECRET) for n in names]).start()
    try:
        serial = {n: sim.device(n).config.serial_number for n in names}
        config = tmp_path / "hikd.toml"
        state = tmp_path / "state"
        (tmp_path / "run").mkdir()
        write_config(config, sim, broker, names)
        daemon = run_hikd(config, sim)
        wait_until(lambda: set(serial.values()) <= set(announced(broker)), "announced", 60)
        wait_until(lambda: bool(held(broker, GONE) and held(broker, OFF)), "their topics", 30)

        text = config.read_text()
        start = text.index(f'name = "{GONE}"') - len("[[devices]]\n")  # KEEP's stays
        config.write_text(
            text[:start]
            + "\n".join(
                [
                    "[[devices]]",
                    'name = "dead"',
                    'host = "127.0.0.1"',
                    f"port = {free_port()}",
                    'password = "unused"',
                    *device_lines(sim, "garden", as_device=OFF),
                    'password = "Not-The-Password-1"',
                ]
            )
            + "\n"
        )
        done = hikd("reload", config)
        assert done.returncode == 0, done.stderr + daemon.output()
        assert done.stdout.strip() == (
            f"reloaded: added dead, garden; removed {GONE}, {OFF}; 1 untouched"
        ), done.stdout
        wait_until(
            lambda: bool(events_of(state, kind="health", type="auth_failed", device="garden")),
            "garden's refused login",
            30,
        )
        wait_until(
            lambda: not ({serial[GONE], serial[OFF]} & set(announced(broker))),
            "the removed devices' entities withdrawn",
            30,
        )
        assert not held(broker, GONE) and not held(broker, OFF)
        assert serial[KEEP] in announced(broker)
        assert sim.device(OFF).bad_tries("admin") <= 1  # one try, never a lockout
    finally:
        sim.stop()
