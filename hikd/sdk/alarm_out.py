"""Alarm outputs on private-protocol sessions: NET_DVR_SetAlarmOut (seed 5.19.29).

``NET_DVR_SetAlarmOut(lUserID, lAlarmOutPort, lAlarmOutStatic)``: the port counts from 0
(0x00ff would be every analog output and 0xff00 every digital one; hikd never sends
those), the state is 1 to switch the output on and 0 to switch it off. Over an ISAPI login
hikd switches outputs through ``PUT /ISAPI/System/IO/outputs/<id>/trigger`` instead
(``hikd.devices.commands``).
"""

from __future__ import annotations

from hikd.sdk.library import Library


def set_alarm_out(sdk: Library, user_id: int, port: int, on: bool) -> None:
    """Switch the alarm output ``port`` (counted from 0, as the guide does) on or off.
    Raises `SdkError` when the device refuses."""
    ok = sdk.lib.NET_DVR_SetAlarmOut(user_id, port, 1 if on else 0)
    sdk.check(ok)
