"""What C code writes to fd 2 becomes a log event; Python's own tracebacks stay visible.

Each case runs in a process of its own: the routing changes the process's fd 2. The vendor
library's real output is checked by `hikd run` in tests/cli/test_cli.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_native_output_is_a_json_log_line_and_a_traceback_is_still_shown() -> None:
    result = run(
        """
        import ctypes, logging, threading
        from hikd.logs import setup_logging
        from hikd.native_stderr import route_native_stderr

        setup_logging("info", "json")
        route_native_stderr()
        logged = threading.Event()
        seen = logging.Handler()
        seen.emit = lambda record: logged.set()
        logging.getLogger("hikd.vendor").addHandler(seen)
        # What the vendor library does: C writes on fd 2, Python knows nothing of them.
        libc = ctypes.CDLL(None)
        libc.dprintf(2, b"loop[2] find 2 mac and 3 ip\\n\\n")
        assert logged.wait(30)
        raise RuntimeError("boom")
        """
    )
    assert result.returncode == 1
    head, _, traceback = result.stderr.partition("Traceback (most recent call last)")
    events = [json.loads(line) for line in head.splitlines() if line.strip()]
    assert [e["event"] for e in events] == ["vendor library output"], result.stderr
    assert events[0]["output"] == "loop[2] find 2 mac and 3 ip"
    assert events[0]["logger"] == "hikd.vendor"
    assert "RuntimeError: boom" in traceback


def test_a_crash_in_c_still_shows_where_python_was() -> None:
    result = run(
        """
        import ctypes
        from hikd.logs import setup_logging
        from hikd.native_stderr import route_native_stderr

        setup_logging("info", "json")
        route_native_stderr()
        ctypes.string_at(0)
        """
    )
    assert result.returncode < 0
    assert "Fatal Python error: Segmentation fault" in result.stderr
    assert "line 8" in result.stderr  # ctypes.string_at(0)
