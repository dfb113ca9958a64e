"""Configuration backups with the real vendor library against hikd.sim over ISAPI
(``GET /ISAPI/System/configurationData`` through the pass-through)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hikd.devices.capabilities.config_export import export_configuration
from hikd.devices.session import DeviceSession
from hikd.jobs.base import JobResult
from hikd.recorders.config_backup import (
    ConfigBackupConfig,
    ConfigBackupJob,
    apply_config_retention,
)
from hikd.sdk.library import Library
from hikd.sim import SimDeviceConfig, Simulator
from hikd.state import StateStore
from tests.standin.jobs import Events, job_context
from tests.support import device_config, logged_in

pytest_plugins = ["tests.standin.fixtures"]


@pytest.fixture
def nvr(
    sdk: Library, start_sim: Callable[..., Simulator]
) -> Iterator[tuple[Simulator, DeviceSession]]:
    sim = start_sim(SimDeviceConfig(name="nvr"))
    with logged_in(sdk, device_config(sim), Events()) as session:
        yield sim, session


def backup(
    session: DeviceSession, state: StateStore, out: Path, config: ConfigBackupConfig | None = None
) -> tuple[JobResult, Events]:
    ctx, events = job_context(session, state, out, job="configs")
    return ConfigBackupJob(config or ConfigBackupConfig()).run(ctx), events


def change_configuration(sim: Simulator, n: int) -> None:
    # The simulator's file is derived from serial and firmware: a new firmware string is a
    # new configuration.
    sim.devices[0].config.firmware_version = f"V5.0.{n}"


def test_export_is_the_devices_file_byte_for_byte(nvr: tuple[Simulator, DeviceSession]) -> None:
    sim, session = nvr
    assert export_configuration(session) == sim.devices[0].configuration_data()


def test_stored_once_then_only_when_it_changes(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore, tmp_path: Path
) -> None:
    sim, session = nvr
    first, events = backup(session, state_store, tmp_path)
    assert first.ok and first.details["stored"], first.summary
    (stored,) = (tmp_path / "nvr").glob("*.bin")
    served = sim.devices[0].configuration_data()
    assert stored.read_bytes() == served
    (event,) = events
    assert (event.kind, event.type) == ("file", "config_backup")
    assert event.attributes["sha256"] == hashlib.sha256(served).hexdigest()
    assert event.attributes["size"] == len(served)
    assert event.files == (str(stored),)

    again, events = backup(session, state_store, tmp_path)
    assert again.ok and not again.details["stored"]
    assert events == []
    assert len(list((tmp_path / "nvr").glob("*.bin"))) == 1

    change_configuration(sim, 1)
    changed, events = backup(session, state_store, tmp_path)
    assert changed.details["stored"]
    assert len(events) == 1
    assert Path(events[0].files[0]).read_bytes() == sim.devices[0].configuration_data()
    assert len(list((tmp_path / "nvr").glob("*.bin"))) == 2
    assert not list(tmp_path.rglob("*.part"))


def test_an_export_deleted_by_hand_is_stored_again(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore, tmp_path: Path
) -> None:
    _sim, session = nvr
    backup(session, state_store, tmp_path)
    for path in (tmp_path / "nvr").glob("*.bin"):
        path.unlink()
    result, events = backup(session, state_store, tmp_path)
    assert result.details["stored"] and len(events) == 1


def test_retention_keeps_the_newest_exports(
    nvr: tuple[Simulator, DeviceSession], state_store: StateStore, tmp_path: Path
) -> None:
    sim, session = nvr
    for n in range(4):
        change_configuration(sim, n)
        result, _events = backup(session, state_store, tmp_path, ConfigBackupConfig(keep=2))
        assert result.details["stored"]
    kept = sorted((tmp_path / "nvr").glob("*.bin"))
    assert len(kept) == 2
    assert kept[-1].read_bytes() == sim.devices[0].configuration_data()


def test_retention_by_age_never_deletes_the_newest(tmp_path: Path) -> None:
    old = time.time() - 10 * 86_400
    for name in ("20240101T000000Z.bin", "20240102T000000Z.bin", "20240103T000000Z.bin"):
        path = tmp_path / name
        path.write_bytes(name.encode())
        os.utime(path, (old, old))
    removed = apply_config_retention(tmp_path, keep=None, max_age_days=1)
    assert sorted(p.name for p in removed) == ["20240101T000000Z.bin", "20240102T000000Z.bin"]
    assert [p.name for p in tmp_path.glob("*.bin")] == ["20240103T000000Z.bin"]
