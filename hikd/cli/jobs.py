"""``hikd jobs``: the configured jobs with their next run and last result.

They are read from the state database (the daemon need not run); ``--run NAME`` runs one
job once now. Its events go into the outbox of the configured state directory (see
hikd/delivery/outbox_append.py), so the daemon's sinks deliver them, now if it runs, else
when it starts.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hikd.cli.output import Subcommands, config_arg, format_table, wall
from hikd.errors import UserError

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig
    from hikd.delivery.outbox_append import OutboxAppender
    from hikd.devices.session import DeviceSession
    from hikd.events import Event
    from hikd.jobs.config import JobSpec


def add_parser(subparsers: Subcommands) -> None:
    """Add ``jobs`` to hikd's sub-command parser."""
    p = subparsers.add_parser("jobs", help="list the scheduled jobs, their next and last run")
    config_arg(p)
    p.add_argument("--run", metavar="NAME", help="run this job once now, then list")
    p.set_defaults(handler=lambda args: jobs_command(args.config, run=args.run))


def jobs_command(
    config_path: Path | None, run: str | None = None, out: TextIO | None = None
) -> int:
    from hikd.config import load_config
    from hikd.jobs.config import parse_jobs
    from hikd.jobs.scheduler import describe_jobs
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
        next_run = wall(row.next_run) if row.next_run else ("disabled" if not row.enabled else "-")
        last = wall(row.last_run.astimezone()) if row.last_run else "-"
        mark = "" if row.last_ok is None else ("ok: " if row.last_ok else "FAILED: ")
        table.append(
            (row.name, row.kind, row.devices, row.schedule, next_run, last, mark + row.last_result)
        )
    print(format_table(table), file=out)
    return code


def _run_job(config: Config, specs: list[JobSpec], name: str, out: TextIO) -> int:
    """Log in to the job's devices, run it once, record it in the state db, log out."""
    from hikd.devices.library import open_library
    from hikd.devices.login import LoginFailed, login_once
    from hikd.devices.session import DeviceSession
    from hikd.jobs.config import default_output_dir
    from hikd.jobs.scheduler import JobScheduler
    from hikd.logs import setup_logging
    from hikd.native_stderr import route_native_stderr
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
    sdk = open_library(config.sdk)
    sessions: dict[str, DeviceSession] = {}
    try:
        for device in devices:
            session = DeviceSession(sdk, device, publish=lambda _event: None)
            sessions[device.name] = session
            try:
                login_once(session)
            except LoginFailed as exc:
                print(f"{device.name}: cannot log in: {exc.reason}", file=out)
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
    from hikd.delivery.outbox_append import OutboxAppender
    from hikd.sinks.registry import enabled_sinks

    return OutboxAppender(Path(config.daemon.state_dir), enabled_sinks(config.sinks))


def _storing(outbox: OutboxAppender) -> Callable[[Event], None]:
    """A job's `publish` that stores each event before it returns: a job marks what it
    published as done right after, and nothing may be marked done that is not stored."""
    from hikd.delivery.outbox import OutboxUnwritable

    def publish(event: Event) -> None:
        try:
            outbox.append([event])
        except OutboxUnwritable as exc:
            raise UserError(str(exc)) from None  # the job fails; its cursor is not moved

    return publish
