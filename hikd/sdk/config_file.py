"""Configuration export on private-protocol sessions: NET_DVR_GetConfigFile_V30 (seed 5.31.22).

The device's whole configuration as one opaque binary file. The guide's two-step use:
a call with a NULL buffer and size 0 returns the size needed, a second one the content.
Over ISAPI hikd reads ``/ISAPI/System/configurationData`` through the pass-through instead
(``hikd.devices.capabilities.config_export``).
"""

from __future__ import annotations

from hikd.sdk.errors import BufferTooSmallError, SdkError
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

FALLBACK_BUFFER = 4 * 1024 * 1024
MAX_BUFFER = 64 * 1024 * 1024


def get_config_file(sdk: Library, user_id: int) -> bytes:
    """The device's configuration file, byte for byte."""
    size = _needed_size(sdk, user_id) or FALLBACK_BUFFER
    while True:
        try:
            return _read(sdk, user_id, size)
        except BufferTooSmallError:
            # The file can grow between the size query and the read (a user changing a
            # setting): grow and try again.
            if size >= MAX_BUFFER:
                raise
            size = min(max(size * 2, FALLBACK_BUFFER), MAX_BUFFER)


def _needed_size(sdk: Library, user_id: int) -> int:
    """The size step of seed 5.31.22; 0 when the device does not answer it (then hikd
    reads into a fixed buffer and grows it on error 43)."""
    returned = ffi.new("unsigned int *")
    try:
        sdk.check(sdk.lib.NET_DVR_GetConfigFile_V30(user_id, ffi.NULL, 0, returned))
    except SdkError:
        return 0
    return min(int(returned[0]), MAX_BUFFER)


def _read(sdk: Library, user_id: int, size: int) -> bytes:
    buf = ffi.new("char[]", size)
    returned = ffi.new("unsigned int *")
    sdk.check(sdk.lib.NET_DVR_GetConfigFile_V30(user_id, buf, size, returned))
    data: bytes = ffi.buffer(buf, min(int(returned[0]), size))[:]
    return data
