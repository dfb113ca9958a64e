"""/metrics scraped from a running daemon (real vendor library, hikd.sim) and read with
prometheus-client's own parser: the counters match what the disk sink received."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from hikd.events import DeviceRef, health
from hikd.observe.board import EventBoard
from hikd.sim import Simulator
from tests.observe.conftest import Watched, nvr
from tests.support import free_port, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_count_what_was_delivered(
    start_sim: Callable[..., Simulator], watched_daemon: Callable[..., Watched]
) -> None:
    sim = start_sim(nvr(), nvr("locked"))
    device = sim.devices[0]
    closed_port = free_port()
    extra = (
        "[alarms.hold_s]\ndefault = 600\n"  # the open alarms stay open however slow this is
        "[[jobs]]\n"
        'name = "poll"\nkind = "status"\ndevices = ["nvr"]\ninterval_s = 3600\n'
        f'[[listen]]\naddress = "127.0.0.1"\nport = {closed_port}\nallowed = ["192.0.2.7"]\n'
    )
    watched = watched_daemon(sim, extra, passwords={"locked": "not-the-password"})
    assert device.wait_for_streams(1, timeout=15), "the daemon did not arm the device"

    for channel in (1, 2, 3):
        device.trigger(type="VMD", channel=channel, state="active")
    device.trigger(type="linedetection", channel=2, state="active")
    device.trigger(type="VMD", channel=1, state="inactive")
    # A sender the front refuses, and one run of the job.
    assert device.push_to("127.0.0.1", closed_port).status is None
    host = watched.daemon.host
    assert host is not None and host.scheduler is not None
    host.scheduler.run_now("poll")

    def settled() -> bool:
        delivered = watched.delivered()
        types = {(e["kind"], e["type"], e["state"]) for e in delivered}
        wanted = {
            ("alarm", "motion", "stop"),
            ("alarm", "line_crossing", "start"),
            ("health", "listen_refused", "pulse"),
            ("health", "status", "pulse"),
            ("health", "auth_failed", "pulse"),
        }
        if not wanted <= types:
            return False
        samples = scrape(watched.metrics_port)
        counted = sum(v for (name, _), v in samples.items() if name == "hikd_events_total")
        disk = value(samples, "hikd_sink_delivered_events_total", sink="disk")
        return counted == disk == len(delivered)

    assert wait_for(settled, timeout=30), [(e["type"], e["state"]) for e in watched.delivered()]
    delivered = watched.delivered()
    samples = scrape(watched.metrics_port)

    by_type = Counter((e["kind"], e["type"]) for e in delivered)
    for (kind, type_), count in by_type.items():
        assert value(samples, "hikd_events_total", kind=kind, type=type_) == count, type_
    counted = sum(v for (name, _), v in samples.items() if name == "hikd_events_total")
    assert counted == len(delivered)

    assert value(samples, "hikd_device_online", device="nvr") == 1
    assert value(samples, "hikd_device_armed", device="nvr") == 1
    assert value(samples, "hikd_device_online", device="locked") == 0
    assert value(samples, "hikd_login_failures_total", device="locked") == 1
    assert value(samples, "hikd_device_alarms_open", device="nvr") == 3  # motion 2, 3; line
    refused = value(
        samples, "hikd_listen_refused_total", port=str(closed_port), reason="not allowed"
    )
    assert refused == 1
    assert value(samples, "hikd_job_runs_total", job="poll", result="ok") == 1

    assert value(samples, "hikd_sink_up", sink="disk") == 1
    assert value(samples, "hikd_outbox_backlog_events", sink="disk") == 0
    assert value(samples, "hikd_outbox_backlog_age_seconds", sink="disk") == 0
    assert value(samples, "hikd_delivery_latency_seconds_count", sink="disk") == len(delivered)
    assert value(samples, "hikd_delivery_latency_seconds_bucket", sink="disk", le="+Inf") == len(
        delivered
    )
    assert (value(samples, "hikd_sink_last_delivery_timestamp_seconds", sink="disk") or 0) > 0
    # The watch is no sink of the user's.
    assert not [key for key in samples if ("sink", "hikd:watch") in key[1]]


def test_health_events_without_a_live_case_are_counted() -> None:
    """Alarms lost (0x8022/0x8023) and a device host's crash cannot be made to happen on
    demand with the real library; their events are built as the router and the supervisor
    build them."""
    board = EventBoard(["nvr"])
    nvr_ref = DeviceRef("nvr", "S1", "127.0.0.1:80")
    board.observe(health(nvr_ref, "alarms_lost", code=0x8022, count=1))
    board.observe(health(nvr_ref, "alarms_lost", code=0x8023, count=2))
    board.observe(health(DeviceRef("hikd"), "device_host_crashed", host="1", signal="SIGSEGV"))
    board.observe(health(DeviceRef("hikd"), "bus_overflow", dropped=7))
    assert board.alarms_lost == {("nvr", "0x8022"): 1, ("nvr", "0x8023"): 1}
    assert board.host_restarts == {"1": 1}
    assert board.dropped == {"bus": 7}
    assert "hikd" not in board.devices
