"""A crash of the vendor library in a test fails that test, not the suite (tests/vendor_child.py).

A small suite of its own, run by pytest in a subprocess: the real library is crashed in one
of its own threads by one nested POST to its listen server (README "The listen front"), the
way a SIGSEGV in a vendor thread once ended a whole run during test_backfill.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SUITE = textwrap.dedent(
    """
    import os
    import time

    import pytest

    from hikd.sdk.alarms import MessageCallback, start_listen
    from hikd.sim import hostile
    from tests.conftest import sdk
    from tests.support import free_port

    __all__ = ["sdk"]


    def test_before(sdk):
        assert sdk is not None


    def test_the_library_crashes(sdk):
        port = free_port()
        callback = MessageCallback(lambda raw: None, "listen", port)
        start_listen(sdk, "127.0.0.1", port, callback)
        hostile.send("127.0.0.1", port, hostile.post(hostile.nested_xml(2000)), source="127.0.0.2")
        time.sleep(60)


    def test_after(sdk):
        assert sdk is not None
        print("after in", os.getpid())


    def test_without_the_library():
        print("plain in", os.getpid())
    """
)


def run_suite(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir()
    (tmp_path / "conftest.py").write_text('pytest_plugins = ("tests.vendor_child",)\n')
    (tmp_path / "test_crash.py").write_text(SUITE)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("HIKD_TEST_VENDOR_CHILD", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *options],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_vendor_crash_fails_its_test_and_the_run_goes_on(tmp_path: Path) -> None:
    result = run_suite(tmp_path / "isolated")
    out = result.stdout
    assert "1 failed, 3 passed" in out, out + result.stderr
    assert "FAILED test_crash.py::test_the_library_crashes" in out
    assert "died during this test: signal SIGSEGV" in out
    # The tests after the crash ran in a new child; the one without the library in pytest.
    assert "PASSED test_crash.py::test_after" in out
    pids = dict(re.findall(r"^(plain|after) in (\d+)$", out, re.MULTILINE))
    assert pids["plain"] != pids["after"]


def test_in_one_process_the_same_crash_ends_the_run(tmp_path: Path) -> None:
    # What the child process prevents (and what happened before it): pytest itself dies.
    result = run_suite(tmp_path / "in-process", "--vendor-in-process")
    assert result.returncode == -signal.SIGSEGV, result.stdout + result.stderr
    assert "passed" not in result.stdout
