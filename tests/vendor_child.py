"""Tests that load the vendor library run in a child pytest process, so that a crash of the
library (a SIGSEGV in one of its own threads, as once killed a whole suite run during
tests/listeners/test_backfill.py) fails that test with a clear message instead of pytest.

Which tests: every test that uses the `sdk` fixture (directly or through another fixture)
and every test marked `vendor_library`. They run one at a time, in the suite's order, in one
child process that keeps its `Library` (one `NET_DVR_Init`) until the suite ends or the child
dies; then the next such test starts a new child. The parent checks after every other test
that the library is not mapped into its own process (a test that loads it must say so).

The child is ``python -m pytest`` over the same files with ``HIKD_TEST_VENDOR_CHILD`` set to
a file listing the tests it may run; the parent asks for one test at a time on a pipe and
logs the reports the child sends back (``pytest_report_to_serializable``, as pytest-xdist
does), so the terminal, ``-x`` and the summary count them like any other test.
``--vendor-in-process`` runs them in pytest's own process instead (for a debugger).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from _pytest.reports import TestReport
from _pytest.runner import CallInfo

CHILD_ENV = "HIKD_TEST_VENDOR_CHILD"
MARK = "vendor_library"
LIBRARY_FILE = "libhcnetsdk"
# A child that sends nothing this long after its test's own timeout is hung: killed.
HANG_MARGIN_S = 60.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--vendor-in-process",
        action="store_true",
        help="run the tests that load the vendor library in pytest's own process",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARK}: loads the vendor library without the `sdk` fixture (runs in the child)",
    )
    wanted = os.environ.get(CHILD_ENV)
    if wanted:
        config.pluginmanager.register(Child(config, Path(wanted)), "vendor-child")
    elif not config.getoption("--vendor-in-process"):
        config.pluginmanager.register(Parent(config), "vendor-parent")


def needs_vendor_library(item: pytest.Item) -> bool:
    return "sdk" in getattr(item, "fixturenames", ()) or item.get_closest_marker(MARK) is not None


def library_mapped() -> bool:
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        return any(LIBRARY_FILE in line for line in maps)


class Parent:
    """pytest's own process: hands the vendor library's tests to a child."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.child: Worker | None = None
        self.started = 0
        self.loaded_by: str | None = None  # the first in-process test found to load it

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            if needs_vendor_library(item):
                # The child applies the test's timeout; here the wait for it is bounded by
                # that timeout and a margin (`Worker.run`), not by pytest-timeout's alarm.
                item.stash[TIMEOUT_KEY] = _timeout_of(item)
                item.add_marker(pytest.mark.timeout(0), append=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        if not needs_vendor_library(item):
            return None  # the default protocol runs it here
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        if self.child is None:
            self.child = self._start_child(item)
        try:
            reports = list(self.child.run(item))
        except ChildDied as died:
            self.child = None
            reports = died.reports
        # The test before this one kept here what this one shares with it (its module's
        # fixtures, say): what the next test does not need is torn down now, as pytest's
        # own protocol does after each test.
        teardown = CallInfo.from_call(
            lambda: item.session._setupstate.teardown_exact(nextitem), when="teardown"
        )
        if teardown.excinfo is not None:
            reports.append(item.ihook.pytest_runtest_makereport(item=item, call=teardown))
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        yield
        if self.loaded_by is None and not needs_vendor_library(item) and library_mapped():
            self.loaded_by = item.nodeid
            pytest.fail(
                "this test loaded the vendor library into pytest's own process, where a crash "
                "of the library kills the whole run: use the `sdk` fixture or mark it "
                f"`{MARK}` (tests/vendor_child.py)",
                pytrace=False,
            )

    def pytest_sessionfinish(self) -> None:
        if self.child is not None:
            self.child.finish()
            self.child = None

    def _start_child(self, first: pytest.Item) -> Worker:
        session = first.session
        items = session.items[session.items.index(first) :]
        wanted = [i.nodeid for i in items if needs_vendor_library(i)]
        self.started += 1
        base = self.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
        folder = base / f"vendor-child-{self.started}"
        folder.mkdir()
        (folder / "tests.txt").write_text("\n".join(wanted) + "\n")
        return Worker.start(self.config, folder, [i.path for i in items if needs_vendor_library(i)])


TIMEOUT_KEY = pytest.StashKey[float]()


def _timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    value = marker.args[0] if marker is not None and marker.args else None
    if value is None:
        value = item.config.getoption("timeout", None) or item.config.getini("timeout") or 0
    return float(value)


class ChildDied(Exception):
    def __init__(self, reports: list[TestReport]) -> None:
        super().__init__("the vendor library's test process died")
        self.reports = reports


class Worker:
    """The parent's handle on one child: asks for a test, reads its reports."""

    def __init__(self, config: pytest.Config, process: subprocess.Popen[bytes], folder: Path,
                 commands: IO[bytes], reports: int) -> None:  # fmt: skip
        self.config = config
        self.process = process
        self.folder = folder
        self.commands = commands
        self.reports = reports
        self.buffer = b""

    @classmethod
    def start(cls, config: pytest.Config, folder: Path, paths: list[Path]) -> Worker:
        command_r, command_w = os.pipe()
        report_r, report_w = os.pipe()
        env = dict(os.environ, **{CHILD_ENV: str(folder / "tests.txt")})
        env["HIKD_TEST_VENDOR_PIPES"] = f"{command_r},{report_w}"
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        args += [f"--basetemp={folder / 'tmp'}", f"--rootdir={config.rootpath}"]
        if config.inipath is not None:
            args += ["-c", str(config.inipath)]
        args += [f"--tb={config.option.tbstyle}", f"--capture={config.option.capture}"]
        if config.option.showlocals:
            args.append("-l")
        args += list(dict.fromkeys(str(p) for p in paths))
        with open(folder / "output.log", "wb") as log:
            process = subprocess.Popen(
                args,
                cwd=config.invocation_params.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(command_r, report_w),
            )
        os.close(command_r)
        os.close(report_w)
        return cls(config, process, folder, os.fdopen(command_w, "wb", buffering=0), report_r)

    def run(self, item: pytest.Item) -> Iterator[TestReport]:
        """The reports of `item` as the child runs it; `ChildDied` when it dies meanwhile."""
        sent: list[TestReport] = []
        with contextlib.suppress(BrokenPipeError):  # it died before: the read below says how
            self.commands.write(item.nodeid.encode() + b"\n")
        bound = item.stash.get(TIMEOUT_KEY, 0.0) or 3600.0
        while True:
            message = self._read(bound + HANG_MARGIN_S)
            if message is None:
                raise ChildDied([*sent, *self._death_reports(item, sent)])
            if "report" in message:
                report = self.config.hook.pytest_report_from_serializable(
                    config=self.config, data=message["report"]
                )
                report.location = tuple(report.location)
                sent.append(report)
                yield report
            elif message.get("done") == item.nodeid:
                return
            elif "missing" in message:
                raise ChildDied([_report(item, "setup", "the child process did not collect it")])

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None when the child died or sent nothing for `timeout`."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.reports], [], [], left)[0]:
                self._kill(f"it sent nothing for {timeout:.0f} s")
                return None
            chunk = os.read(self.reports, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def _kill(self, why: str) -> None:
        with open(self.folder / "output.log", "a") as log:
            log.write(f"\n[killed by the parent: {why}]\n")
        self.process.kill()

    def _death_reports(self, item: pytest.Item, sent: list[TestReport]) -> list[TestReport]:
        code = self._wait_exit()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        tail = (self.folder / "output.log").read_text(errors="replace").splitlines()[-60:]
        text = (
            f"the process running the vendor library's tests (pid {self.process.pid}) died "
            f"during this test: {how}. A crash in the vendor library (or a hang past the "
            f"test's timeout) fails this test only; the next such test starts a new process.\n"
            f"Its last output ({self.folder / 'output.log'}):\n" + "\n".join(tail)
        )
        done = {r.when for r in sent}
        when = "setup" if "setup" not in done else "call" if "call" not in done else "teardown"
        reports = [_report(item, when, text)]
        if when != "teardown":
            reports.append(_report(item, "teardown", None))
        self._close()
        return reports

    def _wait_exit(self) -> int:
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._kill("it did not exit after closing its pipe")
            return self.process.wait()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.commands.close()
        with contextlib.suppress(OSError):
            os.close(self.reports)

    def finish(self) -> None:
        """No more tests: the child tears its fixtures down (the library's cleanup) and ends."""
        with contextlib.suppress(OSError):
            self.commands.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._kill("it did not end 60 s after the last test")
            self.process.wait()
        self._close()


def _report(item: pytest.Item, when: str, failure: str | None) -> TestReport:
    return TestReport(
        item.nodeid,
        item.location,
        {k: 1 for k in item.keywords},
        "failed" if failure else "passed",
        failure,
        when,  # type: ignore[arg-type]
    )


class Child:
    """The child process: runs the tests the parent asks for, in its order, and reports."""

    def __init__(self, config: pytest.Config, wanted: Path) -> None:
        self.config = config
        self.wanted = wanted.read_text().splitlines()
        commands, reports = os.environ["HIKD_TEST_VENDOR_PIPES"].split(",")
        self.commands = os.fdopen(int(commands), "rb")
        self.reports = os.fdopen(int(reports), "wb", buffering=0)
        self.crash_log = wanted.parent / "output.log"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self) -> None:
        # Python's traceback of every thread when the library crashes, where the parent
        # reads it (pytest's own faulthandler writes to an fd its capture may have taken).
        faulthandler.enable(open(self.crash_log, "a"), all_threads=True)  # noqa: SIM115

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        by_id = {item.nodeid: item for item in items}
        items[:] = [by_id[nodeid] for nodeid in self.wanted if nodeid in by_id]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        index = {item.nodeid: n for n, item in enumerate(session.items)}
        for line in self.commands:
            nodeid = line.decode().strip()
            if nodeid not in index:
                self._send({"missing": nodeid})
                continue
            n = index[nodeid]
            item = session.items[n]
            nextitem = session.items[n + 1] if n + 1 < len(session.items) else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            self._send({"done": nodeid})
        return True

    def pytest_runtest_logreport(self, report: TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self._send({"report": data})

    def _send(self, message: dict[str, Any]) -> None:
        self.reports.write(json.dumps(message).encode() + b"\n")
