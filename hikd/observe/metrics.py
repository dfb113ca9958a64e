"""Prometheus metrics (README "Metrics"): read from the board and the delivery side at each
scrape, never counted on the alarm path.

The names follow Prometheus' conventions: the ``hikd_`` prefix, base units (seconds,
bytes), ``_total`` for counters. Counters start at 0 when hikd starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from hikd import __version__
from hikd.config.observe import MetricsConfig
from hikd.delivery.latency import LatencySnapshot
from hikd.logs import get_logger
from hikd.observe.board import EventBoard
from hikd.observe.job_runs import JobRuns
from hikd.observe.watch import WATCH_SINK

log = get_logger(__name__)

DeliveryStats = Callable[[], dict[str, Any]]
"""`EventBus.stats`: per sink and for the outbox."""


class HikdCollector:
    """A prometheus-client collector over the board and the delivery side's numbers."""

    def __init__(
        self,
        board: EventBoard,
        delivery: DeliveryStats,
        job_runs: JobRuns,
        listen: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        """`listen`: the listen fronts' numbers, a row per port (`hikd.listeners.front_counts`)."""
        self.board = board
        self.delivery = delivery
        self.job_runs = job_runs
        self.listen = listen

    def collect(self) -> Iterator[Metric]:
        yield from self._build()
        yield from self._devices()
        yield from self._counts()
        yield from self._listen()
        yield from self._delivery()

    def _build(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("hikd_build_info", "hikd's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

    def _devices(self) -> Iterator[Metric]:
        online = GaugeMetricFamily(
            "hikd_device_online", "1 while hikd is logged in to the device", labels=["device"]
        )
        armed = GaugeMetricFamily(
            "hikd_device_armed", "1 while the device's alarm channel is open", labels=["device"]
        )
        open_alarms = GaugeMetricFamily(
            "hikd_device_alarms_open", "Alarms started and not ended yet", labels=["device"]
        )
        for device in list(self.board.devices.values()):
            online.add_metric([device.name], int(device.online))
            armed.add_metric([device.name], int(device.armed))
            open_alarms.add_metric([device.name], len(device.open_alarms))
        yield from (online, armed, open_alarms)

    def _counts(self) -> Iterator[Metric]:
        board = self.board
        yield _counter(
            "hikd_events_total", "Events stored in the outbox", ["kind", "type"], board.events
        )
        yield _counter(
            "hikd_alarms_lost_total",
            "Times the vendor library reported lost alarms (0x8022 buffer full, 0x8023 lost); "
            "it does not say how many",
            ["device", "code"],
            board.alarms_lost,
        )
        yield _counter(
            "hikd_login_failures_total",
            "Logins the device refused (auth_failed)",
            ["device"],
            board.login_failures,
        )
        yield _counter(
            "hikd_listen_refused_total",
            "Requests the listen front refused, by reason (reported at most once a minute "
            "per sender)",
            ["port", "reason"],
            board.listen_refused,
        )
        yield _counter(
            "hikd_device_host_restarts_total",
            "Device hosts that died and were restarted",
            ["host"],
            board.host_restarts,
        )
        yield _counter(
            "hikd_job_runs_total",
            "Runs of a job on one device, by result (ok, failed, skipped)",
            ["job", "result"],
            self.job_runs.update(),
        )
        yield _counter(
            "hikd_events_dropped_total",
            "Events hikd dropped because a buffer was full (bus: in memory; outbox: its "
            "size limit)",
            ["where"],
            board.dropped,
        )

    def _listen(self) -> Iterator[Metric]:
        """The listen fronts' own numbers, at the scrape (the refusals above come from the
        health events, up to a minute late)."""
        accepted = CounterMetricFamily(
            "hikd_listen_accepted_total", "Pushed alarms answered 200", labels=["port"]
        )
        resent = CounterMetricFamily(
            "hikd_listen_resent_total",
            "Pushed alarms relayed again after their device host ended (or read back after a "
            "restart), marked resent",
            labels=["port"],
        )
        dropped = GaugeMetricFamily(
            "hikd_listen_dropped_senders",
            "Addresses cut off as not allowed since hikd started",
            labels=["port"],
        )
        kept = GaugeMetricFamily(
            "hikd_listen_kept_pushes",
            "Pushed alarms answered and not stored by a device host yet",
            labels=["port"],
        )
        kept_bytes = GaugeMetricFamily(
            "hikd_listen_kept_bytes", "Bytes of those pushed alarms", labels=["port"]
        )
        for row in self.listen():
            port = [str(row["port"])]
            accepted.add_metric(port, row["accepted"])
            resent.add_metric(port, row["resent"])
            dropped.add_metric(port, row["dropped_senders"])
            kept.add_metric(port, row["kept"])
            kept_bytes.add_metric(port, row["kept_bytes"])
        yield from (accepted, resent, dropped, kept, kept_bytes)

    def _delivery(self) -> Iterator[Metric]:
        stats = self.delivery()
        now = time.time()
        sinks = {name: s for name, s in stats["sinks"].items() if name != WATCH_SINK}
        backlog = GaugeMetricFamily(
            "hikd_outbox_backlog_events",
            "Stored events the sink has not acknowledged",
            labels=["sink"],
        )
        age = GaugeMetricFamily(
            "hikd_outbox_backlog_age_seconds",
            "Age of the oldest event the sink has not acknowledged (0: none)",
            labels=["sink"],
        )
        up = GaugeMetricFamily("hikd_sink_up", "1 while the sink delivers", labels=["sink"])
        delivered = CounterMetricFamily(
            "hikd_sink_delivered_events_total", "Events the sink acknowledged", labels=["sink"]
        )
        failures = CounterMetricFamily(
            "hikd_sink_failures_total", "Failed opens and sends of the sink", labels=["sink"]
        )
        last = GaugeMetricFamily(
            "hikd_sink_last_delivery_timestamp_seconds",
            "When the sink last acknowledged events (Unix time)",
            labels=["sink"],
        )
        latency = HistogramMetricFamily(
            "hikd_delivery_latency_seconds",
            "From hikd receiving an event to the sink acknowledging it",
            labels=["sink"],
        )
        for name, s in sinks.items():
            backlog.add_metric([name], s["pending"])
            oldest = s["oldest_pending"]
            age.add_metric([name], max(0.0, now - oldest) if oldest is not None else 0.0)
            up.add_metric([name], int(s["up"]))
            delivered.add_metric([name], s["delivered"])
            failures.add_metric([name], s["failures"])
            snapshot: LatencySnapshot = s["latency"]
            if snapshot.last_delivery is not None:
                last.add_metric([name], snapshot.last_delivery)
            latency.add_metric([name], _buckets(snapshot), snapshot.total_s)
        yield from (backlog, age, up, delivered, failures, last, latency)
        outbox = stats["outbox"]
        yield GaugeMetricFamily("hikd_outbox_events", "Events stored now", value=outbox["events"])
        yield GaugeMetricFamily(
            "hikd_outbox_bytes", "Bytes of event JSON stored now", value=outbox["bytes"]
        )


def _counter(name: str, doc: str, labels: list[str], counts: dict[Any, int]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in dict(counts).items():
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _buckets(snapshot: LatencySnapshot) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip(snapshot.bounds, snapshot.counts, strict=False):
        total += count
        out.append((repr(float(bound)), total))
    out.append(("+Inf", total + snapshot.counts[-1]))
    return out


class MetricsServer:
    """``GET /metrics`` on ``[metrics] address:port``, on its own thread."""

    def __init__(self, config: MetricsConfig, collector: HikdCollector) -> None:
        self.config = config
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        ProcessCollector(registry=self.registry)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Listen; False (and one log line) when the address cannot be used: alarms go on
        without metrics."""
        address, port = self.config.address, self.config.port
        try:
            self._server, self._thread = start_http_server(port, address, self.registry)
        except OSError as e:
            log.error(
                "metrics: cannot listen; hikd runs without metrics",
                address=f"{address}:{port}",
                error=e.strerror or str(e),
                hint="set [metrics] port to a free port, or enabled = false",
            )
            return False
        log.info("metrics: serving /metrics", address=f"{address}:{port}")
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
