"""JPEG capture on private-protocol sessions: NET_DVR_CaptureJPEGPicture_NEW (seed 5.12.2).

Over an ISAPI login the library refuses it (error 189, no request sent); hikd then uses
the ISAPI pass-through instead (``hikd.devices.capabilities.snapshot``, sdk-over-isapi.md part 2 f).
"""

from __future__ import annotations

from hikd.sdk.errors import BufferTooSmallError
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

FIRST_BUFFER = 4 * 1024 * 1024
MAX_BUFFER = 32 * 1024 * 1024
_BEST_SIZE = 0xFF  # wPicSize 0xff: "the current resolution of the stream" (seed 5.12)
_BEST_QUALITY = 0  # wPicQuality 0: best


def capture_jpeg(
    sdk: Library, user_id: int, channel: int, buffer_size: int = FIRST_BUFFER
) -> bytes:
    """One JPEG of ``channel`` at the stream's resolution and best quality.

    A too-small buffer (error 43) is retried with a larger one up to 32 MiB."""
    size = buffer_size
    while True:
        try:
            return _capture(sdk, user_id, channel, size)
        except BufferTooSmallError:
            if size >= MAX_BUFFER:
                raise
            size = min(size * 4, MAX_BUFFER)


def _capture(sdk: Library, user_id: int, channel: int, size: int) -> bytes:
    para = ffi.new("NET_DVR_JPEGPARA *")
    para.wPicSize = _BEST_SIZE
    para.wPicQuality = _BEST_QUALITY
    buf = ffi.new("char[]", size)
    returned = ffi.new("unsigned int *")
    ok = sdk.lib.NET_DVR_CaptureJPEGPicture_NEW(user_id, channel, para, buf, size, returned)
    # *lpSizeReturned is set to the buffer size even when the call fails (observed with
    # error 189, part 2 f): it means nothing unless the call succeeded.
    sdk.check(ok)
    length = min(int(returned[0]), size)
    data: bytes = ffi.buffer(buf, length)[:]
    return data
