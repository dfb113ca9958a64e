"""Which member of NET_DVR_ALRAM_FIXED_HEADER's union is valid, by dwAlarmType (seed 5.16,
HCNetSDK.h). Shared by the callback (which copies COMM_ALARM_V40's list while the pointer
is valid) and the decoder (which reads it)."""

from __future__ import annotations

from typing import Final

IO_TYPES: Final = frozenset({0, 23})
"""Signal alarm and pulse alarm: struIOAlarm (an alarm input, then the triggered alarm
outputs and recording channels)."""

DISK_TYPES: Final = frozenset({1, 4, 5, 18, 24})
"""Disk full, not formatted, disk error, ...: struAlarmHardDisk (a list of disks)."""

CHANNEL_TYPES: Final = frozenset({2, 3, 6, 9, 10, 11, 13, 15, 16, 19, 20, 21})
"""Per-channel alarms: struAlarmChannel (a list of channels). Header: 2, 3, 6, 9, 10, 13;
later firmware adds the per-channel smart, PoE, audio and recording types."""
