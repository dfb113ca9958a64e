"""The C alarm callback for the tests: built with the Makefile's own rule when missing or
older than its source (as `make test` does), so a run of pytest alone tests it too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hikd.sdk import alarm_shim
from hikd.sdk.alarm_shim import PY_CALLBACK_ENV, SHIM_PATH

ROOT = Path(__file__).resolve().parents[1]
SOURCE = SHIM_PATH.with_name("alarm_shim.c")
ROUTES = ["c", "python"]


def ensure_shim() -> None:
    """Build libhikd_alarms.so if it is missing or stale; fail the test if that fails."""
    if SHIM_PATH.is_file() and SHIM_PATH.stat().st_mtime >= SOURCE.stat().st_mtime:
        return
    result = subprocess.run(
        ["make", "--no-print-directory", "shim"], cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"make shim failed (run make test):\n{result.stdout}{result.stderr}")
    alarm_shim._load.cache_clear()


def use_route(route: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The alarm callback route for what starts after this: the C one or the Python one
    (device hosts started later inherit the environment)."""
    if route == "python":
        monkeypatch.setenv(PY_CALLBACK_ENV, "1")
    else:
        monkeypatch.delenv(PY_CALLBACK_ENV, raising=False)
        ensure_shim()
