"""The device's own log, searched through the session.

NET_DVR_FindDVRLog_V30 works on both protocols: over ISAPI the library maps each entry's
``<metaId>`` path to the private protocol's major/minor types (sdk-over-isapi.md part 2 §e).
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from hikd.sdk.device_log import LogRecord, search_log
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession


def device_log(
    session: DeviceSession, start: datetime, stop: datetime, tz: tzinfo
) -> Generator[LogRecord, None, None]:
    """Every log entry between `start` and `stop` (inclusive); close the iterator to end
    the search early (it closes the search handle). Raises `SdkError` while iterating,
    also when the session is not logged in."""
    user_id = session.user_id
    if user_id is None:
        raise SdkError(3, "not logged in")
    yield from search_log(session.sdk, user_id, start, stop, tz)
