"""``hikd download``: a channel's recordings into ``DIR/<device>/<channel>/<start>_<end>.ps``.

Recordings already there are skipped (run it again after an interruption and it goes on);
a progress line goes to stderr when that is a terminal.
"""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hikd.cli.output import ProgressLine, Subcommands, config_arg, size
from hikd.cli.recordings import config_and_device, find_recordings, logged_in, span, span_args
from hikd.errors import UserError

if TYPE_CHECKING:
    from hikd.devices.capabilities.downloads import Route
    from hikd.devices.capabilities.recordings import Recording

OPEN_MARGIN_S = 60.0
"""``hikd download`` leaves out a recording ending less than this before the device's
now: it is still being written, and fetching it now would give a truncated copy."""


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser("download", help="download a channel's recordings")
    config_arg(p)
    span_args(p)
    p.add_argument("--output", "-o", type=Path, default=Path("."), help="folder (default: current)")
    p.add_argument("--parallel", type=int, default=2, help="downloads at once (default 2)")
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="give an attempt up after this many seconds without data, and try again at "
        "once (default 20)",
    )
    p.add_argument("--retries", type=int, default=3, help="attempts after the first (default 3)")
    p.add_argument(
        "--route",
        choices=("auto", "file", "stream"),
        default="auto",
        help="file: the device's own file over ISAPI; stream: the library's playback "
        "download; auto (default): the file over ISAPI logins, else the stream",
    )
    p.set_defaults(handler=_download)


def _download(args: argparse.Namespace) -> int:
    if args.parallel < 1 or args.retries < 0 or args.stall_timeout <= 0:
        raise UserError(
            "--parallel must be at least 1, --retries at least 0, --stall-timeout above 0"
        )
    return download_command(
        args.config,
        args.device,
        args.channel,
        args.start,
        args.end,
        output=args.output,
        parallel=args.parallel,
        stall_timeout_s=args.stall_timeout,
        retries=args.retries,
        route=args.route,
    )


def download_command(
    config_path: Path | None,
    device: str,
    channel: int,
    start: str,
    end: str,
    *,
    output: Path,
    parallel: int = 2,
    stall_timeout_s: float = 20.0,
    retries: int = 3,
    route: Route = "auto",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    from hikd.devices.capabilities.recordings import DownloadCancelled, device_now
    from hikd.recorders.fetch import FetchFailed, RetryPolicy, existing_file, fetch_recording
    from hikd.sdk.errors import SdkError

    out = out or sys.stdout
    config, device_config = config_and_device(config_path, device)
    # Only now: the line above gives fd 2 to the vendor library's output (route_native_stderr)
    # and Python a new sys.stderr; the old one would write into the library's log.
    err = err or sys.stderr
    since, until = span(device_config, start, end)
    from hikd.files import directory_problem

    problem = directory_problem(output.absolute(), "--output")
    if problem:
        raise UserError(problem)
    with logged_in(device_config, config.sdk) as session:
        found = find_recordings(session, channel, since, until)
        folder = output.absolute() / session.name / str(channel)
        open_from = device_now(session) - timedelta(seconds=OPEN_MARGIN_S)
        still_open = [r for r in found if r.end >= open_from]
        todo: list[Recording] = []
        present = 0
        for rec in found:
            if rec in still_open:
                continue
            if existing_file(folder, rec.stem) is not None:
                present += 1
            else:
                todo.append(rec)
        for rec in still_open:
            print(
                f"left out {rec.stem}: still being recorded; download it once it has ended",
                file=err,
            )
        if present:
            print(f"{present} recording{'s' if present != 1 else ''} already in {folder}", file=out)
        policy = RetryPolicy(stall_timeout_s, retries, route=route)
        stop = threading.Event()
        bar = ProgressLine(len(todo), err, live=err.isatty())
        failures: list[str] = []
        lock = threading.Lock()

        def one(rec: Recording) -> None:
            if stop.is_set():
                return
            try:
                fetched = fetch_recording(
                    session,
                    output.absolute(),
                    rec,
                    policy,
                    stop,
                    lambda size: bar.update(rec.stem, size),
                )
            except DownloadCancelled:
                return
            except (FetchFailed, SdkError, OSError) as exc:
                bar.finish(rec.stem, 0, ok=False)
                with lock:
                    failures.append(f"{rec.stem}: {exc}")
                return
            bar.finish(rec.stem, fetched.size, ok=True)
            with lock:
                print(f"saved {fetched.path} ({size(fetched.size)})", file=out, flush=True)
                # What the file event's notes say: retries, sizes that disagree, a route.
                for note in fetched.notes:
                    print(f"  {note}", file=out, flush=True)

        pool = ThreadPoolExecutor(parallel, thread_name_prefix="download")
        try:
            futures = [pool.submit(one, rec) for rec in todo]
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
            print("interrupted: run the same command again to fetch the rest", file=err)
            return 130
        finally:
            pool.shutdown(wait=True)
        bar.close()
    for line in failures:
        print(f"failed {line}", file=err)
    print(
        f"{bar.done} downloaded, {present} already there, {len(failures)} failed "
        f"({size(bar.finished_bytes)})",
        file=out,
    )
    return 1 if failures else 0
