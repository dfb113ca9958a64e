"""Run every benchmark of bench/ in turn (`make bench`). Each prints its own numbers and
ratios against a reference measured in the same run; nothing here asserts on seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ("vendor library start-up", ["bench_init.py"]),
    ("log in 256 devices", ["bench_login.py"]),
    ("log in and arm 256 devices", ["bench_login.py", "--arm"]),
    ("alarm path: callback, throughput, latency", ["bench_alarms.py"]),
    ("in-process pipeline: bus + outbox + disk sink", ["bench_pipeline.py"]),
    ("delivery to MQTT", ["bench_delivery.py"]),
    ("device hosts: memory of 256 armed devices, crash -> re-armed", ["bench_hosts.py"]),
    ("downloads and search", ["bench_recordings.py"]),
    ("recordings: hikd's routes against a plain RTSP client and two peers", ["bench_download.py"]),
    ("an alert with a huge description", ["bench_big_alert.py"]),
    ("fault run: alarms missed while unarmed, without and with backfill", ["bench_backfill.py"]),
]


def main() -> int:
    failed = 0
    for title, args in RUNS:
        print(f"\n== {title} ({' '.join(args)})", flush=True)
        result = subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], check=False)
        if result.returncode != 0:
            print(f"   (exited with {result.returncode})")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
