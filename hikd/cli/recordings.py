"""What ``hikd search`` and ``hikd download`` share: a channel and a span of time on the
command line, one login to the device, the channel's recordings in the span.

Times given without an offset are on the device's clock (its ``timezone`` setting, UTC
when unset), as the device itself shows them.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from hikd.errors import UserError

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig, SdkConfig
    from hikd.devices.capabilities.recordings import Recording
    from hikd.devices.session import DeviceSession


def span_args(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--channel``, ``--from`` and ``--to``."""
    parser.add_argument("--device", "-d", required=True, help="device name from the config")
    parser.add_argument("--channel", "-n", type=int, required=True, help="channel number")
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="TIME",
        help="start, ISO 8601 (2024-05-01T08:00); no offset = the device's clock",
    )
    parser.add_argument(
        "--to",
        dest="end",
        default="now",
        metavar="TIME",
        help="end, ISO 8601 or 'now' (default)",
    )


def parse_time(text: str, tz: tzinfo) -> datetime:
    """ISO 8601 (or 'now') -> an aware datetime; no offset = the device's clock (`tz`)."""
    if text.strip().lower() == "now":
        return datetime.now(tz).replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"{text!r} is not a time: use ISO 8601 like 2024-05-01T08:00 or 2024-05-01"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def span(device: DeviceConfig, start: str, end: str) -> tuple[datetime, datetime]:
    """``--from`` and ``--to`` as aware times, on the device's clock when they have no offset."""
    # The device's clock zone, as hikd.devices.capabilities.recordings.device_zone has it.
    tz = device.tzinfo() or UTC
    since, until = parse_time(start, tz), parse_time(end, tz)
    if until < since:
        raise UserError("--to is before --from")
    return since, until


def config_and_device(config_path: Path | None, name: str) -> tuple[Config, DeviceConfig]:
    """The configuration (logging set up for a command) and the device named `name`."""
    from hikd.config import load_config
    from hikd.logs import setup_logging
    from hikd.native_stderr import route_native_stderr

    config = load_config(config_path)
    setup_logging("warning", config.logging.format)
    route_native_stderr()
    try:
        return config, config.device(name)
    except KeyError:
        known = ", ".join(d.name for d in config.devices) or "none"
        raise UserError(f"no device named {name!r} in the config (known: {known})") from None


@contextmanager
def logged_in(device: DeviceConfig, sdk_config: SdkConfig) -> Iterator[DeviceSession]:
    """The vendor library opened for one login to `device` (`hikd.devices.login`), both
    closed when the block ends."""
    from hikd.devices.library import open_library
    from hikd.devices.login import login

    sdk = open_library(sdk_config)
    try:
        with login(sdk, device) as session:
            yield session
    finally:
        sdk.cleanup()


def check_channel(session: DeviceSession, channel: int) -> None:
    """One line naming the channels there are when the device has no `channel`."""
    have_channels = session.channels.numbers
    if have_channels and channel not in have_channels:
        have = ", ".join(str(c) for c in have_channels)
        raise UserError(f"device {session.name} has no channel {channel} (it has {have})")


def find_recordings(
    session: DeviceSession, channel: int, since: datetime, until: datetime
) -> list[Recording]:
    """The channel's recordings in the span, or one line saying why there are none."""
    from hikd.devices.capabilities.recordings import search_recordings
    from hikd.sdk.errors import SdkError

    check_channel(session, channel)
    try:
        return search_recordings(session, channel, since, until)
    except SdkError as exc:
        raise UserError(f"the search on {session.name} failed: {exc}") from None
