"""hikd's side of a device: address, login, protocol, arming, clock and listen ports.

The login is the one try of a command (`hikd.devices.login`): never repeated, and what
the device says about tries left is reported with the daemon's own words
(`hikd.devices.lockout`), so a wrong password costs exactly one try.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hikd.devices.lockout import next_try
from hikd.doctor import refusals
from hikd.doctor.documents import DeviceTime, device_time
from hikd.doctor.report import Check, DeviceReport, Status
from hikd.listeners.arming import arming_options
from hikd.sdk.alarms import close_alarm_channel, setup_alarm_channel
from hikd.sdk.errors import AuthError, SdkError

if TYPE_CHECKING:
    from pathlib import Path

    from hikd.config import Config, DeviceConfig, ListenConfig
    from hikd.devices.session import DeviceSession

TIME_URL = "/ISAPI/System/time"
CLOCK_WARNING_S = 5.0
CLOCK_PROBLEM_S = 60.0
"""A clock this far off puts events at the wrong time and backfill in the wrong place."""

WEB_LOGIN = "the device's web page -> Configuration -> System -> User Management"
WEB_TIME = "Configuration -> System -> System Settings -> Time Settings (NTP)"
WEB_NETWORK = "Configuration -> Network -> Advanced Settings -> Integration Protocol"


def reach(report: DeviceReport, device: DeviceConfig, timeout_s: float = 3.0) -> str | None:
    """A TCP connection to the device's port. Returns this host's address on the way to
    the device (what an alarm host on the device must point at), None if unreachable."""
    try:
        with socket.create_connection((device.host, device.port), timeout=timeout_s) as sock:
            local = str(sock.getsockname()[0])
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        report.add(
            Check(
                "address",
                "problem",
                f"cannot reach {device.host}:{device.port} ({why})",
                "check the device's address and port in hikd's configuration, that the "
                "device is powered and on the network, and any firewall between them",
                f"hikd's configuration: [[devices]] name = {device.name!r}, host, port",
            )
        )
        return None
    report.add(Check("address", "ok", f"{device.host}:{device.port} answers (from {local})"))
    return local


def log_in(report: DeviceReport, session: DeviceSession, state_dir: Path) -> bool:
    """One login attempt, never more, and none with a password the device refused when it
    had one try left (`hikd.doctor.refusals`); the check says why it failed and how many
    tries the device has left."""
    device = session.config
    reason = refusals.must_not_try(state_dir, device)
    if reason is not None:
        report.add(
            Check(
                "login",
                "problem",
                f"not tried: {reason}",
                f"fix the password of device {device.name!r} in hikd's configuration (or set "
                "it on the device, or unlock the user there); hikd doctor tries a changed "
                "password",
                WEB_LOGIN,
            )
        )
        return False
    try:
        session.login_once()
    except AuthError as exc:
        plan = next_try(device.name, exc.code, getattr(exc, "login_details", None), 0.0)
        refusals.remember(state_dir, device, plan)
        left = (
            f"; the device allows {plan.retries_left} more wrong "
            f"password{'s' if plan.retries_left != 1 else ''} before it locks the user"
            if plan.retries_left is not None and not plan.unlock_in_s
            else ""
        )
        locked = f"; it unlocks in {plan.unlock_in_s} s" if plan.unlock_in_s else ""
        report.add(
            Check(
                "login",
                "problem",
                f"the device refused user {device.username!r}: {exc}{left}{locked} "
                "(hikd doctor tried once)",
                f"check the user name and password of device {device.name!r} in hikd's "
                "configuration (password, HIKD_PASSWORD_<NAME>, password_file); do not "
                "retry before it is right",
                WEB_LOGIN,
            )
        )
        return False
    except SdkError as exc:
        report.add(
            Check(
                "login",
                "problem",
                f"login failed: {exc}",
                "check login_mode, port and https in hikd's configuration "
                "(ISAPI: port 80/443; private protocol: port 8000)",
                WEB_NETWORK,
            )
        )
        return False
    refusals.forget(state_dir, device)
    facts = session.facts
    serial = f", serial {facts.serial}" if facts and facts.serial else ""
    report.add(Check("login", "ok", f"logged in as {device.username!r}{serial}"))
    report.add(
        Check(
            "protocol",
            "ok",
            f"{session.protocol or 'unknown'} (configured: login_mode = {device.login_mode!r})",
        )
    )
    return True


def arm(report: DeviceReport, session: DeviceSession, config: Config) -> None:
    """Open an alarm channel the way the daemon does, and close it again at once."""
    if not session.config.arm:
        report.add(Check("arming", "ok", "not armed by hikd (arm = false in its configuration)"))
        return
    user_id = session.user_id
    assert user_id is not None
    try:
        handle = setup_alarm_channel(session.sdk, user_id, arming_options(config.arming))
    except SdkError as exc:
        report.add(
            Check(
                "arming",
                "problem",
                f"the device refused to be armed: {exc}",
                "give the user the remote alarm right, and check that the device offers "
                "an alarm stream (ISAPI: /ISAPI/Event/notification/alertStream)",
                WEB_LOGIN + " -> Remote: Notify Surveillance Center / Trigger Alarm Output",
            )
        )
        return
    # Armed is what was asked; the session's logout closes the channel anyway.
    with contextlib.suppress(SdkError):
        close_alarm_channel(session.sdk, handle)
    report.add(Check("arming", "ok", "the device accepted an alarm channel"))


def clock(report: DeviceReport, session: DeviceSession) -> DeviceTime:
    """The device's clock against this host's, and whether it uses NTP."""
    try:
        body = session.isapi("GET", TIME_URL).body
    except SdkError as exc:
        report.add(Check("clock", "warning", f"cannot read the device's time: {exc}", "", WEB_TIME))
        return DeviceTime(None, "")
    found = device_time(body, session.config.tzinfo())
    if found.now is None:
        report.add(Check("clock", "warning", "the device's time document is not readable"))
        return found
    offset = (found.now - datetime.now(UTC)).total_seconds()
    ahead = "ahead of" if offset > 0 else "behind"
    ntp = "sets its clock by NTP" if found.ntp else f"does not use NTP (time mode {found.mode!r})"
    detail = f"device clock {abs(offset):.0f} s {ahead} this host's; the device {ntp}"
    status: Status
    if abs(offset) >= CLOCK_PROBLEM_S:
        status = "problem"
    elif abs(offset) >= CLOCK_WARNING_S or not found.ntp:
        status = "warning"
    else:
        status = "ok"
    remedy = (
        "turn on NTP on the device (and on this host), or set its time zone and clock"
        if status != "ok"
        else ""
    )
    report.add(Check("clock", status, detail, remedy, WEB_TIME if remedy else ""))
    return found


def listen_ports(report: DeviceReport, config: Config, facing: str | None) -> None:
    """Each configured listen port: bound by a running hikd, and reachable on the address
    this host has towards the device."""
    for listen in config.listen:
        report.add(_listen_check(listen, facing))


def _listen_check(listen: ListenConfig, facing: str | None) -> Check:
    name = f"listen port {listen.port}"
    where = "hikd's configuration: [[listen]] address, port"
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((listen.address, listen.port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return Check(name, "problem", f"cannot listen on it: {exc.strerror}", "", where)
    else:
        return Check(
            name,
            "warning",
            f"nothing listens on {listen.address}:{listen.port}",
            "start hikd (systemctl start hikd); the device can only push while it runs",
            where,
        )
    finally:
        probe.close()
    target = facing if listen.address == "0.0.0.0" and facing else listen.address
    if _loopback(listen.address) and facing and not _loopback(facing):
        return Check(
            name,
            "problem",
            f"hikd listens on {listen.address} only: the device cannot reach it",
            f"listen on an address the device can reach ({facing}, or 0.0.0.0)",
            where,
        )
    try:
        socket.create_connection((target, listen.port), timeout=3.0).close()
    except OSError as exc:
        return Check(
            name,
            "problem",
            f"bound, but {target}:{listen.port} does not answer ({exc.strerror or exc})",
            "listen on an address the device can reach (address = 0.0.0.0), and open "
            "the port in this host's firewall",
            where,
        )
    return Check(name, "ok", f"hikd listens; {target}:{listen.port} answers")


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
