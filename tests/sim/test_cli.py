"""`hikd sim` configuration and command line: files, options and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hikd.errors import ConfigError
from hikd.sim.cli import main
from hikd.sim.config import SimDeviceConfig, load_sim_config, numbered

SAMPLE = Path(__file__).parents[2] / "hikd" / "sim" / "sim.sample.toml"


def test_the_sample_config_loads() -> None:
    nvr, doorbell = load_sim_config(SAMPLE)
    assert (nvr.name, nvr.port, nvr.ip_channels) == ("nvr", 8080, 8)
    assert [d.status for d in nvr.disks] == ["ok", "error"]
    assert doorbell.https and doorbell.session_id_version == "2"
    assert nvr.utc_offset_minutes == doorbell.utc_offset_minutes == 60  # top-level default


def test_count_makes_numbered_devices(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text('name = "cam"\ncount = 3\nport = 9000\nserial_number = "DS-X"\n')
    devices = load_sim_config(path)
    assert [d.name for d in devices] == ["cam-01", "cam-02", "cam-03"]
    assert [d.port for d in devices] == [9000, 9001, 9002]
    assert [d.serial_number for d in devices] == ["DS-X01", "DS-X02", "DS-X03"]


def test_derived_identities_differ_per_device() -> None:
    base = SimDeviceConfig(name="nvr", mac_address="44:19:b6:00:00:ff")
    a, b = (numbered(base, i, 2) for i in range(2))
    assert a.serial_number != b.serial_number
    assert (a.mac_address, b.mac_address) == ("44:19:b6:00:00:ff", "44:19:b6:00:01:00")


def test_a_bad_key_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text('[[device]]\nname = "a"\nip_channels = -1\n[[device]]\nname = "b"\nbogus = 1\n')
    with pytest.raises(ConfigError) as err:
        load_sim_config(path)
    assert err.value.problems[0].endswith(
        "device[0]: ip_channels: Input should be greater than or equal to 0"
    )
    assert "device[1]: bogus" in err.value.problems[1]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "missing.toml")]) == 1
    assert main(["--port", "0", "--lock-after", "0"]) == 1
    assert main(["trigger", "--port", "1"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("hikd sim: ") and "no such file" in lines[0]
    assert "lock_after" in lines[1]
    assert "no simulator listening on 127.0.0.1:1" in lines[2]
