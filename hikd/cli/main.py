"""The ``hikd`` command line: one sub-command per module of this package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hikd import __version__
from hikd.cli.output import config_arg
from hikd.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hikd",
        description="Alarm and recording daemon for Hikvision DVRs, NVRs and cameras.",
    )
    parser.add_argument("--version", action="version", version=f"hikd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run the daemon in the foreground (what systemd starts)")
    config_arg(p)

    p = sub.add_parser("devices", help="log in to each configured device and show what it is")
    config_arg(p)

    p = sub.add_parser("check-config", help="validate the configuration and exit")
    config_arg(p)

    p = sub.add_parser("demo", help="run the simulator and the daemon together")
    config_arg(p)
    p.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0 = never)"
    )

    from hikd.cli import doctor, jobs, recordings

    doctor.add_parser(sub)
    jobs.add_parser(sub)
    recordings.add_parsers(sub)

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
        return _dispatch(args)
    except UserError as exc:
        print(f"hikd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check-config":
        from hikd.cli.check_config import check_config

        return check_config(args.config)
    if args.command == "devices":
        from hikd.cli.devices import devices

        return devices(args.config)
    if args.command == "run":
        from hikd.daemon import run

        return run(args.config)
    if args.command == "demo":
        from hikd.cli.demo import demo

        return demo(args.config, args.duration)
    if args.command == "doctor":
        from hikd.cli.doctor import doctor_command

        return doctor_command(args)
    if args.command == "jobs":
        from hikd.cli.jobs import jobs_command

        return jobs_command(args.config, run=args.run)
    from hikd.cli.recordings import dispatch

    result = dispatch(args)
    if result is None:
        raise AssertionError(args.command)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
