"""``hikd reload``: the running daemon reads its configuration again (as SIGHUP and
``systemctl reload hikd`` do) and applies what changed in its devices, log level, allowed
senders, ``[alarms]``, ``[arming]`` and jobs (README "Reloading the configuration" has the
table); prints what changed and what waits for a restart, or the one line that says why
nothing did. Exit code 0 when reloaded, 1 when the
configuration was refused (the daemon runs on as before), 3 when no daemon runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from hikd.cli.output import Subcommands, config_arg

RELOAD_TIMEOUT_S = 120.0
"""Removed and changed devices log out first (each within ``sdk.shutdown_timeout_s``) and
their last events are stored before the daemon answers."""


def add_parser(subparsers: Subcommands) -> None:
    """Add ``reload`` to hikd's sub-command parser."""
    p = subparsers.add_parser("reload", help="make the running daemon read its configuration again")
    config_arg(p)
    p.add_argument("--json", action="store_true", help="the whole answer as JSON")
    p.set_defaults(handler=reload_command)


def reload_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from hikd.cli.status import NOT_RUNNING, ask_daemon
    from hikd.config.daemon_section import load_daemon_section
    from hikd.config.observe import runtime_dir, socket_path
    from hikd.errors import ConfigError

    out = out or sys.stdout
    try:
        path = socket_path(load_daemon_section(args.config).runtime_dir)
    except ConfigError as exc:
        # The file cannot be read now; the daemon still listens where it started, which is
        # the default place unless the file moved it (then it cannot be found from here).
        path = socket_path(runtime_dir(None))
        if not path.exists():
            print(f"hikd: configuration not reloaded: {exc}", file=sys.stderr)
            return 1
    answer = ask_daemon(args.config, {"do": "reload"}, RELOAD_TIMEOUT_S, path)
    if answer is None:
        return NOT_RUNNING
    if args.json:
        print(json.dumps(answer, indent=2), file=out)
    elif answer.get("ok"):
        print(f"reloaded: {answer.get('line', '')}", file=out)
    else:
        print(f"hikd: {answer.get('line', 'not reloaded')}", file=sys.stderr)
    return 0 if answer.get("ok") else 1
