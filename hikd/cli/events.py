"""``hikd events tail``: the events as the daemon stores them, one line each (or JSON).

It reads the outbox of the configured state directory, read-only, from its end: the events
stored from then on, as they are committed, whichever process stored them. The daemon need
not run (nothing comes then).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from hikd.cli.output import Subcommands, config_arg

POLL_S = 0.1
"""How often the outbox is looked at (one cheap pragma when nothing changed)."""


def add_parser(subparsers: Subcommands) -> None:
    """Add ``events tail`` to hikd's sub-command parser."""
    p = subparsers.add_parser("events", help="follow the events as hikd stores them")
    actions = p.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    tail = actions.add_parser("tail", help="print each event stored from now on (Ctrl-C ends)")
    config_arg(tail)
    tail.add_argument(
        "--device", action="append", metavar="NAME", help="only this device (repeatable)"
    )
    tail.add_argument(
        "--type", action="append", metavar="TYPE", help="only this event type (repeatable)"
    )
    tail.add_argument("--json", action="store_true", help="each event as its JSON, one a line")
    tail.set_defaults(handler=events_command)


def events_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from hikd.config.daemon_section import load_daemon_section
    from hikd.delivery.outbox_follow import OutboxFollower

    out = out or sys.stdout
    follower = OutboxFollower(Path(load_daemon_section(args.config).state_dir))
    devices = set(args.device or ())
    types = set(args.type or ())
    print(
        f"following {follower.path} from event {follower.last} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    missed = 0
    try:
        while True:
            for seq, text in follower.poll():
                event = _parse(text)
                if event is None:
                    print(f"(event {seq} cannot be read; skipped)", file=sys.stderr, flush=True)
                    continue
                if devices and (event.get("device") or {}).get("name") not in devices:
                    continue
                if types and event.get("type") not in types:
                    continue
                print(text if args.json else line(event), file=out, flush=True)
            if follower.missed > missed:
                print(
                    f"({follower.missed - missed} events were delivered and removed before "
                    "they could be shown)",
                    file=sys.stderr,
                    flush=True,
                )
                missed = follower.missed
            time.sleep(POLL_S)
    except BrokenPipeError:  # `| head`: the reader has had enough
        return 0
    finally:
        follower.close()


def _parse(text: str) -> dict[str, Any] | None:
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


_SHOWN = ("reason", "error", "sink", "sender", "count", "summary", "ended_by", "duration_s")
"""Attributes worth a place on the line, when the event has them."""


def line(event: dict[str, Any]) -> str:
    """``2026-11-23 21:11:19  nvr  ch 3  alarm motion start  duration_s=29.1``: when hikd
    received it, by this machine's clock."""
    received = str(event.get("received", ""))
    try:
        clock = datetime.fromisoformat(received).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        clock = received
    device = (event.get("device") or {}).get("name", "?")
    parts = [clock, device]
    if event.get("channel") is not None:
        parts.append(f"ch {event['channel']}")
    parts.append(f"{event.get('kind')} {event.get('type')} {event.get('state')}")
    attributes = event.get("attributes") or {}
    details = [f"{k}={attributes[k]}" for k in _SHOWN if attributes.get(k) not in (None, "")]
    if event.get("files"):
        details.append(f"files={len(event['files'])}")
    return "  ".join(parts + details)
