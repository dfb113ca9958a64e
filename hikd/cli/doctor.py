"""``hikd doctor``: why a device sends no events, and what to change where.

Exit code 0 when no check is a problem, 1 otherwise; ``--json`` prints one document for
scripts. ``--fix`` lists the changes that would fix the device; ``--fix --yes`` makes them.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from hikd.cli.output import Subcommands, config_arg
from hikd.errors import UserError

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig
    from hikd.doctor.report import Change, DeviceReport


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser(
        "doctor",
        help="check why a device sends no events, and what to change where (--fix fixes)",
    )
    config_arg(p)
    p.add_argument("--device", metavar="NAME", help="check only this device")
    p.add_argument(
        "--fix",
        action="store_true",
        help="list the changes that make the device send its events to hikd (a dry run)",
    )
    p.add_argument("--yes", action="store_true", help="with --fix: make the changes")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.set_defaults(handler=doctor_command)


def doctor_command(args: argparse.Namespace) -> int:
    from hikd.config import load_config
    from hikd.devices.library import open_library
    from hikd.doctor.run import examine
    from hikd.logs import setup_logging
    from hikd.native_stderr import route_native_stderr

    if args.yes and not args.fix:
        raise UserError("--yes only goes with --fix (hikd doctor --fix --yes)")
    config = load_config(args.config)
    devices = _chosen(config, args.device)
    setup_logging("warning", config.logging.format)
    route_native_stderr()
    sdk = open_library(config.sdk)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(devices)))) as pool:
            reports = list(
                pool.map(lambda d: examine(sdk, config, d, fix=args.fix, apply=args.yes), devices)
            )
    finally:
        sdk.cleanup()
    if args.json:
        ok = all(r.status != "problem" for r in reports)
        print(json.dumps({"ok": ok, "devices": [r.to_dict() for r in reports]}, indent=2))
    else:
        print("\n\n".join(render(r, fix=args.fix, applied=args.yes) for r in reports))
        if len(reports) > 1:
            counts = Counter(r.status for r in reports)
            said = ", ".join(f"{counts[s]} {s}" for s in ("problem", "warning", "ok") if counts[s])
            print(f"\n{len(reports)} devices: {said}")
    return 0 if all(r.status != "problem" for r in reports) else 1


def _chosen(config: Config, name: str | None) -> list[DeviceConfig]:
    if name is None:
        devices = [d for d in config.devices if d.enabled]
        if not devices:
            raise UserError("no enabled device in the configuration: add a [[devices]] table")
        return devices
    for device in config.devices:
        if device.name == name:
            return [device]
    known = ", ".join(d.name for d in config.devices) or "none"
    raise UserError(f"no device named {name!r} in the configuration (devices: {known})")


def render(report: DeviceReport, fix: bool, applied: bool) -> str:
    """The report as a person reads it: one line per check, the remedy under it."""
    lines = [f"{report.device} ({report.address}): {report.status}"]
    width = max((len(c.name) for c in report.checks), default=0)
    for check in report.checks:
        lines.append(f"  {check.status:<8} {check.name:<{width}}  {check.detail}")
        pad = " " * (11 + width + 2)
        if check.remedy:
            lines.append(f"{pad}change: {check.remedy}")
        if check.where:
            lines.append(f"{pad}where:  {check.where}")
    if fix:
        lines.extend(_changes(report, applied))
    return "\n".join(lines)


def _changes(report: DeviceReport, applied: bool) -> list[str]:
    if not report.changes:
        return ["  nothing to change"]
    if applied:
        head = f"  changes made (configuration saved first to {report.backup or '-'}):"
    else:
        head = "  changes --fix --yes would make (dry run: nothing was written):"
    lines = [head]
    groups: dict[str, list[Change]] = {}
    for change in report.changes:
        groups.setdefault(change.added, []).append(change)
    for added, changes in groups.items():
        for change in changes:
            if not applied:
                state = ""
            elif change.applied:
                state = " [done]"
            else:
                state = f" [FAILED: {change.error}]"
            lines.append(f"    {change.summary}{state}")
            lines.append(f"      {change.method} {change.url}")
        each = "each adds" if len(changes) > 1 else "adds"
        verb = "sets" if "<" not in added else each
        lines.append(f"      {verb}: {added}")
    return lines
