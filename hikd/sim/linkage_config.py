"""How a simulated device is set up for events: linkage, schedules, alarm host, rights,
clock and record schedules.

Each field is one way a real device is commonly set up wrong, so that ``hikd doctor`` can
be tested against each (issue 14: "no events at all" is nearly always one of these). The
defaults are a device set up right: every trigger notifies the surveillance center, the
detections are on, the arming schedule covers the whole week, the user has the remote
alarm right and the clock is on time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EventSetup(BaseModel):
    """``SimDeviceConfig.events`` (TOML: ``[events]``)."""

    model_config = ConfigDict(extra="forbid")

    notify_center: bool = True
    """Every event trigger's linkage includes "notify surveillance center" (``center``).
    False: none does (the device sends nothing to any client)."""
    detections: bool = True
    """Motion, line crossing and intrusion detection are switched on on every channel."""
    schedule: Literal["always", "empty", "not_now"] = "always"
    """The arming schedule of the detections: the whole week, no time block at all, or
    every day but today (it does not cover now)."""
    alarm_host: str = ""
    """``address:port`` the first HTTP alarm host points at; empty: the slot is unused
    (``0.0.0.0``), as on a new device."""
    alarm_host_slots: int = Field(default=1, ge=1, le=8)
    """HTTP alarm hosts the device has (NVRs often 1, cameras 3)."""
    remote_alarm_right: bool = True
    """The user has the remote alarm right ("Remote: Notify Surveillance Center / Trigger
    Alarm Output"). False makes the user an Operator without it."""
    clock_offset_s: float = 0.0
    """How far the device's clock is ahead of the true time (negative: behind)."""
    ntp: bool = True
    """The device sets its clock by NTP (``timeMode`` NTP, else manual)."""
    record_schedule: bool = True
    """Channels that record (``recordings.channels``) have a record schedule for the whole
    week (``/ISAPI/ContentMgmt/record/tracks``); False: every schedule is empty."""
    strict_writes: bool = True
    """Answer 400 to a PUT whose document lost elements of the device's own (as real
    devices do to a rebuilt document that lacks ``dynVideoInputID`` and the like)."""
