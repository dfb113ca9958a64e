"""``hikd status``: what the running daemon is doing now, asked over its control socket.

Devices (online, armed, protocol, last event, alarms open), sinks (state, backlog, last
delivery), jobs (next run, last result) and device hosts. Exit code 0 when it answered,
3 when no daemon runs (as ``systemctl status`` says of a stopped service), 1 when it cannot
be asked (no permission).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from hikd.cli.output import Subcommands, config_arg, format_table
from hikd.errors import UserError

NOT_RUNNING = 3
TIMEOUT_S = 10.0


def add_parser(subparsers: Subcommands) -> None:
    """Add ``status`` to hikd's sub-command parser."""
    p = subparsers.add_parser("status", help="what the running daemon is doing now")
    config_arg(p)
    p.add_argument("--json", action="store_true", help="the whole answer as JSON")
    p.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    answer = ask_daemon(args.config, {"get": "status"})
    if answer is None:
        return NOT_RUNNING
    print(json.dumps(answer, indent=2) if args.json else render(answer), file=out)
    return 0


def ask_daemon(
    config: Path | None,
    request: dict[str, Any],
    timeout: float = TIMEOUT_S,
    path: Path | None = None,
) -> dict[str, Any] | None:
    """Ask the daemon of configuration `config` (or at socket `path`) over its control
    socket; its answer, or None (and the line said) when no daemon runs. `UserError` when it
    cannot be asked, or says it cannot answer."""
    from hikd.config.daemon_section import load_daemon_section
    from hikd.config.observe import socket_path

    if path is None:
        path = socket_path(load_daemon_section(config).runtime_dir)
    try:
        answer = ask(path, request, timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        why = f"nothing answers on {path}"
        if not path.parent.is_dir():
            why = (
                f"{path.parent} does not exist; systemd makes it (RuntimeDirectory=hikd), "
                "a hikd started otherwise needs [daemon] runtime_dir"
            )
        print(f"hikd: no hikd daemon is running ({why})", file=sys.stderr)
        return None
    except PermissionError:
        raise UserError(
            f"not allowed to ask the daemon at {path}; run this as root, as the user hikd "
            "runs as, or as a member of its group"
        ) from None
    except (OSError, ValueError) as e:
        raise UserError(f"the daemon at {path} did not answer ({e}); see its log") from None
    if "error" in answer:
        raise UserError(f"the daemon at {path} says: {answer['error']}")
    return answer


def ask(path: Path, request: dict[str, Any], timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """One request, one answer (`hikd.observe.control`)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    return answer


def render(doc: dict[str, Any]) -> str:
    parts = [
        f"hikd {doc.get('version')}, pid {doc.get('pid')}, up {_duration(doc.get('uptime_s'))}"
    ]
    devices: list[tuple[str, ...]] = [
        ("device", "online", "armed", "protocol", "last event", "alarms open")
    ]
    for d in doc.get("devices", []):
        devices.append(
            (
                d["name"],
                _yes(d.get("online")),
                _yes(d.get("armed")),
                d.get("protocol") or "-",
                _event(d.get("last_event")),
                _alarms(d.get("alarms_open") or []),
            )
        )
    parts.append(format_table(devices) if len(devices) > 1 else "no devices configured")
    sinks: list[tuple[str, ...]] = [
        ("sink", "state", "backlog", "oldest", "last delivery", "error")
    ]
    for s in doc.get("sinks", []):
        sinks.append(
            (
                s["name"],
                s["state"] if s.get("up") or s["state"] == "failing" else f"{s['state']} (down)",
                str(s["backlog"]),
                "-"
                if s.get("oldest_pending_age_s") is None
                else _duration(s["oldest_pending_age_s"]),
                _clock(s.get("last_delivery")),
                "" if s.get("up") else (s.get("last_error") or ""),
            )
        )
    parts.append(format_table(sinks) if len(sinks) > 1 else "no sinks configured")
    jobs: list[tuple[str, ...]] = [("job", "kind", "next run", "last run", "last result")]
    for j in doc.get("jobs", []):
        jobs.append(
            (
                j["name"],
                j.get("kind", ""),
                _clock(j.get("next_run")) if j.get("enabled", True) else "disabled",
                _clock(j.get("last_run")),
                j.get("last_result", ""),
            )
        )
    if len(jobs) > 1:
        parts.append(format_table(jobs))
    hosts = doc.get("hosts")
    if hosts is None:
        parts.append("devices run in the daemon's own process")
    else:
        rows: list[tuple[str, ...]] = [
            ("device host", "pid", "state", "devices", "restarts", "last crash")
        ]
        for h in hosts:
            names = [d["name"] if isinstance(d, dict) else str(d) for d in h.get("devices", [])]
            rows.append(
                (
                    str(h.get("index", "?")),
                    str(h.get("pid") or "-"),
                    str(h.get("state", "")),
                    ", ".join(names) or "-",
                    str(h.get("restarts", 0)),
                    h.get("last_crash") or "-",
                )
            )
        parts.append(format_table(rows))
    if doc.get("listen"):
        parts.append(_listen(doc["listen"]))
    return "\n\n".join(parts)


def _listen(fronts: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, ...]] = [
        ("listen port", "accepted", "refused", "dropped senders", "kept", "resent")
    ]
    for f in fronts:
        refused: dict[str, int] = f.get("refused") or {}
        reasons = sorted(refused.items(), key=lambda item: -item[1])
        why = ", ".join(f"{reason} {count}" for reason, count in reasons[:2])
        more = ", ..." if len(reasons) > 2 else ""
        rows.append(
            (
                str(f.get("port", "?")),
                str(f.get("accepted", 0)),
                f"{sum(refused.values())} ({why}{more})" if refused else "0",
                str(f.get("dropped_senders", 0)),
                f"{f.get('kept', 0)} ({_size(f.get('kept_bytes', 0))})",
                str(f.get("resent", 0)),
            )
        )
    return format_table(rows)


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1_000_000:.1f} MB"


def _yes(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "no"


def _clock(value: str | None) -> str:
    """A stored time as this machine's clock shows it."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def _event(event: dict[str, Any] | None) -> str:
    if not event:
        return "-"
    where = f" ch {event['channel']}" if event.get("channel") is not None else ""
    return f"{_clock(event.get('received'))} {event['type']} {event['state']}{where}"


def _alarms(alarms: list[dict[str, Any]]) -> str:
    if not alarms:
        return "0"
    shown = [
        a["type"] + (f" ch {a['channel']}" if a.get("channel") is not None else "")
        for a in alarms[:3]
    ]
    more = f", +{len(alarms) - 3}" if len(alarms) > 3 else ""
    return f"{len(alarms)} ({', '.join(shown)}{more})"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    days, rest = divmod(s, 86400)
    text = f"{rest // 3600} h {rest % 3600 // 60} min"
    return f"{days} d {text}" if days else text
