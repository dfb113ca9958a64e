"""``hikd jobs``, ``hikd search`` and ``hikd download`` as a user runs them: a process with
a config file, against hikd.sim, through the real library."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import OUTBOX_FILE, Outbox
from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.config import RecordingPlan
from hikd.state import StateStore
from tests.delivery.test_bus import Recorder, wait_until
from tests.recorders.test_fetch_recordings import ten_minutes_ago
from tests.support import fill, small_filesystem

# hikd's command line, run as `hikd` runs it.
RUNNER = """
import sys
from hikd.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def hikd(*args: str, config: Path, sim: Simulator) -> subprocess.CompletedProcess[str]:
    password = sim.devices[0].config.password
    env = {**os.environ, "HIKD_PASSWORD_NVR": password, "HIKD_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=config.parent,
    )


def write_config(tmp_path: Path, sim: Simulator) -> Path:
    dev = sim.devices[0]
    config = tmp_path / "hikd.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "{tmp_path / "state"}"

[[devices]]
name = "nvr"
host = "127.0.0.1"
port = {dev.port}

[[jobs]]
name = "nightly"
kind = "download"
cron = "30 3 * * *"
channels = [1]

[[jobs]]
name = "quiet"
kind = "download"
interval_s = 3600
channels = [2]
devices = ["nvr"]
"""
    )
    return config


def test_search_prints_one_row_per_recording(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    plan = RecordingPlan(per_channel=50, segment_s=60, channels=[1])
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan))
    config = write_config(tmp_path, sim)
    args = ("search", "--device", "nvr", "--channel", "1", "--from", "2000-01-01")
    result = hikd(*args, config=config, sim=sim)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["start", "end", "size", "name"]
    recordings = sim.devices[0].recording_list(1)
    assert len(lines) == 1 + 50 + 1
    first = recordings[0]
    assert lines[1].split()[:2] == [
        first.start.strftime("%Y-%m-%d"),
        first.start.strftime("%H:%M:%S"),
    ]
    assert lines[1].split()[-1] == first.name
    assert lines[-1].startswith("50 recordings, ")

    for args, message in [
        (("--channel", "9", "--from", "2000-01-01"), "has no channel 9"),
        (("--channel", "1", "--from", "yesterday"), "'yesterday' is not a time"),
        (("--channel", "1", "--from", "2030-01-01", "--to", "2020-01-01"), "--to is before"),
    ]:
        bad = hikd("search", "--device", "nvr", *args, config=config, sim=sim)
        assert bad.returncode == 1 and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    ghost = hikd("search", "-d", "ghost", "-n", "1", "--from", "2000-01-01", config=config, sim=sim)
    assert ghost.returncode == 1 and "no device named 'ghost'" in ghost.stderr


def test_download_fetches_once_and_skips_what_is_already_there(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    plan = RecordingPlan(
        per_channel=3, segment_s=60, gap_s=120, bytes_per_second=4000, channels=[1]
    )
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan))
    device = sim.devices[0]
    config = write_config(tmp_path, sim)
    out = tmp_path / "videos"
    args = ("download", "-d", "nvr", "-n", "1", "--from", "2000-01-01", "--output", str(out))
    first = hikd(*args, config=config, sim=sim)
    assert first.returncode == 0, first.stderr
    folder = out / "nvr" / "1"
    finished = [r for r in device.recording_list(1) if not r.open]
    names = sorted(f"{r.start:%Y%m%dT%H%M%S}_{r.end:%Y%m%dT%H%M%S}.ps" for r in finished)
    assert sorted(p.name for p in folder.iterdir()) == names
    assert first.stdout.count("saved ") == 2
    assert "2 downloaded, 0 already there, 0 failed" in first.stdout
    assert "still being recorded" in first.stderr  # the open one is left out, and said so
    streams = device.rtsp.stats.streams_started

    # Run again (after an interruption that left a part file): nothing is fetched twice.
    left_over = folder / names[1].replace(".ps", ".part")
    left_over.write_bytes(b"left by a crash")
    second = hikd(*args, config=config, sim=sim)
    assert second.returncode == 0, second.stderr
    assert "0 downloaded, 2 already there, 0 failed" in second.stdout
    assert device.rtsp.stats.streams_started == streams
    assert {p.name for p in folder.iterdir()} == {*names, left_over.name}


def test_download_says_when_the_device_sent_more_than_its_search_said(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    plan = RecordingPlan(
        per_channel=1,
        segment_s=60,
        channels=[1],
        still_recording=False,
        end=ten_minutes_ago(),  # ended: not left out as still being recorded
        search_size="under",
    )
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan))
    config = write_config(tmp_path, sim)
    out = tmp_path / "videos"
    args = ("download", "-d", "nvr", "-n", "1", "--from", "2000-01-01", "--output", str(out))
    result = hikd(*args, config=config, sim=sim)
    assert result.returncode == 0, result.stderr
    [rec] = sim.devices[0].recording_list(1)
    saved, note = result.stdout.splitlines()[:2]
    assert saved.startswith("saved ")
    assert note == (
        f"  the device's search gave the recording as {1 << 20} bytes; it sent {rec.size}, all kept"
    )


def test_jobs_lists_next_and_last_runs_and_runs_one_on_demand(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=RecordingPlan(channels=[1])))
    config = write_config(tmp_path, sim)
    listed = hikd("jobs", config=config, sim=sim)
    assert listed.returncode == 0, listed.stderr
    header, nightly, quiet = listed.stdout.splitlines()
    assert header.split()[:4] == ["name", "kind", "devices", "schedule"]
    assert nightly.startswith("nightly") and "cron 30 3 * * *" in nightly
    assert nightly.rstrip().endswith("never ran") and quiet.rstrip().endswith("never ran")

    ran = hikd("jobs", "--run", "quiet", config=config, sim=sim)
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert "quiet on nvr: ok: 0 recordings" in ran.stdout
    listed = hikd("jobs", config=config, sim=sim)
    quiet_row = listed.stdout.splitlines()[2]
    assert "ok: 0 recordings" in quiet_row

    unknown = hikd("jobs", "--run", "nope", config=config, sim=sim)
    assert unknown.returncode == 1 and "no job named 'nope'" in unknown.stderr

    bad = tmp_path / "bad.toml"
    bad.write_text('[[jobs]]\nname = "x"\nkind = "download"\ninterval_s = 5\nwindow_h = -1\n')
    broken = hikd("jobs", "--config", str(bad), config=config, sim=sim)
    assert broken.returncode == 1 and "jobs.0.window_h" in broken.stderr


def write_log_job_config(tmp_path: Path, sim: Simulator, state: Path) -> Path:
    config = tmp_path / "logs.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "{state}"

[[devices]]
name = "nvr"
host = "127.0.0.1"
port = {sim.devices[0].port}

[sinks.disk]
path = "{tmp_path / "events"}"

[[jobs]]
name = "logs"
kind = "device_log"
interval_s = 3600
history_days = 2
"""
    )
    return config


def new_entries(ran: subprocess.CompletedProcess[str]) -> int:
    found = re.search(r"logs on nvr: ok: (\d+) new log entries", ran.stdout)
    assert found, ran.stdout + ran.stderr
    return int(found.group(1))


def test_a_manual_run_stores_its_events_for_the_running_daemons_sinks(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    """`hikd jobs --run` of a device_log job reported "6 new log entries", marked them seen,
    and none reached a sink. Now the running daemon's sinks get every one of them."""
    sim = start_sim(SimDeviceConfig(name="nvr", log_entries=6))
    state = tmp_path / "state"
    state.mkdir()
    config = write_log_job_config(tmp_path, sim, state)
    sink = Recorder()  # the daemon's sink [sinks.disk], fed from the outbox
    outbox = Outbox(state / OUTBOX_FILE)
    bus = EventBus(outbox, [("disk", sink)])
    bus.start()
    try:
        ran = hikd("jobs", "--run", "logs", config=config, sim=sim)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        count = new_entries(ran)
        assert count >= 6
        assert f"{count} events stored in {state / OUTBOX_FILE}" in ran.stdout
        wait_until(lambda: len([e for e in sink.events if e.kind == "log"]) == count)
        # Only what is new since (the first run's own login and logout) comes again.
        again = hikd("jobs", "--run", "logs", config=config, sim=sim)
        count += new_entries(again)
        wait_until(lambda: len([e for e in sink.events if e.kind == "log"]) == count)
    finally:
        bus.stop(timeout=2)
        outbox.close()
    logs = [e for e in sink.events if e.kind == "log"]
    assert len({e.id for e in logs}) == count
    assert {e.device.name for e in logs} == {"nvr"}


def test_a_manual_run_that_cannot_store_its_events_marks_nothing_done(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(SimDeviceConfig(name="nvr", log_entries=6))
    with small_filesystem(tmp_path / "state") as state:
        config = write_log_job_config(tmp_path, sim, state)
        # The daemon runs: it holds the outbox and the state database open (their WAL
        # files stay), so the full file system shows when events are stored, not before.
        with Outbox(state / OUTBOX_FILE) as outbox, StateStore.open(state):
            outbox.set_sinks(["disk"])
            filler = fill(state)
            failed = hikd("jobs", "--run", "logs", config=config, sim=sim)
            filler.unlink()
        assert failed.returncode == 1
        assert "Traceback" not in failed.stderr + failed.stdout, failed.stderr
        assert "logs on nvr: FAILED: cannot store events in the outbox" in failed.stdout, (
            failed.stdout + failed.stderr
        )
        assert "database or disk is full" in failed.stdout
        ran = hikd("jobs", "--run", "logs", config=config, sim=sim)
        count = new_entries(ran)
        assert count >= 6  # what the failed run read was not marked seen
        with Outbox(state / OUTBOX_FILE) as outbox:
            rows = outbox.read("disk", outbox.cursor("disk"), 1000)
        assert len([e for _, e in rows if e.kind == "log"]) == count


def test_a_full_disk_during_a_download_says_so(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    """A full disk was reported as "the library reported a network error"."""
    plan = RecordingPlan(
        per_channel=2, segment_s=60, gap_s=60, bytes_per_second=40000, channels=[1]
    )
    sim = start_sim(SimDeviceConfig(name="nvr", recordings=plan))
    config = write_config(tmp_path, sim)
    with small_filesystem(tmp_path / "videos", size_kib=256) as out:
        (out / "nvr" / "1").mkdir(parents=True)
        fill(out)
        args = ("download", "-d", "nvr", "-n", "1", "--from", "2000-01-01", "--output", str(out))
        full = hikd(*args, "--retries", "0", config=config, sim=sim)
    assert full.returncode == 1
    assert "Traceback" not in full.stderr, full.stderr
    failed = [line for line in full.stderr.splitlines() if line.startswith("failed ")]
    assert failed, full.stderr
    for line in failed:
        assert f"the disk holding {out / 'nvr' / '1'} is full" in line, line
        assert "network error" not in line

    not_a_folder = tmp_path / "afile"
    not_a_folder.write_text("")
    args = ("download", "-d", "nvr", "-n", "1", "--from", "2000-01-01", "-o", str(not_a_folder))
    wrong = hikd(*args, config=config, sim=sim)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == f"hikd: --output: {not_a_folder} is not a directory"
