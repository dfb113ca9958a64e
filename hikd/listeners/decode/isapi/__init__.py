"""COMM_ISAPI_ALARM (0x6009): the EventNotificationAlert bodies, XML or JSON, and pictures.

Over an ISAPI login the real library delivers every alarm this way, armed or listening
(sdk-over-isapi.md part 1 §2, §4): ``NET_DVR_ALARM_ISAPI_INFO.pAlarmData`` is the body of
the part as the device sent it (armed: with the CRLF before the next boundary), and
``byDataType`` says 1 XML, 2 JSON, 0 binary (application/octet-stream). `body` reads a
body into alerts, `events` turns each alert into events, `attributes` places its fields.
"""

from __future__ import annotations

import re
from typing import Any

from hikd.events import Event, new_event_id
from hikd.listeners.decode import types
from hikd.listeners.decode.context import DecodeContext, malformed, raw_binary, received_at
from hikd.listeners.decode.isapi.body import MalformedBody, ReadAlert, json_alerts, xml_alerts
from hikd.listeners.decode.isapi.events import alert_events
from hikd.listeners.decode.pictures import save_pictures
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk.raw import RawAlarm, RawPicture

DATA_BINARY = 0
DATA_XML = 1
DATA_JSON = 2

_DOCTYPE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def decode_isapi(raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats) -> list[Event]:
    if not raw.pictures:
        return _decode_body(raw, ctx, stats, [])
    pictures = [p for p in raw.pictures if not _is_embedded_alert(p)]
    embedded = [p for p in raw.pictures if _is_embedded_alert(p)]
    events = _decode_body(raw, ctx, stats, pictures)
    for pic in embedded:
        # Quirk (sdk-over-isapi.md part 1 §2): when a device omits the boundary after a
        # JSON part, the library hands the next XML alert over as PIC[0] with byPicType 0.
        # It is an alarm, not a picture: decode it as one.
        inner = RawAlarm(
            command=raw.command,
            alarmer=raw.alarmer,
            payload=pic.data,
            received_ns=raw.received_ns,
            source=raw.source,
            data_type=DATA_XML if pic.data.lstrip()[:1] == b"<" else DATA_JSON,
            listen_port=raw.listen_port,
        )
        events.extend(_decode_body(inner, ctx, stats, []))
    return events


def _is_embedded_alert(pic: RawPicture) -> bool:
    return pic.pic_type == 0 and pic.data.lstrip()[:1] in (b"<", b"{")


def _decode_body(
    raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats, pictures: list[RawPicture]
) -> list[Event]:
    if raw.data_type not in (DATA_XML, DATA_JSON):
        return [_unknown_binary(raw, ctx, stats, pictures)]
    body = raw.payload.strip(b"\r\n\t \0")
    text = _text(body)
    try:
        if raw.data_type == DATA_XML:
            if b"<!" in body and _DOCTYPE.search(body):
                raise MalformedBody("XML with a DOCTYPE or ENTITY declaration is refused")
            alerts = xml_alerts(text)
        else:
            alerts = [ReadAlert(alert) for alert in json_alerts(text)]
    except MalformedBody as exc:
        return [malformed(raw, ctx, stats, str(exc), data_type=raw.data_type)]
    events: list[Event] = []
    for i, (alert, attributes) in enumerate(alerts):
        events.extend(
            alert_events(alert, raw, text, ctx, stats, pictures if i == 0 else [], attributes)
        )
    return events


def _text(body: bytes) -> str:
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    for encoding in ("utf-8", "gbk"):
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    return body.decode("utf-8", "replace")


def _unknown_binary(
    raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats, pictures: list[RawPicture]
) -> Event:
    event_id = new_event_id()
    received = received_at(raw)
    attributes: dict[str, Any] = {
        "event_type": "",
        "data_type": raw.data_type,
        "size": len(raw.payload),
    }
    files: list[str] = []
    if pictures:
        files, attributes["pictures"] = save_pictures(pictures, ctx, event_id, received)
    return Event(
        kind="alarm",
        type=types.UNKNOWN,
        state="pulse",
        device=ctx.device,
        time=received,
        received=received,
        attributes=attributes,
        raw=raw_binary(raw),
        files=tuple(files),
        id=event_id,
    )
