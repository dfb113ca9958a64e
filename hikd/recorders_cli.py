"""``hikd jobs``, ``hikd search`` and ``hikd download``.

* ``hikd jobs`` lists the configured jobs with their next run and last result, read from
  the state database (the daemon need not run); ``--run NAME`` runs one job once now. Its
  events go into the outbox of the configured state directory (see hikd/outbox_append.py),
  so the daemon's sinks deliver them, now if it runs, else when it starts.
* ``hikd search`` lists a channel's recordings between two times.
* ``hikd download`` fetches them into ``DIR/<device>/<channel>/<start>_<end>.ps``, skipping
  those already there (run it again after an interruption and it goes on), with a
  progress line on stderr when that is a terminal.

Times given without an offset are on the device's clock (its ``timezone`` setting, UTC
when unset), as the device itself shows them.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hikd.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from hikd.capabilities.download import Recording
    from hikd.config import Config, DeviceConfig, SdkConfig
    from hikd.events import Event
    from hikd.jobs_config import JobSpec
    from hikd.outbox_append import OutboxAppender
    from hikd.session import DeviceSession

COMMANDS = ("jobs", "search", "download")
OPEN_MARGIN_S = 60.0
"""``hikd download`` leaves out a recording ending less than this before the device's
now: it is still being written, and fetching it now would give a truncated copy."""


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        help="configuration file (TOML); default: $HIKD_CONFIG or /etc/hikd/hikd.toml",
    )


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
    """Add ``jobs``, ``search`` and ``download`` to hikd's sub-command parser."""
    p = subparsers.add_parser("jobs", help="list the scheduled jobs, their next and last run")
    _config_arg(p)
    p.add_argument("--run", metavar="NAME", help="run this job once now, then list")

    p = subparsers.add_parser("search", help="list a channel's recordings between two times")
    _config_arg(p)
    _span_args(p)

    p = subparsers.add_parser("download", help="download a channel's recordings")
    _config_arg(p)
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
    if command == "jobs":
        return jobs_command(args.config, run=args.run)
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


# -- shared ----------------------------------------------------------------------------


def default_output_dir(config: Config) -> Path:
    """Where jobs write when they name no ``output_dir``: ``<state_dir>/files/<job>``."""
    configured = getattr(config.daemon, "output_dir", None)
    return Path(configured) if configured else Path(config.daemon.state_dir) / "files"


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
    # The device's clock zone, as hikd.capabilities.download.device_zone has it.
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
def logged_in(device: DeviceConfig, sdk_config: SdkConfig | None = None) -> Iterator[DeviceSession]:
    """One login to a configured device (no retries: a wrong password must not count
    twice), logged out and the library cleaned up afterwards."""
    from hikd.config import SdkConfig
    from hikd.sdk.errors import SdkError
    from hikd.sdk.library import Library, SdkSettings
    from hikd.session import DeviceSession

    sdk_config = sdk_config or SdkConfig()
    sdk = Library.open(
        sdk_config.library_dir,
        SdkSettings(
            connect_timeout_ms=sdk_config.connect_timeout_ms,
            recv_timeout_ms=sdk_config.recv_timeout_ms,
        ),
    )
    try:
        session = DeviceSession(sdk, device, publish=lambda _event: None)
        try:
            session.login_once()
        except SdkError as exc:
            raise UserError(
                f"cannot log in to {device.name} ({device.host}:{device.port}): {exc}"
            ) from None
        try:
            yield session
        finally:
            session.close()
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
    from hikd.capabilities.download import search_recordings
    from hikd.sdk.errors import SdkError

    _check_channel(session, channel)
    try:
        return search_recordings(session, channel, since, until)
    except SdkError as exc:
        raise UserError(f"the search on {session.name} failed: {exc}") from None


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _wall(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


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
    rows += [(_wall(r.start), _wall(r.end), _size(r.size), r.name) for r in found]
    if found:
        print(format_table(rows), file=out)
    total = sum(r.size for r in found)
    plural = "s" if len(found) != 1 else ""
    print(f"{len(found)} recording{plural}, {_size(total)} on the device", file=out)
    return 0


# -- hikd download ---------------------------------------------------------------------------


class ProgressLine:
    """``files 3/10, 41.2 MB`` on one terminal line, redrawn at most 10 times a second."""

    def __init__(self, total: int, stream: TextIO, live: bool) -> None:
        self.total = total
        self.stream = stream
        self.live = live
        self.done = 0
        self.failed = 0
        self.finished_bytes = 0
        self._current: dict[str, int] = {}
        self._lock = threading.Lock()
        self._drawn = 0.0

    def update(self, key: str, size: int) -> None:
        with self._lock:
            self._current[key] = size
        self._draw()

    def finish(self, key: str, size: int, ok: bool) -> None:
        with self._lock:
            self._current.pop(key, None)
            if ok:
                self.done += 1
                self.finished_bytes += size
            else:
                self.failed += 1
        self._draw(force=True)

    def text(self) -> str:
        with self._lock:
            size = self.finished_bytes + sum(self._current.values())
            failed = f", {self.failed} failed" if self.failed else ""
            return f"files {self.done}/{self.total}{failed}, {_size(size)}"

    def _draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        self.stream.write("\r\x1b[K" + self.text())
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


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
    from hikd.capabilities.download import DownloadCancelled, device_now
    from hikd.recorders.download import FetchFailed, RetryPolicy, existing_file, fetch
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
                print(f"saved {fetched.path} ({_size(fetched.size)})", file=out, flush=True)

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
        f"({_size(bar.finished_bytes)})",
        file=out,
    )
    return 1 if failures else 0


# -- hikd jobs -------------------------------------------------------------------------------


def jobs_command(
    config_path: Path | None, run: str | None = None, out: TextIO | None = None
) -> int:
    from hikd.config import load_config
    from hikd.jobs_config import parse_jobs
    from hikd.scheduler import describe_jobs
    from hikd.state import FILE_NAME, StateStore

    out = out or sys.stdout
    config = load_config(config_path)
    specs = parse_jobs(config.jobs, [d.name for d in config.devices])
    code = 0
    if run is not None:
        code = _run_job(config, specs, run, out)
    db = Path(config.daemon.state_dir) / FILE_NAME
    try:
        state = StateStore(db, read_only=True) if db.is_file() else None
        try:
            rows = describe_jobs(specs, state)
        finally:
            if state is not None:
                state.close()
    except sqlite3.Error as exc:
        raise UserError(
            f"cannot read the state database {db}: {exc} (run as the user hikd runs as)"
        ) from None
    if not rows:
        print("no jobs configured (add [[jobs]] tables to the config)", file=out)
        return code
    table: list[tuple[str, ...]] = [
        ("name", "kind", "devices", "schedule", "next run", "last run", "result")
    ]
    for row in rows:
        next_run = _wall(row.next_run) if row.next_run else ("disabled" if not row.enabled else "-")
        last = _wall(row.last_run.astimezone()) if row.last_run else "-"
        mark = "" if row.last_ok is None else ("ok: " if row.last_ok else "FAILED: ")
        table.append(
            (row.name, row.kind, row.devices, row.schedule, next_run, last, mark + row.last_result)
        )
    print(format_table(table), file=out)
    return code


def _run_job(config: Config, specs: list[JobSpec], name: str, out: TextIO) -> int:
    """Log in to the job's devices, run it once, record it in the state db, log out."""
    from hikd.logs import setup_logging
    from hikd.native_stderr import route_native_stderr
    from hikd.scheduler import JobScheduler
    from hikd.sdk.errors import SdkError
    from hikd.sdk.library import Library, SdkSettings
    from hikd.session import DeviceSession
    from hikd.state import StateStore

    setup_logging("warning", config.logging.format)
    route_native_stderr()
    chosen = [s for s in specs if s.name == name]
    if not chosen:
        known = ", ".join(s.name for s in specs) or "none"
        raise UserError(f"no job named {name!r} (configured: {known})")
    spec = chosen[0]
    wanted = spec.settings.devices
    devices: list[DeviceConfig] = [
        d for d in config.devices if d.enabled and (wanted is None or d.name in wanted)
    ]
    try:
        state = StateStore.open(Path(config.daemon.state_dir))
    except (sqlite3.Error, OSError) as exc:
        raise UserError(
            f"cannot open the state database in {config.daemon.state_dir}: {exc} "
            "(run as the user hikd runs as)"
        ) from None
    try:
        outbox = _open_outbox(config)
    except BaseException:
        state.close()
        raise
    sdk = Library.open(
        config.sdk.library_dir,
        SdkSettings(
            connect_timeout_ms=config.sdk.connect_timeout_ms,
            recv_timeout_ms=config.sdk.recv_timeout_ms,
        ),
    )
    sessions: dict[str, DeviceSession] = {}
    try:
        for device in devices:
            session = DeviceSession(sdk, device, publish=lambda _event: None)
            sessions[device.name] = session
            try:
                session.login_once()
            except SdkError as exc:
                print(f"{device.name}: cannot log in: {exc}", file=out)
        scheduler = JobScheduler(
            [spec],
            lambda: sessions,
            _storing(outbox),
            state,
            threading.Event(),
            default_output_dir(config),
        )
        results = scheduler.run_now(name)
    finally:
        for session in sessions.values():
            session.close()
        state.close()
        outbox.close()
        sdk.cleanup()
    for result in results:
        status = "ok" if result.ok else "FAILED"
        print(
            f"{name} on {result.details.get('device', '?')}: {status}: {result.summary}", file=out
        )
    if outbox.stored:
        print(
            f"{outbox.stored} event{'s' if outbox.stored != 1 else ''} stored in {outbox.path}: "
            "the daemon's sinks deliver them (if hikd is not running, when it starts)",
            file=out,
        )
    return 0 if results and all(r.ok for r in results) else 1


def _open_outbox(config: Config) -> OutboxAppender:
    from hikd.outbox_append import OutboxAppender
    from hikd.sinks.registry import enabled_sinks

    return OutboxAppender(Path(config.daemon.state_dir), enabled_sinks(config.sinks))


def _storing(outbox: OutboxAppender) -> Callable[[Event], None]:
    """A job's `publish` that stores each event before it returns: a job marks what it
    published as done right after, and nothing may be marked done that is not stored."""
    from hikd.outbox import OutboxUnwritable

    def publish(event: Event) -> None:
        try:
            outbox.append([event])
        except OutboxUnwritable as exc:
            raise UserError(str(exc)) from None  # the job fails; its cursor is not moved

    return publish
