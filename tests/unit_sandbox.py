"""Run a command under the seccomp rules a systemd unit would give it, without systemd.

    /usr/bin/python3 tests/unit_sandbox.py systemd/hikd.service -- hikd run --config F

systemd cannot run as PID 1 on the test machines, so this applies, with libseccomp
(Debian's python3-seccomp, hence the system interpreter), what these directives of the
unit's [Service] section do, then execs the command:

* ``SystemCallFilter=``: the first list decides the mode (an allow-list, to which systemd
  adds ``@default``, or a deny-list); later lines add or, with ``~``, remove calls. Groups
  (``@system-service``...) are expanded by ``systemd-analyze syscall-filter``, so the
  lists are systemd's own. A filtered call kills the process (SIGSYS), or fails with
  ``SystemCallErrorNumber=``'s errno when that is set.
* ``RestrictAddressFamilies=``: ``socket()`` of any other family fails with EAFNOSUPPORT.
* ``RestrictRealtime=yes``: ``sched_setscheduler`` to SCHED_FIFO/RR/DEADLINE fails with EPERM.

Like systemd, each is a filter of its own: the kernel applies the strictest answer.
Standard library and python3-seccomp only: it runs on the system interpreter, not hikd's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from pathlib import Path

import seccomp

# Linux's AF_MAX (include/linux/socket.h): families at or above it do not exist yet.
AF_MAX = 46
FAMILIES = {"AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16}
SCHED_RESET_ON_FORK = 0x40000000
REALTIME_POLICIES = (1, 2, 6)  # SCHED_FIFO, SCHED_RR, SCHED_DEADLINE


def service_directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    section = ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def syscall_groups() -> dict[str, list[str]]:
    """Every group systemd knows, as ``systemd-analyze syscall-filter`` prints them."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
        elif not line.strip():
            current = None
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    calls: set[str] = set()
    for name in names:
        if name.startswith("@"):
            calls |= expand(groups[name], groups)
        else:
            calls.add(name.split(":", 1)[0])  # "name:errno" overrides: the call itself
    return calls


def syscall_filter(d: dict[str, list[str]], groups: dict[str, list[str]]) -> seccomp.SyscallFilter:
    lines = [v for v in d.get("SystemCallFilter", []) if v]
    error = d.get("SystemCallErrorNumber", [""])[-1]
    denied_action = seccomp.KILL_PROCESS
    if error and error != "kill":
        denied_action = seccomp.ERRNO(getattr(errno, error))
    allow_mode = not lines[0].startswith("~")
    # systemd: an allow-list always includes @default (src/core/load-fragment.c).
    chosen = expand(["@default"], groups) if allow_mode else set()
    for value in lines:
        invert = value.startswith("~")
        names = expand(value.lstrip("~").split(), groups)
        if invert == (not allow_mode):
            chosen |= names
        else:
            chosen -= names
    flt = seccomp.SyscallFilter(defaction=seccomp.ALLOW if not allow_mode else denied_action)
    action = seccomp.ALLOW if allow_mode else denied_action
    for name in sorted(chosen):
        # A call this libseccomp or architecture does not know: systemd skips it too.
        with contextlib.suppress(RuntimeError, ValueError):
            flt.add_rule(action, name)
    return flt


def family_filter(values: list[str]) -> seccomp.SyscallFilter:
    allowed = {FAMILIES[name] for value in values for name in value.split()}
    flt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    refuse = seccomp.ERRNO(errno.EAFNOSUPPORT)
    for family in range(AF_MAX):
        if family not in allowed:
            flt.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.EQ, family))
    flt.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.GE, AF_MAX))
    return flt


def realtime_filter() -> seccomp.SyscallFilter:
    flt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for policy in REALTIME_POLICIES:
        for value in (policy, policy | SCHED_RESET_ON_FORK):
            flt.add_rule(
                seccomp.ERRNO(errno.EPERM), "sched_setscheduler", seccomp.Arg(1, seccomp.EQ, value)
            )
    return flt


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    d = service_directives(Path(argv[0]))
    filters = []
    if d.get("RestrictRealtime", ["no"])[-1] == "yes":
        filters.append(realtime_filter())
    if d.get("RestrictAddressFamilies"):
        filters.append(family_filter(d["RestrictAddressFamilies"]))
    if d.get("SystemCallFilter"):
        filters.append(syscall_filter(d, syscall_groups()))
    for flt in filters:
        flt.load()  # sets no_new_privs first, as NoNewPrivileges=yes does
    os.execvp(argv[2], argv[2:])
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
