"""Each built-in sink's folder holds a sample section (hikd/sinks/<name>/sample.toml) that
its README links to: it must stay a valid section of that sink."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hikd.sinks.registry import validate_sinks

SINKS = Path(__file__).resolve().parents[2] / "hikd" / "sinks"


@pytest.mark.parametrize("name", ["disk", "mqtt", "syslog"])
def test_the_sample_section_is_valid(name: str, tmp_path: Path) -> None:
    folder = SINKS / name
    assert (folder / "README.md").is_file()
    sections = tomllib.loads((folder / "sample.toml").read_text(encoding="utf-8"))["sinks"]
    assert list(sections) == [name]
    section = sections[name]
    if "password_file" in section:  # it must exist; the sample names /etc/hikd/...
        secret = tmp_path / "password"
        secret.write_text("secret\n")
        section["password_file"] = str(secret)
    validate_sinks({name: section})
