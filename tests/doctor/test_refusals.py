"""The doctor's memory of refused passwords: what it keeps, and that it never gets in the way."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hikd.config import DeviceConfig
from hikd.devices.lockout import NextTry
from hikd.doctor import refusals


def device(password: str) -> DeviceConfig:
    # Passwords of letters that are not hex digits: the file holds hex digests and salts.
    return DeviceConfig.model_validate({"name": "nvr", "host": "10.0.0.5", "password": password})


def plan(left: int | None, unlock_in_s: int | None = None) -> NextTry:
    unlock_at = datetime.now(UTC) + timedelta(seconds=unlock_in_s) if unlock_in_s else None
    return NextTry(None, left, unlock_in_s, unlock_at, "")


def test_only_the_refused_password_is_held_back_and_only_when_tries_are_low(
    tmp_path: Path,
) -> None:
    refusals.remember(tmp_path, device("wrong"), plan(3))
    assert refusals.must_not_try(tmp_path, device("wrong")) is None  # 3 left: one more is fine
    refusals.remember(tmp_path, device("wrong"), plan(1))
    assert "1 more try" in (refusals.must_not_try(tmp_path, device("wrong")) or "")
    assert refusals.must_not_try(tmp_path, device("other")) is None
    refusals.remember(tmp_path, device("wrong"), plan(None, unlock_in_s=1800))
    assert "unlocks at" in (refusals.must_not_try(tmp_path, device("wrong")) or "")
    refusals.remember(tmp_path, device("wrong"), plan(None, unlock_in_s=None))
    assert refusals.must_not_try(tmp_path, device("wrong")) is None  # the device said nothing
    refusals.remember(tmp_path, device("wrong"), plan(0))
    assert b"wrong" not in (tmp_path / refusals.FILE_NAME).read_bytes()
    refusals.forget(tmp_path, device("wrong"))
    assert refusals.must_not_try(tmp_path, device("wrong")) is None


def test_a_state_dir_it_cannot_write_means_no_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    refusals.remember(blocked / "state", device("wrong"), plan(1))
    assert refusals.must_not_try(blocked / "state", device("wrong")) is None
    (tmp_path / refusals.FILE_NAME).write_text("{not json")
    assert refusals.must_not_try(tmp_path, device("wrong")) is None


def test_a_damaged_record_means_no_memory_not_a_traceback(tmp_path: Path) -> None:
    # A file edited by hand or written by another version: each field of the record wrong.
    refusals.remember(tmp_path, device("wrong"), plan(1))
    path = tmp_path / refusals.FILE_NAME
    good = json.loads(path.read_text())
    key = next(iter(good))
    for field, bad in (
        ("salt", "not hex"),
        ("salt", 7),
        ("unlock_at", "soon"),
        ("unlock_at", "2099-01-01T00:00:00"),
        ("retries_left", "1"),
    ):
        path.write_text(json.dumps({key: {**good[key], field: bad}}))
        assert refusals.must_not_try(tmp_path, device("wrong")) is None, (field, bad)
