"""Recordings fetched by hikd (each route), a plain RTSP client and two peers, from the same
simulated NVR in one run.

    .venv/bin/python bench/bench_download.py [--short 10] [--short-s 240] [--long-s 3600]

The simulator (real H.264 video: hikd/sim/video.py) runs in its own process with two
devices: ``short`` holds `--short` recordings of `--short-s` seconds (240 s: ~6.4 MB each),
``long`` one of `--long-s` seconds (3600 s: ~95 MB, over the library's 64 MiB per reply).
Each client runs as a process of its own and fetches them one after the other. Measured:
wall time, CPU (user + system of the process and the children it waited for: ffmpeg for
the peers) and files complete (ffprobe decodes at least 99 % of the frames of the
recording; a file that is not there counts as incomplete).

* hikd file: ``hikd download --route file --parallel 1`` (library start, login, search,
  then the device's own files through the pass-through).
* hikd stream: ``hikd download --route stream --parallel 1`` (the library's playback
  download, ended when the file holds the span).
* hikd stream, before: the same, but ended only by the library's own end-of-stream signal
  (its 5 s RTSP heartbeat), as hikd did before issue 15.
* plain RTSP: DESCRIBE/SETUP/PLAY per recording, the RTP payload written as H.264, the end
  asked for every 50 ms (HEARTBEAT, as the library asks every 5 s); it is given the URLs
  (no login, no search).
* hikload 1.1.4 and hikvision-nvr-downloader 0.2.0 from PyPI, installed into a throwaway
  venv in the bench's temporary folder (never a dependency of hikd): ISAPI search and
  `/ISAPI/ContentMgmt/download` with HTTP Digest, then ffmpeg (remux or transcode to MP4).

The quick clients fetch the short set `--rounds` times (median shown): the machine may be
shared. Numbers only, no asserts. Target: hikd within 2x the plain client on the short set.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-Passw0rd"
PEERS = ["hikload==1.1.4", "hikvision-nvr-downloader==0.2.0"]
FPS = 25


# -- the simulator in its own process ---------------------------------------------------------


def _serve(conn: Any, short: int, short_s: int, long_s: int) -> None:
    from hikd.sim import SimDeviceConfig, Simulator
    from hikd.sim.config import RecordingPlan

    # Finished well before "now": hikd download leaves out what may still be recorded.
    end = datetime.now().replace(microsecond=0) - timedelta(minutes=10)

    def device(name: str, count: int, seconds: int) -> SimDeviceConfig:
        plan = RecordingPlan(
            per_channel=count,
            segment_s=seconds,
            gap_s=60,
            channels=[1],
            still_recording=False,
            end=end,
        )
        return SimDeviceConfig(name=name, password=PASSWORD, recordings=plan)

    sim = Simulator([device("short", short, short_s), device("long", 1, long_s)]).start()
    info = {}
    for dev in sim.devices:
        recs = dev.recording_list(1)
        info[dev.name] = {
            "port": dev.port,
            "rtsp_port": dev.rtsp_port,
            "recordings": [
                {"start": r.start.isoformat(), "end": r.end.isoformat(), "size": r.size}
                for r in recs
            ],
        }
    conn.send(info)
    conn.recv()  # until the bench is done
    sim.stop()


# -- clients --------------------------------------------------------------------------------


def run_measured(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (with waited-for children) and exit code of `cmd`; its
    output goes to `log`."""
    began = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - began, usage.ru_utime + usage.ru_stime, proc.returncode


HIKD_BEFORE = """
import sys
from hikd.devices.capabilities import stream_download
# As before issue 15: a stream ends only when the library reports 100 (its heartbeat).
stream_download._Watch.covers_span = lambda self: False
from hikd.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def hikd_cmd(
    route: str, config: Path, device: str, span: tuple[str, str], out: Path, before: bool
) -> list[str]:
    args = ["download", "--config", str(config), "--device", device, "--channel", "1"]
    args += ["--from", span[0], "--to", span[1], "-o", str(out), "--parallel", "1"]
    args += ["--route", route]
    if before:
        return [sys.executable, "-c", HIKD_BEFORE, *args]
    return [str(Path(sys.executable).parent / "hikd"), *args]


NVR_DOWNLOADER = """
import sys
from datetime import datetime, timezone
from hikvision_nvr_downloader.hikvision_nvr_downloader import HikvisionNVRClient
port, password, out, *spans = sys.argv[1:]
client = HikvisionNVRClient("127.0.0.1", "admin", password, port=int(port), timeout=120)
for span in spans:
    start, end = (datetime.fromisoformat(t).replace(tzinfo=timezone.utc) for t in span.split("/"))
    try:
        client.download_by_time(camera=1, start=start, end=end, dest_dir=out)
    except Exception as exc:
        print("failed", span, exc, file=sys.stderr)
"""


def install_peers(folder: Path) -> Path | None:
    venv = folder / "peers"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", *PEERS], capture_output=True, text=True
    )
    if done.returncode != 0:
        print(f"  (peers not installed: {done.stderr.strip()[-300:]})")
        return None
    return venv / "bin" / "python"


def frames(path: Path) -> int:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.strip()
    try:
        return int(out.split(",")[0])
    except ValueError:
        return 0


def complete(folder: Path, recordings: list[dict[str, Any]]) -> int:
    """Recordings with a file in `folder` (any depth) that decodes >= 99 % of their frames:
    each file is matched to the recording whose frame count it comes closest to."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".part", ".toml")]
    counts = sorted((frames(p) for p in files), reverse=True)
    wanted = sorted(
        ((datetime.fromisoformat(r["end"]) - datetime.fromisoformat(r["start"])).seconds + 1) * FPS
        for r in recordings
    )
    done = 0
    for need in reversed(wanted):
        hit = next((c for c in counts if need * 0.99 <= c <= need * 1.05), None)
        if hit is not None:
            counts.remove(hit)
            done += 1
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--short-s", type=int, default=240)
    parser.add_argument("--long-s", type=int, default=3600)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("ffprobe") is None:
        sys.exit("ffprobe is missing: apt-get install ffmpeg (make bench does)")

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_serve, args=(child, args.short, args.short_s, args.long_s), daemon=True
    )
    proc.start()
    info = parent.recv()
    tmp = Path(tempfile.mkdtemp(prefix="hikd-bench-download-"))
    try:
        report(args, info, tmp)
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.kill()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(args: argparse.Namespace, info: dict[str, Any], tmp: Path) -> None:
    config = tmp / "hikd.toml"
    devices = "".join(
        f'\n[[devices]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {d["port"]}\n'
        'login_mode = "isapi"\n'
        for name, d in info.items()
    )
    config.write_text(f'[daemon]\nstate_dir = "{tmp / "state"}"\n{devices}')
    env = {**os.environ, "HIKD_PASSWORD_SHORT": PASSWORD, "HIKD_PASSWORD_LONG": PASSWORD}
    peers = install_peers(tmp)

    def span(name: str) -> tuple[str, str]:
        recs = info[name]["recordings"]
        return recs[0]["start"], recs[-1]["end"]

    print(
        f"recordings: {args.short} x {args.short_s} s "
        f"({sum(r['size'] for r in info['short']['recordings']) / 1e6:.1f} MB) and 1 x "
        f"{args.long_s} s ({info['long']['recordings'][0]['size'] / 1e6:.1f} MB) of real "
        "H.264, loopback, one at a time"
    )
    print(f"{'client':36} {'set':6} {'wall s':>8} {'CPU s':>7} {'complete':>9}")
    results: dict[tuple[str, str], float] = {}
    for label, kind in CLIENTS:
        for name in ("short", "long"):
            recs = info[name]["recordings"]
            # The quick ones on the short set go round `--rounds` times, taking turns with
            # the others' load on a shared machine: the median is shown.
            rounds = args.rounds if name == "short" and kind not in SLOW else 1
            walls, cpus, done, codes = [], [], 0, set()
            for n in range(rounds):
                out = tmp / f"{kind}-{name}-{n}"
                out.mkdir()
                cmd = _client_cmd(kind, name, info, span(name), config, out, peers)
                if cmd is None:
                    break
                wall, cpu, code = run_measured(cmd, env, tmp / f"{kind}-{name}-{n}.log")
                walls.append(wall)
                cpus.append(cpu)
                codes.add(code)
                done = complete(out, recs)
            if not walls:
                print(f"{label:36} {name:6} {'(not installed)':>26}", flush=True)
                continue
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            results[(kind, name)] = wall
            note = "" if codes == {0} else f"  (exit {sorted(codes)})"
            note += f"  (median of {rounds})" if rounds > 1 else ""
            print(
                f"{label:36} {name:6} {wall:8.2f} {cpu:7.2f} {done:>5}/{len(recs)}{note}",
                flush=True,
            )
    for kind in ("file", "stream"):
        if (kind, "short") in results and ("plain", "short") in results:
            ratio = results[(kind, "short")] / results[("plain", "short")]
            print(f"hikd {kind} / plain RTSP client, short set: {ratio:.2f}x (target <= 2x)")
    if ("before", "short") in results and ("stream", "short") in results:
        ratio = results[("before", "short")] / results[("stream", "short")]
        print(f"hikd stream before / now, short set: {ratio:.1f}x")


CLIENTS = [
    ("hikd file (ISAPI download)", "file"),
    ("hikd stream (playback)", "stream"),
    ("plain RTSP client", "plain"),
    ("hikd stream, before (5 s heartbeat)", "before"),
    ("hikload 1.1.4", "hikload"),
    ("hikvision-nvr-downloader 0.2.0", "nvrdl"),
]
SLOW = {"before", "nvrdl"}


def _client_cmd(
    kind: str,
    name: str,
    info: dict[str, Any],
    span: tuple[str, str],
    config: Path,
    out: Path,
    peers: Path | None,
) -> list[str] | None:
    dev = info[name]
    if kind in ("file", "stream"):
        return hikd_cmd(kind, config, name, span, out, before=False)
    if kind == "before":
        return hikd_cmd("stream", config, name, span, out, before=True)
    if kind == "plain":
        urls = [
            f"rtsp://127.0.0.1:{dev['rtsp_port']}/Streaming/tracks/101/?starttime="
            f"{_compact(r['start'])}&endtime={_compact(r['end'])}"
            for r in dev["recordings"]
        ]
        plain = str(Path(__file__).with_name("plain_rtsp.py"))
        return [sys.executable, plain, PASSWORD, str(dev["rtsp_port"]), str(out), *urls]
    if peers is None:
        return None
    if kind == "hikload":
        start, end = span
        return [
            str(peers.parent / "hikload"),
            "--server",
            f"127.0.0.1:{dev['port']}",
            "--username",
            "admin",
            "--password",
            PASSWORD,
            "--starttime",
            start,
            "--endtime",
            end,
            "--cameras",
            "101",
            "--downloads",
            str(out),
        ]
    spans = [f"{r['start']}/{r['end']}" for r in dev["recordings"]]
    return [str(peers), "-c", NVR_DOWNLOADER, str(dev["port"]), PASSWORD, str(out), *spans]


def _compact(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y%m%dT%H%M%SZ")


if __name__ == "__main__":
    main()
