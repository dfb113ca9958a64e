"""A JPEG of one channel, by the route that works on the session's protocol.

Private protocol: NET_DVR_CaptureJPEGPicture_NEW. ISAPI: the library refuses that call
(error 189, sdk-over-isapi.md part 2 f), so hikd asks the device for
``GET /ISAPI/Streaming/channels/<ch>01/picture`` through the pass-through, which returns
the device's JPEG byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hikd.events import Event
from hikd.files import write_atomically
from hikd.sdk.capture import FIRST_BUFFER, capture_jpeg
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

_JPEG_START = b"\xff\xd8"


class NotAPicture(SdkError):
    """The device answered, but not with a JPEG."""


def snapshot(session: DeviceSession, channel: int, timeout_ms: int = 10_000) -> bytes:
    """The current picture of ``channel`` (hikd's channel number) as JPEG bytes.
    Raises `SdkError` (`NotFoundError` for a channel the device does not have)."""
    if session.protocol == "private":
        user_id = session.user_id
        if user_id is None:
            raise SdkError(3, "not logged in")
        data = capture_jpeg(session.sdk, user_id, session.channels.library_channel(channel))
    else:
        # Stream <id>01 is the main stream of the channel the device numbers <id> (its
        # InputProxy or video input id). A 4 MiB first buffer: a too-small one fails with
        # error 43 and no size hint (part 2 f), and each retry would ask the camera for a
        # new picture.
        url = f"/ISAPI/Streaming/channels/{session.channels.device_id(channel)}01/picture"
        data = session.isapi("GET", url, timeout_ms=timeout_ms, buffer=FIRST_BUFFER).body
    if not data.startswith(_JPEG_START):
        raise NotAPicture(0, f"channel {channel} sent {len(data)} bytes that are not a JPEG")
    return data


def write_picture(path: Path, data: bytes) -> None:
    """Write through a temporary name: a reader never sees half a JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)


def snapshot_event(
    session: DeviceSession,
    channel: int,
    path: Path,
    size: int,
    alarm: Event | None = None,
    command_id: str = "",
) -> Event:
    """The file event of a stored snapshot; one taken for an alarm names it, one taken
    on a user's command names the command."""
    attributes: dict[str, object] = {"path": str(path), "size": size}
    if alarm is not None:
        attributes["alarm_id"] = alarm.id
        attributes["alarm_type"] = alarm.type
    if command_id:
        attributes["command_id"] = command_id
    return Event(
        kind="file",
        type="snapshot",
        state="pulse",
        device=session.device,
        channel=channel,
        attributes=attributes,
        files=(str(path),),
    )
