"""Start-up of the vendor library: ``NET_DVR_Init`` with and without netlink sockets.

    .venv/bin/python bench/bench_init.py [--runs 3]

Each run is a fresh process (the library initialises once per process). Reference, in the
same run: the bare ``NET_DVR_Init`` call on the main thread, as hikd made it before
(hikd/sdk/no_netlink.py says why the difference exists).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_HIKD = """
import time
t = time.monotonic()
from hikd.sdk.library import Library
lib = Library.open()
print(time.monotonic() - t)
lib.cleanup()
"""

_BARE = """
import time
t = time.monotonic()
from hikd.sdk.ffi import ffi
from hikd.sdk.library import LIBRARY_NAME, find_library_dir
directory = find_library_dir(None)
lib = ffi.dlopen(str(directory / LIBRARY_NAME))
path = ffi.new("NET_DVR_LOCAL_SDK_PATH *")
path.sPath = (str(directory) + "/").encode()
lib.NET_DVR_SetSDKInitCfg(2, path)
assert lib.NET_DVR_Init()
print(time.monotonic() - t)
lib.NET_DVR_Cleanup()
"""


def timed(script: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    hikd = [timed(_HIKD) for _ in range(runs)]
    bare = [timed(_BARE) for _ in range(runs)]
    h, b = statistics.median(hikd), statistics.median(bare)
    print(f"library start-up, median of {runs} fresh processes:")
    print(f"  hikd (Library.open, init without netlink): {h * 1000:8.0f} ms")
    print(f"  bare NET_DVR_Init on the main thread:      {b * 1000:8.0f} ms")
    print(f"  ratio hikd / bare: {h / b:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
