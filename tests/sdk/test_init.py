"""Starting the vendor library: the init runs without netlink sockets (hikd/sdk/no_netlink.py).

The time it saves (3.2 s -> ~0.1 s) is measured in bench/bench_init.py; these tests check
the behaviour that causes it, with the real library in a fresh process.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import threading

import pytest

from hikd.sdk.no_netlink import call_without_netlink


def _open_netlink() -> None:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()


def test_the_init_thread_and_its_threads_cannot_open_netlink_sockets() -> None:
    def in_a_child_thread() -> None:
        errors: list[OSError] = []

        def child() -> None:
            try:
                _open_netlink()
            except OSError as error:
                errors.append(error)

        thread = threading.Thread(target=child)
        thread.start()
        thread.join()
        assert [e.errno for e in errors] == [errno.EAFNOSUPPORT]

    with pytest.raises(OSError) as refused:
        call_without_netlink(_open_netlink)
    assert refused.value.errno == errno.EAFNOSUPPORT
    call_without_netlink(in_a_child_thread)


def test_other_threads_keep_netlink() -> None:
    call_without_netlink(lambda: None)
    _open_netlink()  # this thread (and every other hikd thread) is not filtered


def test_the_call_s_result_and_errors_reach_the_caller() -> None:
    assert call_without_netlink(lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):
        call_without_netlink(lambda: 1 // 0)


def test_the_library_skips_its_adapter_listing() -> None:
    """Without the filter the library prints `loop[2] find N mac and M ip` after listing the
    adapters over netlink (and waits 3 s for its receive timeout); with it, the listing
    fails at once and the library still initialises."""
    script = (
        "from hikd.sdk.library import Library\n"
        "lib = Library.open()\n"
        "print('version', lib.version())\n"
        "lib.cleanup()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("version ")
    assert "find" not in result.stderr or "mac and" not in result.stderr, result.stderr
