"""``hikd search`` and ``hikd download``.

* ``hikd search`` lists a channel's recordings between two times.
* ``hikd download`` fetches them into ``DIR/<device>/<channel>/<start>_<end>.ps``, skipping
  those already there (run it again after an interruption and it goes on), with a
  progress line on stderr when that is a terminal.

Times given without an offset are on the device's clock (its ``timezone`` setting, UTC
when unset), as the device itself shows them.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hikd.cli.output import ProgressLine, config_arg, format_table, size, wall
from hikd.errors import UserError

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig, SdkConfig
    from hikd.devices.capabilities.recordings import Recording
    from hikd.devices.session import DeviceSession

OPEN_MARGIN_S = 60.0
"""``hikd download`` leaves out a recording ending less than this before the device's
now: it is still being written, and fetching it now would give a truncated copy."""


def _span_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", "-d", required=True, help="device name from the config")
    parser.add_argument("--channel", "-n", type=int, required=True, help="channel number")
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="TIME",
        help="start, ISO 8601 (2024-05-01T08:00); no offset = the device's clock",
    )
    parser.add_argument(
        "--to",
        dest="end",
        default="now",
        metavar="TIME",
        help="end, ISO 8601 or 'now' (default)",
    )


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``search`` and ``download`` to hikd's sub-command parser."""
    p = subparsers.add_parser("search", help="list a channel's recordings between two times")
    config_arg(p)
    _span_args(p)

    p = subparsers.add_parser("download", help="download a channel's recordings")
    config_arg(p)
    _span_args(p)
    p.add_argument("--output", "-o", type=Path, default=Path("."), help="folder (default: current)")
    p.add_argument("--parallel", type=int, default=2, help="downloads at once (default 2)")
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="give an attempt up after this many seconds without data (default 20; "
        "at least 6 over ISAPI, where the library reports the end of a stream late)",
    )
    p.add_argument("--retries", type=int, default=3, help="attempts after the first (default 3)")


def dispatch(args: argparse.Namespace) -> int | None:
    """Run the command if it is one of these; None when it is not."""
    command = getattr(args, "command", None)
    if command == "search":
        return search_command(args.config, args.device, args.channel, args.start, args.end)
    if command == "download":
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
        )
    return None


def parse_time(text: str, tz: tzinfo) -> datetime:
    """ISO 8601 (or 'now') -> an aware datetime; no offset = the device's clock (`tz`)."""
    if text.strip().lower() == "now":
        return datetime.now(tz).replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"{text!r} is not a time: use ISO 8601 like 2024-05-01T08:00 or 2024-05-01"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def _span(device: DeviceConfig, start: str, end: str) -> tuple[datetime, datetime]:
    # The device's clock zone, as hikd.devices.capabilities.recordings.device_zone has it.
    tz = device.tzinfo() or UTC
    since, until = parse_time(start, tz), parse_time(end, tz)
    if until < since:
        raise UserError("--to is before --from")
    return since, until


def _config_and_device(config_path: Path | None, name: str) -> tuple[Config, DeviceConfig]:
    from hikd.config import load_config
    from hikd.logs import setup_logging
    from hikd.native_stderr import route_native_stderr

    config = load_config(config_path)
    setup_logging("warning", config.logging.format)
    route_native_stderr()
    try:
        return config, config.device(name)
    except KeyError:
        known = ", ".join(d.name for d in config.devices) or "none"
        raise UserError(f"no device named {name!r} in the config (known: {known})") from None


@contextmanager
def logged_in(device: DeviceConfig, sdk_config: SdkConfig) -> Iterator[DeviceSession]:
    """The vendor library opened for one login to `device` (`hikd.devices.login`), both
    closed when the block ends."""
    from hikd.devices.library import open_library
    from hikd.devices.login import login

    sdk = open_library(sdk_config)
    try:
        with login(sdk, device) as session:
            yield session
    finally:
        sdk.cleanup()


def _check_channel(session: DeviceSession, channel: int) -> None:
    have_channels = session.channels.numbers
    if have_channels and channel not in have_channels:
        have = ", ".join(str(c) for c in have_channels)
        raise UserError(f"device {session.name} has no channel {channel} (it has {have})")


def _find_recordings(
    session: DeviceSession, channel: int, since: datetime, until: datetime
) -> list[Recording]:
    """The channel's recordings in the span, or one line saying why there are none."""
    from hikd.devices.capabilities.recordings import search_recordings
    from hikd.sdk.errors import SdkError

    _check_channel(session, channel)
    try:
        return search_recordings(session, channel, since, until)
    except SdkError as exc:
        raise UserError(f"the search on {session.name} failed: {exc}") from None


# -- hikd search ---------------------------------------------------------------------------


def search_command(
    config_path: Path | None,
    device: str,
    channel: int,
    start: str,
    end: str,
    out: TextIO | None = None,
) -> int:

    out = out or sys.stdout
    config, device_config = _config_and_device(config_path, device)
    since, until = _span(device_config, start, end)
    with logged_in(device_config, config.sdk) as session:
        found = _find_recordings(session, channel, since, until)
    rows: list[tuple[str, ...]] = [("start", "end", "size", "name")]
    rows += [(wall(r.start), wall(r.end), size(r.size), r.name) for r in found]
    if found:
        print(format_table(rows), file=out)
    total = sum(r.size for r in found)
    plural = "s" if len(found) != 1 else ""
    print(f"{len(found)} recording{plural}, {size(total)} on the device", file=out)
    return 0


# -- hikd download ---------------------------------------------------------------------------


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
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    from hikd.devices.capabilities.recordings import DownloadCancelled, device_now
    from hikd.recorders.fetch_recordings import FetchFailed, RetryPolicy, existing_file, fetch
    from hikd.sdk.errors import SdkError

    out = out or sys.stdout
    config, device_config = _config_and_device(config_path, device)
    # Only now: the line above gives fd 2 to the vendor library's output (route_native_stderr)
    # and Python a new sys.stderr; the old one would write into the library's log.
    err = err or sys.stderr
    since, until = _span(device_config, start, end)
    from hikd.files import directory_problem

    problem = directory_problem(output.absolute(), "--output")
    if problem:
        raise UserError(problem)
    with logged_in(device_config, config.sdk) as session:
        found = _find_recordings(session, channel, since, until)
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
        policy = RetryPolicy(stall_timeout_s, retries)
        stop = threading.Event()
        bar = ProgressLine(len(todo), err, live=err.isatty())
        failures: list[str] = []
        lock = threading.Lock()

        def one(rec: Recording) -> None:
            if stop.is_set():
                return
            try:
                fetched = fetch(
                    session,
                    folder,
                    rec.stem,
                    rec.channel,
                    rec.start,
                    rec.end,
                    name=rec.name,
                    policy=policy,
                    stop=stop,
                    progress=lambda size: bar.update(rec.stem, size),
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
