"""Sink discovery by entry point, config validation per section, and a third-party sink.

The example plugin (tests/fixtures/sink_plugin) is made visible the way an installed
distribution is: a ``.dist-info`` directory with its ``entry_points.txt`` (generated from
the plugin's own pyproject.toml) on ``sys.path``. That is real entry-point discovery by
``importlib.metadata``, without pip touching the test environment.
"""

from __future__ import annotations

import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import Outbox
from hikd.errors import ConfigError
from hikd.events import DeviceRef, Event
from hikd.sinks.base import SinkContext
from hikd.sinks.disk.sink import DiskSink
from hikd.sinks.registry import available_sinks, build_sinks, validate_sinks

PLUGIN = Path(__file__).parents[1] / "fixtures" / "sink_plugin"
CAM = DeviceRef("cam-1", "DS-2CD2043G2", "192.0.2.7:8000")


def install_dist_info(
    site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]]
) -> None:
    """What pip leaves in site-packages for entry-point discovery."""
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines: list[str] = []
    for group, points in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in points.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site directory on sys.path holding the example plugin's distribution."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    install_dist_info(site, project["name"], project["version"], project["entry-points"])
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PLUGIN))  # the package itself, as an editable install
    try:
        yield site
    finally:
        for module in [m for m in sys.modules if m.partition(".")[0] == "hikd_sink_example"]:
            del sys.modules[module]


@pytest.fixture
def contexts(tmp_path: Path) -> Callable[[str], SinkContext]:
    def context(name: str) -> SinkContext:
        state = tmp_path / "state" / name
        state.mkdir(parents=True, exist_ok=True)  # the daemon creates it
        return SinkContext(name=name, state_dir=state, extra={"version": "test"})

    return context


def problems(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return error.value.problems


def test_the_builtin_disk_sink_is_registered() -> None:
    assert available_sinks()["disk"].value == "hikd.sinks.disk.sink:DiskSink"


def test_a_plugin_is_found_by_its_entry_point(site: Path) -> None:
    assert available_sinks()["example"].value == "hikd_sink_example:ExampleSink"


def test_events_reach_a_plugin_through_the_registry_and_the_bus(
    site: Path,
    contexts: Callable[[str], SinkContext],
    tmp_path: Path,
) -> None:
    sinks = build_sinks({"example": {"prefix": "got"}, "disk": {"enabled": False}}, contexts)
    assert [name for name, _ in sinks] == ["example"]
    assert type(sinks[0][1]).__name__ == "ExampleSink"
    outbox = Outbox(tmp_path / "outbox.sqlite")
    bus = EventBus(outbox, sinks)
    written = tmp_path / "state" / "example" / "example.txt"
    try:
        bus.start()
        for i in range(20):
            bus.publish(Event(kind="alarm", type="io", state="start", device=CAM, id=f"ev-{i:08d}"))
        deadline = time.monotonic() + 15
        while bus.stats()["sinks"]["example"]["delivered"] < 20 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        bus.stop()
        outbox.close()
    assert written.read_text().splitlines() == [f"got ev-{i:08d} alarm io" for i in range(20)]


def test_an_unknown_sink_lists_the_known_ones(contexts: Callable[[str], SinkContext]) -> None:
    with pytest.raises(ConfigError) as error:
        build_sinks({"kafka": {}}, contexts)
    [line] = problems(error)
    assert line.startswith("sinks.kafka: unknown sink 'kafka' (known sinks: ")
    assert "disk" in line


def test_each_section_is_validated_by_its_sinks_model(
    site: Path,
    contexts: Callable[[str], SinkContext],
) -> None:
    with pytest.raises(ConfigError) as error:
        build_sinks(
            {
                "example": {"prefix": "", "colour": "red"},
                "disk": {"max_bytes": 0, "fsync": "sometimes"},
            },
            contexts,
        )
    lines = problems(error)
    assert len(lines) == 4
    assert any(line.startswith("sinks.example.prefix: ") for line in lines)
    assert any(line.startswith("sinks.example.colour: unknown key") for line in lines)
    assert any(line.startswith("sinks.disk.max_bytes: ") for line in lines)
    assert "sinks.disk.fsync: must be true or false (got 'sometimes')" in lines


def test_validate_sinks_reports_every_section_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        validate_sinks({"disk": {"max_files": -1}, "nosuch": {}, "other": {"enabled": "no"}})
    lines = problems(error)
    assert [line.split(":")[0] for line in lines] == [
        "sinks.disk.max_files",
        "sinks.nosuch",
        "sinks.other.enabled",
    ]
    validate_sinks({"disk": {"max_files": 3}, "off": {"type": "nosuch", "enabled": False}})


def test_type_configures_the_same_sink_twice(
    contexts: Callable[[str], SinkContext], tmp_path: Path
) -> None:
    sinks = build_sinks({"disk": {}, "archive": {"type": "disk", "max_files": 100}}, contexts)
    assert [name for name, _ in sinks] == ["disk", "archive"]
    archive = sinks[1][1]
    assert isinstance(archive, DiskSink)
    assert archive.config.max_files == 100
    assert archive.current == tmp_path / "state" / "archive" / "events.jsonl"
    with pytest.raises(ConfigError) as error:
        build_sinks({"archive": {"type": "tape"}}, contexts)
    assert problems(error)[0].startswith("sinks.archive.type: unknown sink 'tape'")


def test_a_broken_plugin_is_a_clear_config_error(site: Path) -> None:
    install_dist_info(
        site,
        "hikd-sink-broken",
        "1.0",
        {
            "hikd.sinks": {
                "missing": "hikd_sink_example:NoSuchSink",
                "notasink": "hikd_sink_example:ExampleConfig",
            }
        },
    )
    with pytest.raises(ConfigError) as error:
        validate_sinks({"missing": {}, "notasink": {}})
    missing, notasink = problems(error)
    assert missing.startswith(
        "sinks.missing: cannot load sink 'missing' from hikd_sink_example:NoSuchSink "
        "(AttributeError: "
    )
    assert missing.endswith("reinstall the package that provides it")
    assert notasink == (
        "sinks.notasink: hikd_sink_example:ExampleConfig is not a hikd sink "
        "(missing Config (a pydantic model), open, send, close)"
    )
