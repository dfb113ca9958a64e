"""The private protocol's alarm structs (guide 5.16, tables 5.30 / 5.31; HCNetSDK.h).

The real library never produces these over an ISAPI login (every alarm then arrives as
COMM_ISAPI_ALARM, sdk-over-isapi.md part 1 §2); they come from devices logged in over the
vendor's private protocol. `hikd.sdk.alarm_structs` reads each struct into a plain record;
the decoders here turn the records into events: `alarms` (COMM_ALARM, _V30, _V40),
`device_changes` (IP channel set-up, hot spare), `analytics` (VQD, VCA rules).
"""

from __future__ import annotations

from hikd.listeners.decode import commands
from hikd.listeners.decode.binary.alarms import decode_alarm, decode_alarm_v30, decode_alarm_v40
from hikd.listeners.decode.binary.analytics import decode_rule, decode_vqd
from hikd.listeners.decode.binary.common import Decoder
from hikd.listeners.decode.binary.device_changes import decode_hot_spare, decode_ipccfg

DECODERS: dict[int, Decoder] = {
    commands.COMM_ALARM: decode_alarm,
    commands.COMM_ALARM_V30: decode_alarm_v30,
    commands.COMM_ALARM_V40: decode_alarm_v40,
    commands.COMM_IPCCFG: decode_ipccfg,
    commands.COMM_IPCCFG_V31: decode_ipccfg,
    commands.COMM_ALARM_HOT_SPARE: decode_hot_spare,
    commands.COMM_ALARM_VQD: decode_vqd,
    commands.COMM_ALARM_RULE: decode_rule,
}
"""The decoder of each binary command."""
