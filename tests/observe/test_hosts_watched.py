"""`hikd run` as a user runs it: a supervisor with a device host process. The status and the
metrics come from the events the host stored in the outbox and from the supervisor's hosts:
a host killed with SIGKILL shows as a restart in both."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from hikd.sim import SimDeviceConfig, Simulator
from tests.end_to_end import SECRET, HikdProcess, disk_events
from tests.observe.test_status import status_json
from tests.support import free_port, wait_for


def metric(port: int, name: str, **labels: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def test_status_and_metrics_of_a_supervisor_and_its_device_host(
    tmp_path: Path,
    start_sim: Callable[..., Simulator],
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", password=SECRET, ip_channels=2))
    state, port = tmp_path / "state", free_port()
    config = tmp_path / "hikd.toml"
    config.write_text(
        "\n".join(
            [
                "[daemon]",
                f'state_dir = "{state}"',
                f'runtime_dir = "{tmp_path / "run"}"',
                "[logging]",
                'format = "json"',
                "[metrics]",
                "enabled = true",
                f"port = {port}",
                "[sinks.disk]",
                f'path = "{state / "events"}"',
                "[[devices]]",
                'name = "nvr"',
                'host = "127.0.0.1"',
                f"port = {sim.devices[0].port}",
                "reconnect_min_s = 0.2",
            ]
        )
        + "\n"
    )
    hikd = run_hikd(config, sim)

    def answer() -> dict[str, Any]:
        return status_json(config) if (tmp_path / "run" / "hikd.sock").exists() else {}

    def armed() -> bool:
        devices = answer().get("devices") or [{}]
        return bool(devices[0].get("armed"))

    assert wait_for(armed, timeout=60), hikd.output()
    status = answer()
    assert status["pid"] == hikd.process.pid
    (host,) = status["hosts"]
    assert host["state"] == "running" and host["restarts"] == 0
    assert [d["name"] for d in host["devices"]] == ["nvr"]
    assert host["pid"] != hikd.process.pid
    assert metric(port, "hikd_device_armed", device="nvr") == 1

    os.kill(host["pid"], signal.SIGKILL)
    assert wait_for(
        lambda: metric(port, "hikd_device_host_restarts_total", host="0") == 1, timeout=60
    ), hikd.output()
    assert wait_for(lambda: answer()["hosts"][0]["restarts"] == 1, timeout=30)
    assert wait_for(armed, timeout=60), hikd.output()  # armed again by the new host
    crashed = [e for e in disk_events(state) if e["type"] == "device_host_crashed"]
    assert len(crashed) == 1 and crashed[0]["attributes"]["host"] == 0
