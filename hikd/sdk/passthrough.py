"""NET_DVR_STDXMLConfig: any ISAPI request through the SDK's own session (seed 5.31).

The general escape hatch for what the structured calls refuse over ISAPI (snapshots, work
status, configuration export): the library adds the session cookie and re-logs in by
itself. Facts (sdk-over-isapi.md part 2 §g): the reply body comes back raw (binary is
fine), a too-small buffer or a reply over 64 MiB fails with error 43 and no size hint, a
404 fails with error 23 and the device's ResponseStatus in the status buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hikd.sdk.errors import BufferTooSmallError, SdkError
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

MAX_REPLY = 64 * 1024 * 1024
_STATUS_SIZE = 16 * 1024


@dataclass(frozen=True, slots=True)
class IsapiReply:
    body: bytes
    status: bytes
    """The device's ResponseStatus XML when it sent one (PUT/POST, or an error)."""


def std_xml_config(
    sdk: Library,
    user_id: int,
    method: str,
    url: str,
    body: bytes = b"",
    timeout_ms: int = 5000,
    first_buffer: int = 256 * 1024,
) -> IsapiReply:
    """Send ``METHOD url`` with ``body``; grow the buffer on error 43 up to 64 MiB.

    Only idempotent requests (GET) are repeated on a too-small buffer; for the others the
    first buffer is the largest.
    """
    size = first_buffer if method.upper() == "GET" else MAX_REPLY // 16
    while True:
        try:
            return _call(sdk, user_id, method, url, body, timeout_ms, size)
        except BufferTooSmallError:
            if method.upper() != "GET" or size >= MAX_REPLY:
                raise
            size = min(size * 4, MAX_REPLY)


def _call(
    sdk: Library, user_id: int, method: str, url: str, body: bytes, timeout_ms: int, size: int
) -> IsapiReply:
    request = f"{method.upper()} {url}".encode()
    url_buf = ffi.new("char[]", request)
    body_buf = ffi.from_buffer(body) if body else ffi.NULL
    out_buf = ffi.new("char[]", size)
    status_buf = ffi.new("char[]", _STATUS_SIZE)

    inp = ffi.new("NET_DVR_XML_CONFIG_INPUT *")
    inp.dwSize = ffi.sizeof("NET_DVR_XML_CONFIG_INPUT")
    inp.lpRequestUrl = url_buf
    inp.dwRequestUrlLen = len(request)
    inp.lpInBuffer = body_buf
    inp.dwInBufferSize = len(body)
    inp.dwRecvTimeOut = timeout_ms

    out = ffi.new("NET_DVR_XML_CONFIG_OUTPUT *")
    out.dwSize = ffi.sizeof("NET_DVR_XML_CONFIG_OUTPUT")
    out.lpOutBuffer = out_buf
    out.dwOutBufferSize = size
    out.lpStatusBuffer = status_buf
    out.dwStatusSize = _STATUS_SIZE

    ok = sdk.lib.NET_DVR_STDXMLConfig(user_id, inp, out)
    status = ffi.string(status_buf)
    if not ok:
        error: SdkError = sdk.last_error()
        if status:
            error.detail = status.decode("utf-8", "replace")
        raise error
    returned = min(int(out.dwReturnedXMLSize), size)
    return IsapiReply(body=ffi.buffer(out_buf, returned)[:], status=status)
