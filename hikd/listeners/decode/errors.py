"""The library's error message (lCommand 0x7fff): it could not parse what a device sent.

Not in the header. Layout seen with the real library (sdk-over-isapi.md part 1 §2, §4),
dwBufLen 512: ``DWORD alarmType; DWORD errCode; char message[]`` (little-endian, the
message NUL-terminated). Codes seen: 6 malformed JSON, 7 malformed XML, 8 bad binary
image data (an image part without picturesNumber, or a text/plain part). It reports one
lost alarm; the connection is fine, so it is a health pulse, never a disconnect.
"""

from __future__ import annotations

import struct

from hikd.events import Event
from hikd.listeners.decode.commands import command_name
from hikd.listeners.decode.context import DecodeContext, malformed
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk.convert import cstr
from hikd.sdk.raw import RawAlarm

KNOWN_CODES = {
    6: "The JSON message contains errors in format.",
    7: "The XML message contains errors in format.",
    8: "Error occurred when processing the binary image data.",
}

_HEAD = struct.Struct("<II")


def decode_error_message(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    if len(raw.payload) < _HEAD.size:
        return [malformed(raw, ctx, stats, "error message shorter than its 8-byte header")]
    alarm_type, code = _HEAD.unpack_from(raw.payload)
    message = cstr(raw.payload[_HEAD.size :]) or KNOWN_CODES.get(code, "")
    return [
        malformed(
            raw,
            ctx,
            stats,
            message or f"library error {code}",
            error_code=code,
            message=message,
            alarm_command=alarm_type,
            alarm_command_name=command_name(alarm_type),
        )
    ]
