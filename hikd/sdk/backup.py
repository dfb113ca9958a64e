"""Device-side backup (recordings copied by the device to its own USB/eSATA/DVD medium):
NET_DVR_GetDiskList, NET_DVR_BackupByTime, NET_DVR_GetBackupProgress, NET_DVR_StopBackup
(seed 5.14.41-45, 5.31.17-20).

Private protocol only. Over an ISAPI login GetDiskList fails with 189, and BackupByTime
opens the private protocol on the HTTP port and fails after the receive timeout (5 s,
error 10) — sdk-over-isapi.md part 2 d. Callers check the session's protocol first
(``hikd.devices.capabilities.backup``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal

from hikd.sdk import constants as c
from hikd.sdk.convert import cstr, datetime_to_time, set_cstr
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

Outcome = Literal["running", "done", "failed", "needs_medium"]


@dataclass(frozen=True, slots=True)
class BackupState:
    value: int
    name: str
    outcome: Outcome
    description: str

    @property
    def finished(self) -> bool:
        return self.outcome in ("done", "failed")


# pState of NET_DVR_GetBackupProgress: 0..99 is the progress in percent, the rest is table
# 5.26 (5.14.44; the same as 5.29 and 5.128) plus what the V6 header adds (302, 303, and
# 510 BACKUP_NO_LOG_FILE, named in the guide's change log without its value).
_TABLE: tuple[tuple[int, str, Outcome, str], ...] = (
    (c.BACKUP_SUCCESS, "success", "done", "backup complete"),
    (c.BACKUP_CHANGE_DEVICE, "change_device", "needs_medium",
     "the backup medium is full: put in another one to continue"),
    (c.BACKUP_SEARCH_DEVICE, "search_device", "running", "looking for the backup medium"),
    (c.BACKUP_SEARCH_FILE, "search_file", "running", "looking for recordings or pictures"),
    (c.BACKUP_SEARCH_LOG_FILE, "search_log_file", "running", "looking for log files"),
    (c.BACKUP_CHANGE_DISK, "change_disk", "needs_medium",
     "the disc is full: put in another one to continue"),
    (c.BACKUP_EXCEPTION, "exception", "failed", "the backup broke off"),
    (c.BACKUP_FAIL, "fail", "failed", "the backup failed"),
    (c.BACKUP_TIME_SEG_NO_FILE, "time_seg_no_file", "failed",
     "no recordings or pictures in the time span"),
    (c.BACKUP_NO_RESOURCE, "no_resource", "failed", "the device has no resources free"),
    (c.BACKUP_DEVICE_LOW_SPACE, "device_low_space", "failed",
     "not enough room on the backup medium"),
    (c.BACKUP_DISK_FINALIZED, "disk_finalized", "failed", "the disc is finalized"),
    (c.BACKUP_DISK_EXCEPTION, "disk_exception", "failed", "the disc has an error"),
    (c.BACKUP_DEVICE_NOT_EXIST, "device_not_exist", "failed", "the backup medium is not there"),
    (c.BACKUP_OTHER_BACKUP_WORK, "other_backup_work", "failed",
     "another backup is running on the device"),
    (c.BACKUP_USER_NO_RIGHT, "user_no_right", "failed",
     "the user has no right to back up on the device"),
    (c.BACKUP_OPERATE_FAIL, "operate_fail", "failed", "the device refused the operation"),
    (c.BACKUP_NO_LOG_FILE, "no_log_file", "failed", "no log files on the disks"),
)  # fmt: skip
BACKUP_STATES: dict[int, BackupState] = {row[0]: BackupState(*row) for row in _TABLE}


def backup_state(value: int) -> BackupState:
    """The meaning of one pState value."""
    if 0 <= value < c.BACKUP_SUCCESS:
        return BackupState(value, "progress", "running", f"{value} %")
    known = BACKUP_STATES.get(value)
    if known is not None:
        return known
    return BackupState(value, f"state_{value}", "failed", f"unknown backup state {value}")


@dataclass(frozen=True, slots=True)
class BackupDisk:
    """One medium the device can back up to (NET_DVR_DESC_NODE)."""

    value: int
    description: str
    """byDescribe: what BackupByTime's byDiskDes must name."""
    free_mb: int


def disk_list(sdk: Library, user_id: int) -> list[BackupDisk]:
    """The backup media the device offers (seed 5.14.41: required before a backup)."""
    disks = ffi.new("NET_DVR_DISKABILITY_LIST *")
    disks.dwSize = ffi.sizeof("NET_DVR_DISKABILITY_LIST")
    sdk.check(sdk.lib.NET_DVR_GetDiskList(user_id, disks))
    count = min(int(disks.dwNodeNum), len(disks.struDescNode))
    return [
        BackupDisk(
            value=int(node.iValue),
            description=cstr(node.byDescribe),
            free_mb=int(node.dwFreeSpace),
        )
        for node in (disks.struDescNode[i] for i in range(count))
    ]


def backup_by_time(
    sdk: Library,
    user_id: int,
    channel: int,
    start: datetime,
    stop: datetime,
    disk: str,
    tz: tzinfo,
) -> int:
    """Start copying ``channel``'s recordings between ``start`` and ``stop`` to ``disk``
    (a description from `disk_list`); returns the handle for progress and stop."""
    param = ffi.new("NET_DVR_BACKUP_TIME_PARAM *")
    param.lChannel = channel
    datetime_to_time(start, param.struStartTime, tz)
    datetime_to_time(stop, param.struStopTime, tz)
    set_cstr(param.byDiskDes, disk, "backup disk description")
    param.byWithPlayer = 0
    param.byContinue = 0
    handle = int(sdk.lib.NET_DVR_BackupByTime(user_id, param))
    if handle < 0:
        raise sdk.last_error()
    return handle


def backup_progress(sdk: Library, handle: int) -> BackupState:
    state = ffi.new("unsigned int *")
    sdk.check(sdk.lib.NET_DVR_GetBackupProgress(handle, state))
    return backup_state(int(state[0]))


def stop_backup(sdk: Library, handle: int) -> None:
    """Needed after success and after an error as well (seed 5.14.44)."""
    sdk.check(sdk.lib.NET_DVR_StopBackup(handle))
