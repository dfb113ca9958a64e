"""What the daemon starts to be watched: the board and its watch, the metrics endpoint.

The daemon adds `watch()` to its sinks, then calls `start()` once the bus runs and `stop()`
before it stops the bus; the rest of this package stays out of the daemon's code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hikd.config import Config
from hikd.observe.board import EventBoard
from hikd.observe.job_runs import JobRuns
from hikd.observe.watch import WATCH_SINK, WatchSink

if TYPE_CHECKING:
    from hikd.observe.metrics import MetricsServer


class Observation:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.board = EventBoard(d.name for d in config.devices if d.enabled)
        self.job_runs = JobRuns(config.daemon.state_dir)
        self.metrics: MetricsServer | None = None
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

            collector = HikdCollector(self.board, delivery, self.job_runs)
            server = MetricsServer(self.config.metrics, collector)
            if server.start():
                self.metrics = server

    def stop(self) -> None:
        """Before the bus stops (the watch then lets its last rows go at once)."""
        self._watch.closing()
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
