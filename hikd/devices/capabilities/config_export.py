"""The device's configuration file, by the route that works on the session's protocol.

Private protocol: NET_DVR_GetConfigFile_V30 (seed 5.31.22). ISAPI: the same file from
``GET /ISAPI/System/configurationData`` through the pass-through (binary replies come
back unchanged up to 64 MiB, sdk-over-isapi.md part 2 g).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hikd.sdk.config_file import get_config_file
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

CONFIGURATION_URL = "/ISAPI/System/configurationData"
FIRST_BUFFER = 4 * 1024 * 1024
"""Configuration files are a few hundred KiB to a few MiB; larger ones grow the buffer."""


def export_configuration(session: DeviceSession, timeout_ms: int = 60_000) -> bytes:
    """The configuration file as the device exports it (opaque, often encrypted)."""
    if session.protocol == "private":
        user_id = session.user_id
        if user_id is None:
            raise SdkError(3, "not logged in")
        data = get_config_file(session.sdk, user_id)
    else:
        reply = session.isapi("GET", CONFIGURATION_URL, timeout_ms=timeout_ms, buffer=FIRST_BUFFER)
        data = reply.body
    if not data:
        raise SdkError(0, "the device exported an empty configuration file")
    return data
