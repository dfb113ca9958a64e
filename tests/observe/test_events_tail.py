"""`hikd events tail` follows a running daemon's outbox from another process, read-only."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from hikd.sim import Simulator
from tests.observe.conftest import Watched, nvr
from tests.support import wait_for


class Tail:
    """One `hikd events tail` process; its lines are read on threads (never blocking)."""

    def __init__(self, config: Path, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hikd", "events", "tail", "--config", str(config), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.notes: queue.SimpleQueue[str] = queue.SimpleQueue()
        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.notes)):
            threading.Thread(target=_pump, args=(stream, into), daemon=True).start()

    def wait_note(self, timeout: float = 30.0) -> str:
        return self.notes.get(timeout=timeout)

    def read(self) -> list[str]:
        found = []
        while not self.lines.empty():
            found.append(self.lines.get())
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _pump(stream: IO[str] | None, into: queue.SimpleQueue[str]) -> None:
    assert stream is not None
    for line in stream:
        into.put(line.rstrip("\n"))


@pytest.fixture
def tail() -> Iterator[Callable[..., Tail]]:
    started: list[Tail] = []

    def start(config: Path, *options: str) -> Tail:
        process = Tail(config, *options)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


def test_tail_shows_every_event_stored_from_its_start_in_order(
    start_sim: Callable[..., Simulator],
    watched_daemon: Callable[..., Watched],
    tail: Callable[..., Tail],
) -> None:
    sim = start_sim(nvr())
    device = sim.devices[0]
    # No alarm ends by itself while the test compares (a hold-time stop would be one more).
    watched = watched_daemon(sim, "[alarms.hold_s]\ndefault = 600\n")
    assert device.wait_for_streams(1, timeout=15), "the daemon did not arm the device"
    bus = watched.daemon.bus
    assert bus is not None
    assert wait_for(lambda: any(e["type"] == "armed" for e in watched.delivered()))
    assert wait_for(lambda: bus.stats()["sinks"]["disk"]["pending"] == 0)
    before = {e["id"] for e in watched.delivered()}

    everything = tail(watched.config, "--json")
    motion = tail(watched.config, "--device", "nvr", "--type", "motion")
    for process in (everything, motion):
        assert process.wait_note().startswith("following ")

    device.trigger(type="VMD", channel=1, state="active")
    device.trigger(type="linedetection", channel=2, state="active", pictures=1)
    device.trigger(type="VMD", channel=1, state="inactive")

    def new() -> list[str]:
        return [e["id"] for e in watched.delivered() if e["id"] not in before]

    assert wait_for(lambda: len(new()) >= 3), [e["type"] for e in watched.delivered()]
    shown: list[str] = []
    motion_lines: list[str] = []

    def caught_up() -> bool:
        shown.extend(everything.read())
        motion_lines.extend(motion.read())
        return len(shown) >= len(new()) and len(motion_lines) >= 2

    assert wait_for(caught_up, timeout=30), (shown, motion_lines)
    assert [json.loads(line)["id"] for line in shown] == new()
    stored = {e["id"]: e for e in watched.delivered()}
    assert [json.loads(line) for line in shown] == [stored[i] for i in new()]

    assert len(motion_lines) == 2, motion_lines
    assert "nvr  ch 1  alarm motion start" in motion_lines[0]
    assert "alarm motion stop" in motion_lines[1] and "ended_by=device" in motion_lines[1]
    assert everything.process.poll() is None  # it follows until stopped


def test_tail_without_an_outbox_says_what_to_check(tmp_path: Path) -> None:
    config = tmp_path / "hikd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "nothing"}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "hikd", "events", "tail", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no outbox at" in done.stderr and "state_dir" in done.stderr
    assert "Traceback" not in done.stderr
