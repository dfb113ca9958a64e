"""``hikd run``: the daemon in the foreground (what systemd starts)."""

from __future__ import annotations

import argparse

from hikd.cli.output import Subcommands, config_arg


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser("run", help="run the daemon in the foreground (what systemd starts)")
    config_arg(p)
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from hikd.daemon import run

    return run(args.config)
