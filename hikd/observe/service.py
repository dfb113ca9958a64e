"""What the daemon starts to be watched: the board and its watch, the metrics endpoint and
the control socket of `hikd status`.

The daemon adds `watch()` to its sinks, then calls `start()` once the bus runs and `stop()`
before it stops the bus; the rest of this package stays out of the daemon's code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hikd.config import Config
from hikd.config.observe import SOCKET_NAME, runtime_dir
from hikd.files import make_dir
from hikd.logs import get_logger
from hikd.observe.board import EventBoard
from hikd.observe.control import ControlServer
from hikd.observe.job_runs import JobRuns
from hikd.observe.status import Rows, StatusReport
from hikd.observe.watch import WATCH_SINK, WatchSink

if TYPE_CHECKING:
    from hikd.observe.metrics import MetricsServer

log = get_logger(__name__)


class Observation:
    def __init__(
        self,
        config: Config,
        jobs: Rows | None = None,
        reload: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """`jobs`: the jobs' rows for `hikd status` (next run, last result); `reload`:
        what ``hikd reload`` asks for (the daemon's `reload`)."""
        self.config = config
        self.reload = reload
        self.board = EventBoard(d.name for d in config.devices if d.enabled)
        self.job_runs = JobRuns(config.daemon.state_dir)
        self.jobs = jobs
        self.hosts: Rows | None = None
        """The device hosts' rows for `hikd status`; None while devices run in-process."""
        self.listen: Rows | None = None
        """The listen fronts' numbers (`hikd.listeners.front_counts`), one row per port."""
        self.metrics: MetricsServer | None = None
        self.control: ControlServer | None = None
        self._watch = WatchSink(self.board)

    def watch(self) -> Iterable[tuple[str, WatchSink]]:
        """The internal sink that feeds the board (one more entry for the bus's sinks)."""
        return [(WATCH_SINK, self._watch)]

    def start(self, delivery: Callable[[], dict[str, Any]]) -> None:
        """`delivery`: `EventBus.stats`."""
        self.job_runs.start()
        if self.config.metrics.enabled:
            # Only then: prometheus-client is not loaded by a daemon without metrics.
            from hikd.observe.metrics import HikdCollector, MetricsServer

            collector = HikdCollector(self.board, delivery, self.job_runs, self._listen_rows)
            server = MetricsServer(self.config.metrics, collector)
            if server.start():
                self.metrics = server
        path = self._control_path()
        if path is not None:
            report = StatusReport(
                self.board, delivery, self.jobs, self._host_rows, self._listen_rows
            )
            control = ControlServer(path, lambda request: self._answer(report, request))
            if control.start():
                self.control = control

    def _answer(self, report: StatusReport, request: dict[str, Any]) -> dict[str, Any]:
        """``{"do": "reload"}``: `hikd reload`; anything else is a question for the status."""
        if "do" not in request:
            return report.answer(request)
        if request["do"] == "reload" and self.reload is not None:
            return self.reload()
        return {"error": f"unknown request {request['do']!r}; the daemon can do: reload"}

    def _host_rows(self) -> list[Any] | None:
        return self.hosts() if self.hosts is not None else None

    def _listen_rows(self) -> list[Any]:
        return self.listen() if self.listen is not None else []

    def _control_path(self) -> Path | None:
        configured = self.config.daemon.runtime_dir
        directory = runtime_dir(configured)
        if configured is not None:
            make_dir(directory, "daemon.runtime_dir")
        elif not directory.is_dir():
            # The default is systemd's to make (RuntimeDirectory=hikd), never hikd's.
            log.info(
                "no runtime directory: `hikd status` cannot reach this daemon",
                path=str(directory),
                hint="set [daemon] runtime_dir",
            )
            return None
        return directory / SOCKET_NAME

    def stop(self) -> None:
        """Before the bus stops (the watch then lets its last rows go at once)."""
        self._watch.closing()
        if self.control is not None:
            self.control.stop()
            self.control = None
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
