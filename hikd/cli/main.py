"""The ``hikd`` command line: one sub-command per module of this package.

Each command module has ``add_parser(subparsers)``, which adds its sub-command and sets
``handler`` (a function of the parsed arguments that returns the exit code). A command
module imports only the standard library, `hikd.cli.output` and `hikd.errors` at its top
and the rest inside its handler: ``hikd --help`` and every command then start without
loading the configuration models, the vendor library or the daemon they do not need.
Adding a command: its module here, and one entry in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hikd import __version__
from hikd.cli import (
    check_config,
    demo,
    devices,
    doctor,
    download,
    events,
    jobs,
    reload,
    run,
    search,
    status,
)
from hikd.errors import UserError

COMMANDS = (
    run,
    status,
    reload,
    devices,
    check_config,
    demo,
    doctor,
    jobs,
    search,
    download,
    events,
)
"""The command modules, in the order ``hikd --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hikd",
        description="Alarm and recording daemon for Hikvision DVRs, NVRs and cameras.",
    )
    parser.add_argument("--version", action="version", version=f"hikd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    sub.add_parser(
        "sim",
        help="run the simulated Hikvision NVR/camera (hikd sim --help)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `hikd sim ...` has its own parser (run, trigger, scenario).
    if args_list and args_list[0] == "sim":
        from hikd.sim.cli import main as sim_main

        return sim_main(args_list[1:])

    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        result: int = args.handler(args)
        return result
    except UserError as exc:
        print(f"hikd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
