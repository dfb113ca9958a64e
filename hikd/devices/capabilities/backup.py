"""Device-side backup: the device copies its recordings to its own USB/eSATA medium.

Private protocol only (seed 5.14.41-45). Over an ISAPI login the library cannot do it:
GetDiskList fails with 189, and BackupByTime speaks the private protocol to the HTTP port
and hangs for the receive timeout (sdk-over-isapi.md part 2 d). So on ISAPI sessions this
module refuses before any SDK call, with a message that says what to change.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from types import TracebackType
from typing import TYPE_CHECKING

from hikd.errors import UserError
from hikd.sdk import backup as sdk_backup
from hikd.sdk.backup import BackupDisk, BackupState
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

__all__ = ["BackupDisk", "BackupNotSupported", "BackupRun", "BackupState", "backup_disks",
           "start_backup"]  # fmt: skip


class BackupNotSupported(UserError):
    """The session cannot do a device-side backup (it logged in over ISAPI)."""


def require_private(session: DeviceSession) -> int:
    """The session's user ID, or `BackupNotSupported` when it is not a private login."""
    if session.protocol != "private":
        raise BackupNotSupported(
            f"device {session.name!r}: device-side backup is not supported over ISAPI; "
            'log in with login_mode = "private" (port 8000) to use it'
        )
    if session.user_id is None:
        raise SdkError(3, "not logged in")
    return session.user_id


def backup_disks(session: DeviceSession) -> list[BackupDisk]:
    """The media the device can back up to."""
    return sdk_backup.disk_list(session.sdk, require_private(session))


class BackupRun:
    """One running backup. Use as a context manager: leaving it stops the backup on the
    device (NET_DVR_StopBackup is required after success and after errors, 5.14.44)."""

    def __init__(self, session: DeviceSession, handle: int) -> None:
        self.session = session
        self.handle = handle
        self._stopped = False

    def progress(self) -> BackupState:
        return sdk_backup.backup_progress(self.session.sdk, self.handle)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            sdk_backup.stop_backup(self.session.sdk, self.handle)

    def __enter__(self) -> BackupRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        except SdkError:
            if exc is None:
                raise


def start_backup(
    session: DeviceSession,
    channel: int,
    start: datetime,
    end: datetime,
    disk: str,
    tz: tzinfo,
) -> BackupRun:
    """Start backing up ``channel`` (hikd's number) from ``start`` to ``end`` onto ``disk``
    (a description from `backup_disks`); ``tz`` is the zone of the device's clock."""
    user_id = require_private(session)
    library_channel = session.channels.library_channel(channel)
    handle = sdk_backup.backup_by_time(session.sdk, user_id, library_channel, start, end, disk, tz)
    return BackupRun(session, handle)
