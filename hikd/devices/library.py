"""The vendor library opened with the `[sdk]` section of the configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hikd.sdk.library import Library, SdkSettings

if TYPE_CHECKING:
    from hikd.config import SdkConfig


def open_library(config: SdkConfig, *, daemon: bool = False) -> Library:
    """`Library.open` with the configured directory and time-outs.

    Only the daemon (``daemon=True``) also sets the library's connect tries, its own
    reconnect interval and its log file: a one-shot command logs in once and must not write
    into the daemon's log directory (it may run as another user)."""
    if daemon:
        settings = SdkSettings(
            connect_timeout_ms=config.connect_timeout_ms,
            connect_tries=config.connect_tries,
            recv_timeout_ms=config.recv_timeout_ms,
            reconnect_interval_ms=config.reconnect_interval_ms,
            log_dir=config.log_dir,
            log_level=config.log_level,
        )
    else:
        settings = SdkSettings(
            connect_timeout_ms=config.connect_timeout_ms, recv_timeout_ms=config.recv_timeout_ms
        )
    return Library.open(config.library_dir, settings)
