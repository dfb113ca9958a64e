"""``hikd search``: a channel's recordings between two times, as a table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from hikd.cli.output import Subcommands, config_arg, format_table, size, wall
from hikd.cli.recordings import config_and_device, find_recordings, logged_in, span, span_args


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser("search", help="list a channel's recordings between two times")
    config_arg(p)
    span_args(p)
    p.set_defaults(
        handler=lambda args: search_command(
            args.config, args.device, args.channel, args.start, args.end
        )
    )


def search_command(
    config_path: Path | None,
    device: str,
    channel: int,
    start: str,
    end: str,
    out: TextIO | None = None,
) -> int:
    """Print the channel's recordings in the span and their total size."""
    out = out or sys.stdout
    config, device_config = config_and_device(config_path, device)
    since, until = span(device_config, start, end)
    with logged_in(device_config, config.sdk) as session:
        found = find_recordings(session, channel, since, until)
    rows: list[tuple[str, ...]] = [("start", "end", "size", "name")]
    rows += [(wall(r.start), wall(r.end), size(r.size), r.name) for r in found]
    if found:
        print(format_table(rows), file=out)
    total = sum(r.size for r in found)
    plural = "s" if len(found) != 1 else ""
    print(f"{len(found)} recording{plural}, {size(total)} on the device", file=out)
    return 0
