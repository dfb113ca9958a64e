"""Vetting a pushed alarm before the vendor library sees it (README "The listen front").

The library's listen parser recurses per nesting level until it overflows its stack (about
1,000 levels of XML or JSON) and crashes on malformed requests (`HPR_Strcasestr`); see the
README's vendor-library notes. So a request is accepted only in a shape hikd can rebuild: a
well-formed HTTP POST with a Content-Length, an XML or JSON body (or multipart/form-data of
such a part and pictures) nested no deeper than the limit. What is relayed is hikd's own
framing around the sender's payloads: request line, headers and multipart part headers are
written by hikd, never copied. And only an alarm is relayed: an XML document whose root is
`EventNotificationAlert`, or JSON that names an `eventType`. Anything else that the library
took made it lose the next real alarm from another sender (README's vendor-library notes).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hikd.errors import UserError

if TYPE_CHECKING:
    from hikd.config import ListenConfig

_REQUEST_LINE = re.compile(rb"(POST|PUT) (/[\x21-\x7e]{0,2047}) HTTP/1\.[01]")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([\x20-\x7e\x80-\xff\t]*)")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,./:=?-]{1,70}")
_PARAM = re.compile(r';\s*([A-Za-z0-9_-]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))')
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# One XML markup item. In a tag quotes are honoured: an attribute value may hold "<", ">"
# and "/>". A "<" that starts none of these is "broken" (unterminated), and refused.
_XML_ITEM = re.compile(
    rb"(?P<skip><!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>)"
    rb"|(?P<dtd><!(?!--|\[CDATA\[))"
    rb"|(?P<close></[^<>]*>)"
    rb"|(?P<empty><[^\s/>\"'<]*+(?:[^<>\"']|\"[^\"]*\"|'[^']*')*?/>)"
    rb"|(?P<open><[^\s/>\"'<]*+(?:[^<>\"']|\"[^\"]*\"|'[^']*')*?>)"
    rb"|(?P<broken><)",
    re.DOTALL,
)
_XML_SPANS = ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>"))
_XML_ROOT_NAME = re.compile(rb"<(?:[^\s/>:]*:)?([^\s/>:]+)")
_JSON_EVENT_TYPE = re.compile(rb'"eventType"\s*:')
ALERT_ROOT = b"EventNotificationAlert"
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)

_SINGLE = ("content-length", "content-type", "transfer-encoding")
MAX_HEADERS = 64
MAX_PARTS = 16
MAX_PART_HEADER_BYTES = 8192
XML_TYPES = {"application/xml", "text/xml"}
JSON_TYPES = {"application/json", "text/json"}
MULTIPART_TYPES = {"multipart/form-data", "multipart/mixed"}
LIBRARY_MAX_BODY = 64 * 1024 * 1024
"""The library resets a request whose body is this long or longer, unanswered and without a
word (sdk-over-isapi.md part 1 §4)."""


_REASONS = {
    200: "OK",
    400: "Bad Request",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def answer(status: int) -> bytes:
    if status == 200:
        # What the library answers (sdk-over-isapi.md part 1 §4).
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    reason = _REASONS.get(status, "Error")
    return f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode()


class Refused(Exception):
    """A request that is not relayed: the HTTP status answered and why (for the log)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int = 16384
    max_body_bytes: int = 16 * 1024 * 1024
    max_depth: int = 64
    read_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class RequestHead:
    path: str
    content_type: str
    """Media type, lower case, without parameters ("" when absent)."""
    boundary: str
    content_length: int
    expect_continue: bool


def parse_head(head: bytes, limits: Limits) -> RequestHead:
    """The request line and headers (without the blank line that ends them)."""
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        if lines[0].split(b" ", 1)[0] in (b"GET", b"HEAD", b"DELETE", b"OPTIONS"):
            raise Refused(405, "only POST carries alarms")
        raise Refused(400, "malformed request line")
    if len(lines) - 1 > MAX_HEADERS:
        raise Refused(431, "too many header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        field = _HEADER.fullmatch(line)
        if field is None:
            raise Refused(400, "malformed header line")
        name = field[1].decode("ascii").lower()
        value = field[2].decode("latin-1").strip(" \t")
        if name in _SINGLE and headers.get(name, value) != value:
            raise Refused(400, f"conflicting {name} headers")
        headers[name] = value
    if "transfer-encoding" in headers:
        raise Refused(411, "chunked or other transfer encodings are not accepted")
    length = headers.get("content-length", "")
    if not length.isdigit() or len(length) > 12:
        raise Refused(411, "a Content-Length is required")
    content_length = int(length)
    if content_length > limits.max_body_bytes:
        raise Refused(413, f"body of {content_length} bytes is over {limits.max_body_bytes}")
    media, params = split_content_type(headers.get("content-type", ""))
    path = match[2].decode("ascii").split("?", 1)[0]
    return RequestHead(
        path=path if _SAFE_PATH.fullmatch(path) else "/",
        content_type=media,
        boundary=params.get("boundary", ""),
        content_length=content_length,
        expect_continue=headers.get("expect", "").lower() == "100-continue",
    )


def split_content_type(value: str) -> tuple[str, dict[str, str]]:
    media, _, rest = value.partition(";")
    params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _PARAM.finditer(";" + rest)}
    return media.strip().lower(), params


def rebuild(head: RequestHead, body: bytes, limits: Limits) -> tuple[str, bytes]:
    """(content type, body) to relay, in hikd's framing; `Refused` when not acceptable."""
    if head.content_type in MULTIPART_TYPES:
        return _rebuild_multipart(head.boundary, body, limits)
    kind = _payload_kind(head.content_type, body)
    if kind is None:
        raise Refused(415, f"content type {head.content_type or '(none)'} is not an alarm")
    check_depth(kind, body, limits.max_depth)
    if not is_alert(kind, body):
        raise Refused(400, "not an alarm (no EventNotificationAlert or eventType)")
    return kind, body


def _payload_kind(media: str, data: bytes) -> str | None:
    """ "application/xml" or "application/json" for an alarm document; None otherwise."""
    if media in XML_TYPES:
        return "application/xml"
    if media in JSON_TYPES:
        return "application/json"
    if media in ("", "text/plain", "application/octet-stream"):
        # No (useful) type: the library decides by the first byte, so does hikd.
        first = data.lstrip()[:1]
        if first == b"<":
            return "application/xml"
        if first in (b"{", b"["):
            return "application/json"
    return None


def is_alert(kind: str, data: bytes) -> bool:
    """Whether a vetted (well-formed, shallow) document is an alarm as devices push them."""
    if kind == "application/json":
        return _JSON_EVENT_TYPE.search(data) is not None
    for item in _XML_ITEM.finditer(data):
        if item.lastgroup in ("open", "empty"):
            name = _XML_ROOT_NAME.match(item[0])
            return name is not None and name[1] == ALERT_ROOT
    return False


def check_depth(kind: str, data: bytes, limit: int) -> None:
    depth = xml_depth(data, limit) if kind == "application/xml" else json_depth(data, limit)
    if depth > limit:
        raise Refused(400, f"{kind} nested deeper than {limit} levels")


def xml_depth(data: bytes, limit: int) -> int:
    """The deepest element nesting of `data`, stopping once over `limit`. Tolerant of
    malformed XML (devices send some); refuses what it cannot measure and any DTD."""
    for start, end in _XML_SPANS:
        # An unterminated comment, CDATA section or processing instruction would make every
        # later one search to the end: refused before scanning (linear time).
        if data.rfind(start) > data.rfind(end):
            raise Refused(400, "XML with an unterminated comment, CDATA section or declaration")
    depth = deepest = 0
    for item in _XML_ITEM.finditer(data):
        kind = item.lastgroup
        if kind == "open":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif kind == "close":
            depth = max(0, depth - 1)
        elif kind == "dtd":
            raise Refused(400, "XML with a DTD or entity declarations is not accepted")
        elif kind == "broken":
            raise Refused(400, "XML with an unterminated tag, comment or CDATA section")
    return deepest


def json_depth(data: bytes, limit: int) -> int:
    """The deepest nesting of objects and arrays, stopping once over `limit`."""
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(data):
        char = token[0][:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in (b"]", b"}"):
            depth = max(0, depth - 1)
    return deepest


# -- multipart ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str
    content_type: str
    data: bytes


def _rebuild_multipart(boundary: str, body: bytes, limits: Limits) -> tuple[str, bytes]:
    parts = parse_multipart(boundary, body)
    if not any(_payload_kind(p.content_type, p.data) for p in parts):
        raise Refused(400, "multipart without an XML or JSON part")
    alarms = 0
    # os.urandom as secrets.token_hex does, without importing secrets: it loads hashlib and
    # OpenSSL (~3.5 MB of a device host's memory, README "Processes").
    new = "hikd-" + os.urandom(16).hex()
    while any(new.encode() in p.data for p in parts):
        new = "hikd-" + os.urandom(16).hex()
    out: list[bytes] = []
    for part in parts:
        kind = _payload_kind(part.content_type, part.data)
        alarm = False
        if kind is not None and not part.content_type.startswith("image/"):
            check_depth(kind, part.data, limits.max_depth)
            alarm = is_alert(kind, part.data)
            content_type = kind
        elif part.content_type.startswith("image/"):
            content_type = part.content_type
        else:
            raise Refused(415, f"multipart part of type {part.content_type or '(none)'}")
        disposition = f'form-data; name="{part.name}"'
        if part.filename:
            disposition += f'; filename="{part.filename}"'
        framed = [
            f"--{new}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(part.data)}\r\n\r\n".encode(),
            part.data,
            b"\r\n",
        ]
        # The library takes the first part for the alarm and the others for its pictures
        # (a picture first, the alarm was lost; README's vendor-library notes): the first
        # alarm goes first, the rest in the sender's order.
        out = framed + out if alarm and not alarms else out + framed
        alarms += alarm
    if not alarms:
        raise Refused(400, "multipart without an alarm (no EventNotificationAlert or eventType)")
    out.append(f"--{new}--\r\n".encode())
    relayed = sum(map(len, out))
    if relayed >= LIBRARY_MAX_BODY:
        # hikd's part headers may be longer than the sender's: the library would reset it
        # unanswered (README's vendor-library notes), after the device was answered 200.
        raise Refused(
            413,
            f"body of {len(body)} bytes is {relayed} once relayed, over the library's "
            f"{LIBRARY_MAX_BODY - 1}",
        )
    return f"multipart/form-data; boundary={new}", b"".join(out)


def parse_multipart(boundary: str, body: bytes) -> list[Part]:
    """The parts of a multipart body (RFC 2046), strictly: every delimiter and part header
    well-formed, a closing delimiter, at most `MAX_PARTS` parts."""
    if not _BOUNDARY.fullmatch(boundary):
        raise Refused(400, "multipart without a valid boundary")
    delimiter = b"--" + boundary.encode()
    start = 0 if body.startswith(delimiter) else body.find(b"\r\n" + delimiter)
    if start < 0:
        raise Refused(400, "multipart body without its boundary")
    position = start + (0 if start == 0 else 2) + len(delimiter)
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", position):
            return parts if parts else _no_parts()
        eol = body.find(b"\r\n", position)
        if eol < 0 or body[position:eol].strip(b" \t"):
            raise Refused(400, "malformed multipart delimiter line")
        header_end = body.find(b"\r\n\r\n", eol)
        if header_end < 0 or header_end - eol > MAX_PART_HEADER_BYTES:
            raise Refused(400, "malformed multipart part headers")
        headers = _part_headers(body[eol + 2 : header_end])
        data_start = header_end + 4
        following = _part_end(body, data_start, delimiter, headers.get("content-length", ""))
        parts.append(_part(headers, body[data_start:following]))
        if len(parts) > MAX_PARTS:
            raise Refused(400, f"multipart of more than {MAX_PARTS} parts")
        position = following + 2 + len(delimiter)


def _part_end(body: bytes, start: int, delimiter: bytes, length: str) -> int:
    """Where the data of a part that starts at `start` ends: after its Content-Length when
    the sender gave one and a delimiter follows there (a picture's bytes may hold the
    boundary; devices give the length), else at the next delimiter."""
    if length.isdigit() and len(length) <= 12:
        end = start + int(length)
        if body.startswith(b"\r\n" + delimiter, end):
            return end
    following = body.find(b"\r\n" + delimiter, start)
    if following < 0:
        raise Refused(400, "multipart without its closing boundary")
    return following


def _no_parts() -> list[Part]:
    raise Refused(400, "multipart without parts")


def _part_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n") if block else []:
        field = _HEADER.fullmatch(line)
        if field is None:
            raise Refused(400, "malformed multipart part header")
        headers[field[1].decode("ascii").lower()] = field[2].decode("latin-1").strip(" \t")
    return headers


def _part(headers: dict[str, str], data: bytes) -> Part:
    if "content-length" in headers and headers["content-length"] != str(len(data)):
        raise Refused(400, "multipart part whose Content-Length does not match")
    _, disposition = split_content_type(headers.get("content-disposition", ""))
    media, _ = split_content_type(headers.get("content-type", ""))
    return Part(
        name=_clean_name(disposition.get("name", "")) or "part",
        filename=_clean_name(disposition.get("filename", "")),
        content_type=media if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", media) else "",
        data=data,
    )


def _clean_name(value: str) -> str:
    """A part or file name as the library will copy it (into a 256-byte buffer): short and
    plain."""
    return _NAME_CHARS.sub("_", value)[:100]


def listen_limits(cfg: ListenConfig) -> Limits:
    return Limits(
        max_header_bytes=cfg.max_header_bytes,
        max_body_bytes=cfg.max_body_bytes,
        max_depth=cfg.max_depth,
        read_timeout_s=cfg.read_timeout_s,
    )


def port_in_use(cfg: ListenConfig, exc: OSError) -> UserError:
    return UserError(
        f"cannot listen on {cfg.address}:{cfg.port} ([[listen]]): {exc.strerror or exc}; "
        "is another program (or hikd) using the port?"
    )
