"""``[metrics]``: the Prometheus endpoint, and where the daemon's control socket lives.

Kept apart from `models` (which only names the section) so that the section that says how
to watch hikd is read in one place.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

DEFAULT_RUNTIME_DIR = Path("/run/hikd")
"""systemd's ``RuntimeDirectory=hikd`` (systemd/hikd.service)."""

SOCKET_NAME = "hikd.sock"
"""The control socket's name in the runtime directory (`hikd status`)."""


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError("must be an IP address of this machine, e.g. 127.0.0.1") from None
    return value.strip()


class MetricsConfig(BaseModel):
    """``[metrics]``: Prometheus metrics over HTTP (``GET /metrics``); off by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    address: Annotated[str, AfterValidator(_ip_address)] = "127.0.0.1"
    """Loopback by default: the metrics name devices and sinks; expose them on purpose."""
    port: Annotated[int, Field(ge=1, le=65535)] = 9765


def runtime_dir(configured: Path | None) -> Path:
    """Where the control socket is: ``[daemon] runtime_dir``, else the directory systemd
    made for the service (``$RUNTIME_DIRECTORY``), else /run/hikd."""
    if configured is not None:
        return configured
    given = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(given) if given else DEFAULT_RUNTIME_DIR


def socket_path(configured: Path | None) -> Path:
    return runtime_dir(configured) / SOCKET_NAME
