"""``hikd devices``: log in to each configured device once and print what it is."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from hikd.cli.output import Subcommands, config_arg, format_table

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig
    from hikd.devices.session import DeviceSession
    from hikd.sdk.library import Library

_COLUMNS = (
    "name",
    "address",
    "protocol",
    "serial",
    "type",
    "model",
    "channels",
    "alarm i/o",
    "disks",
)


_CHANNEL_COLUMNS = ("channel", "name", "kind", "device id", "library", "private", "camera")
"""hikd's number, then what each place of the device calls it (devices/capabilities/channels.py)."""

Probe = tuple[tuple[str, ...], list[tuple[str, ...]]]


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser("devices", help="log in to each configured device and show what it is")
    config_arg(p)
    p.set_defaults(handler=lambda args: devices(args.config))


def _row(session: DeviceSession) -> tuple[str, ...]:
    facts = session.facts
    assert facts is not None
    # In hikd's numbering: analog 1..A, IP A+1..A+N (hikd.devices.capabilities.channels).
    analog = f"{facts.analog_channels} analog from 1" if facts.analog_channels else ""
    first_ip = facts.analog_channels + 1
    ip = f"{facts.ip_channels} IP from {first_ip}" if facts.ip_channels else ""
    return (
        session.name,
        f"{session.config.host}:{session.config.port}",
        facts.protocol,
        facts.serial,
        facts.device_type,
        session.model,
        ", ".join(part for part in (analog, ip) if part) or "0",
        f"{facts.alarm_inputs}/{facts.alarm_outputs}",
        str(facts.disks),
    )


def _channel_rows(session: DeviceSession) -> list[tuple[str, ...]]:
    return [
        (
            str(c.number),
            c.name or "-",
            c.kind,
            str(c.device_id),
            str(c.library_channel),
            str(c.private_channel),
            c.source or "-",
        )
        for c in session.channels.channels
    ]


def probe(sdk: Library, device: DeviceConfig) -> Probe | str:
    """One login (`hikd.devices.login`), the device's facts, logout."""
    from hikd.devices.login import LoginFailed, login

    try:
        with login(sdk, device) as session:
            return _row(session), _channel_rows(session)
    except LoginFailed as exc:
        return exc.reason


def devices(config_path: Path | None) -> int:
    from hikd.config import load_config
    from hikd.devices.library import open_library
    from hikd.logs import setup_logging
    from hikd.native_stderr import route_native_stderr

    config: Config = load_config(config_path)
    setup_logging("warning", config.logging.format)
    route_native_stderr()
    sdk = open_library(config.sdk)
    enabled = [d for d in config.devices if d.enabled]
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(enabled)))) as pool:
            results = list(pool.map(lambda d: probe(sdk, d), enabled))
    finally:
        sdk.cleanup()
    table: list[tuple[str, ...]] = [_COLUMNS]
    channel_tables: list[str] = []
    failures: list[str] = []
    for device, result in zip(enabled, results, strict=True):
        if isinstance(result, str):
            failures.append(f"{device.name} ({device.host}:{device.port}): {result}")
        else:
            table.append(result[0])
            if result[1]:
                rows = format_table([_CHANNEL_COLUMNS, *result[1]])
                channel_tables.append(f"{device.name} channels:\n{rows}")
    if len(table) > 1:
        print(format_table(table))
    for channels in channel_tables:
        print(f"\n{channels}")
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0
