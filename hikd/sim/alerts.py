"""The alarms a simulated device sends: ISAPI `EventNotificationAlert` in XML or JSON.

Every generated alert carries two simulator fields the benchmarks and tests read:
`hikdSimSeq` (per-device sequence number) and `hikdSimSentNs` (time.monotonic_ns() when
written; CLOCK_MONOTONIC is system-wide on Linux, so another process can subtract it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from hikd.sim.config import SimDeviceConfig
from hikd.sim.documents import NS, PROLOG, elements
from hikd.sim.pictures import jpeg

AlertState = Literal["active", "inactive"]
AlertFormat = Literal["xml", "json"]
Scope = Literal["channel", "io", "region", "device"]


@dataclass(frozen=True, slots=True)
class AlertKind:
    description: str
    scope: Scope = "channel"
    """channel: has <channelID>; io: alarm input (<inputIOPortID>); region: a smart (VCA)
    event with <DetectionRegionList>; device: no channel (disk, network, ...)."""


ALERT_KINDS: dict[str, AlertKind] = {
    "VMD": AlertKind("Motion alarm"),
    "videoloss": AlertKind("videoloss alarm"),
    "shelteralarm": AlertKind("shelteralarm alarm"),
    "tamperdetection": AlertKind("Tamper Detection"),
    "IO": AlertKind("IO alarm", "io"),
    "linedetection": AlertKind("Line crossing alarm", "region"),
    "fielddetection": AlertKind("Intrusion alarm", "region"),
    "regionEntrance": AlertKind("Region Entrance", "region"),
    "regionExiting": AlertKind("Region Exiting", "region"),
    "loitering": AlertKind("Loitering Detection", "region"),
    "group": AlertKind("People Gathering", "region"),
    "rapidMove": AlertKind("Fast Moving", "region"),
    "parking": AlertKind("Parking Detection", "region"),
    "unattendedBaggage": AlertKind("Unattended Baggage", "region"),
    "attendedBaggage": AlertKind("Object Removal", "region"),
    "facedetection": AlertKind("Face Detection", "region"),
    "scenechangedetection": AlertKind("Scene Change Detection"),
    "PIR": AlertKind("PIR alarm"),
    "audioexception": AlertKind("Audio Exception"),
    "defocus": AlertKind("Defocus Detection"),
    "diskfull": AlertKind("HDD Full", "device"),
    "diskerror": AlertKind("HDD Error", "device"),
    "nicbroken": AlertKind("Network Disconnected", "device"),
    "ipconflict": AlertKind("IP Address Conflicted", "device"),
    "illaccess": AlertKind("Illegal Login", "device"),
    "videomismatch": AlertKind("Video Signal Mismatch"),
    "badvideo": AlertKind("Video Signal Exception"),
    "recordingfailure": AlertKind("Recording Exception"),
    "heartBeat": AlertKind("heartBeat", "device"),
}
"""The event types the simulator knows; any other name is sent too, as a channel event."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def kind_of(event_type: str) -> AlertKind:
    return ALERT_KINDS.get(event_type) or AlertKind(f"{event_type} alarm")


@dataclass(frozen=True, slots=True)
class SimAlert:
    """One alarm to send. Only `type` is needed; the rest has sensible defaults."""

    type: str = "VMD"
    channel: int = 1
    """Video channel (1..), or the alarm input number for IO, or the disk for disk events."""
    state: AlertState = "active"
    pictures: int = 0
    fmt: AlertFormat = "xml"
    region_id: int = 1
    target: str = "human"
    """detectionTarget of smart events: human, vehicle, ..."""
    active_post_count: int = 1
    picture_size: int = 0
    """Bytes per picture (0: the natural ~1 kB test card)."""
    extra: dict[str, str | int] = field(default_factory=dict)
    """More top-level fields, added as they are."""
    resent: bool = False
    """Sent again after a broken link: ``isDataRetransmission`` true (the vendor's ISAPI
    field for "data re-uploaded once the network was back")."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.type):
            raise ValueError(f"event type {self.type!r} is not a valid XML element name")
        if self.state not in ("active", "inactive"):
            raise ValueError("state must be active or inactive")
        if self.fmt not in ("xml", "json"):
            raise ValueError("fmt must be xml or json")
        if not 0 <= self.pictures <= 16:
            raise ValueError("pictures must be 0..16")
        for key in self.extra:
            if not _NAME.fullmatch(key):
                raise ValueError(f"extra field {key!r} is not a valid XML element name")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimAlert:
        """From the control endpoint's JSON (unknown keys are an error)."""
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


HEARTBEAT = SimAlert(type="videoloss", state="inactive", active_post_count=0)
"""The device heartbeat on an alert stream: the library swallows videoloss/inactive and
reconnects the stream after 35 s without any part (sdk-over-isapi.md part 1 §2)."""
HEARTBEAT_EVENT = SimAlert(type="heartBeat", channel=0, state="inactive", active_post_count=0)
"""The heartbeat of firmware that sends ``heartBeat`` parts: the library delivers them."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """What is only known when the alert is written."""

    seq: int | None
    sent_ns: int
    date_time: str
    """ISAPI dateTime with the device's UTC offset."""
    port: int


def _regions(alert: SimAlert) -> list[dict[str, Any]]:
    r = alert.region_id
    if alert.type == "linedetection":
        points = [(100 + 10 * r, 200), (900 - 10 * r, 800)]
    else:
        points = [(100, 100 + 10 * r), (900, 100 + 10 * r), (900, 900), (100, 900)]
    return [
        {
            "regionID": r,
            "sensitivityLevel": 50,
            "RegionCoordinatesList": [{"positionX": x, "positionY": y} for x, y in points],
            "detectionTarget": alert.target,
            "TargetRect": {"X": 0.25, "Y": 0.3, "width": 0.1, "height": 0.35},
        }
    ]


def alert_fields(alert: SimAlert, cfg: SimDeviceConfig, stamp: Stamp) -> dict[str, Any]:
    """The alert as ordered fields; nested lists for the region blocks."""
    kind = kind_of(alert.type)
    out: dict[str, Any] = {
        "ipAddress": cfg.host,
        "portNo": stamp.port,
        "protocol": "HTTPS" if cfg.https else "HTTP",
        "macAddress": cfg.mac_address,
    }
    if kind.scope != "device":
        out.update(_channel_field(alert, cfg))
    out["dateTime"] = stamp.date_time
    out["activePostCount"] = alert.active_post_count
    out["eventType"] = alert.type
    out["eventState"] = alert.state
    out["eventDescription"] = kind.description
    if kind.scope == "io":
        out["inputIOPortID"] = alert.channel
    elif kind.scope == "region":
        out["DetectionRegionList"] = _regions(alert)
    elif alert.type in ("diskfull", "diskerror"):
        out["hddID"] = alert.channel
    if kind.scope != "device":
        out["channelName"] = f"Camera {alert.channel:02d}"
    if alert.resent:
        out["isDataRetransmission"] = True
    if alert.pictures:
        out["picturesNumber"] = alert.pictures
    out.update(alert.extra)
    if stamp.seq is not None:
        out["hikdSimSeq"] = stamp.seq
    out["hikdSimSentNs"] = stamp.sent_ns
    return out


def _channel_field(alert: SimAlert, cfg: SimDeviceConfig) -> dict[str, int]:
    """How the alert names its channel (variants.alert_channel); IO alerts' <channelID>
    is the input's number, as the simulator always sent it."""
    how = cfg.variants.alert_channel
    if kind_of(alert.type).scope == "io" or not 1 <= alert.channel <= cfg.channel_count:
        return {"channelID": alert.channel}
    if how == "dyn":
        return {"dynChannelID": cfg.channel_id(alert.channel)}
    if how == "private" and alert.channel > cfg.analog_channels:
        # The private protocol's IP channels start at 33 (byStartDChan).
        return {"channelID": 32 + alert.channel - cfg.analog_channels}
    return {"channelID": cfg.channel_id(alert.channel)}


def _xml(value: Any, name: str) -> str:
    if isinstance(value, list):
        entry = {"DetectionRegionList": "DetectionRegionEntry"}.get(name, name[:-4])
        return f"<{name}>\n" + "".join(_xml(v, entry) for v in value) + f"</{name}>\n"
    if isinstance(value, dict):
        return f"<{name}>\n" + "".join(_xml(v, k) for k, v in value.items()) + f"</{name}>\n"
    return elements(**{name: value})


def render(alert: SimAlert, cfg: SimDeviceConfig, stamp: Stamp) -> tuple[str, bytes]:
    """(content type, body) of the alert in its format."""
    data = alert_fields(alert, cfg, stamp)
    if alert.fmt == "json":
        return 'application/json; charset="UTF-8"', json.dumps(data).encode()
    inner = "".join(_xml(v, k) for k, v in data.items())
    body = f'{PROLOG}<EventNotificationAlert version="2.0" xmlns="{NS}">\n{inner}'
    return 'application/xml; charset="UTF-8"', (body + "</EventNotificationAlert>\n").encode()


def picture_files(
    alert: SimAlert, cfg: SimDeviceConfig, seq: int | None
) -> list[tuple[str, bytes]]:
    """(filename, JPEG bytes) of the alert's pictures."""
    number = 0 if seq is None else seq
    return [
        (
            f"{alert.type}_ch{alert.channel}_{number}_{i}.jpg",
            jpeg(cfg.name, alert.channel, alert.picture_size),
        )
        for i in range(1, alert.pictures + 1)
    ]


STREAM_BOUNDARY = b"boundary"


def stream_parts(
    alert: SimAlert,
    cfg: SimDeviceConfig,
    stamp: Stamp,
    rendered: tuple[str, bytes] | None = None,
) -> bytes:
    """The alert as alertStream parts, each followed by the NEXT boundary line.

    The library hands a part over only when it has read the following `--boundary`;
    writing the boundary only before each part delivers every event one late
    (sdk-over-isapi.md part 1 §2).
    """
    content_type, body = rendered or render(alert, cfg, stamp)
    out = [
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode(),
        body,
        b"\r\n--" + STREAM_BOUNDARY + b"\r\n",
    ]
    for i, (filename, data) in enumerate(picture_files(alert, cfg, stamp.seq), start=1):
        out.append(
            (
                "Content-Type: image/jpeg\r\n"
                f"Content-Length: {len(data)}\r\n"
                f'Content-Disposition: form-data; name="{alert.type}Image"; '
                f'filename="{filename}"\r\n'
                f"Content-ID: image_{i}\r\n\r\n"
            ).encode()
        )
        out.append(data)
        out.append(b"\r\n--" + STREAM_BOUNDARY + b"\r\n")
    return b"".join(out)


PUSH_BOUNDARY = "MIME_boundary"


def push_body(
    alert: SimAlert, cfg: SimDeviceConfig, stamp: Stamp, form: Literal["xml", "json", "multipart"]
) -> tuple[str, bytes]:
    """(content type, body) of an HTTP POST to an alarm host ("HTTP listening" mode)."""
    if form != "multipart":
        plain = SimAlert(**{**_as_dict(alert), "pictures": 0, "fmt": form})
        return render(plain, cfg, stamp)
    content_type, body = render(alert, cfg, stamp)
    b = PUSH_BOUNDARY.encode()
    parts = [
        b"--" + b + b"\r\n",
        (
            f'Content-Disposition: form-data; name="{alert.type}"\r\n'
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode(),
        body,
        b"\r\n",
    ]
    for filename, data in picture_files(alert, cfg, stamp.seq):
        parts += [
            b"--" + b + b"\r\n",
            (
                f'Content-Disposition: form-data; name="{alert.type}Image"; '
                f'filename="{filename}"\r\n'
                f"Content-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode(),
            data,
            b"\r\n",
        ]
    parts.append(b"--" + b + b"--\r\n")
    return f"multipart/form-data; boundary={PUSH_BOUNDARY}", b"".join(parts)


def _as_dict(alert: SimAlert) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in alert.__dataclass_fields__}


_XML_PART = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n<EventNotificationAlert version="2.0" '
    b'xmlns="http://www.isapi.org/ver20/XMLSchema"><eventType>VMD</eventType>'
    b"<eventState>active</eventState><channelID>1</channelID></EventNotificationAlert>"
)
_NEXT = b"\r\n--" + STREAM_BOUNDARY + b"\r\n"


def malformed_part(kind: str, seed: int = 0) -> bytes:
    """Broken alertStream parts seen from real devices, each followed by the next boundary.

    Measured with the real library (README, vendor-library notes): ``headerless`` (random
    bytes where a part's headers belong), ``empty`` (a boundary straight after a
    boundary) and ``boundary_in_body`` (a boundary line inside an XML body) make it
    silently stop delivering anything on that stream until its own reconnect 35 s after
    the last good part; ``empty_body`` (empty headers and body) and ``bad_xml`` cost only
    that part (a 0x7fff message, code 8 or 7)."""
    if kind == "headerless":
        noise = bytes((seed * 131 + i * 197 + 61) % 256 for i in range(300))
        return noise + _NEXT
    if kind == "empty":
        return _NEXT[2:]
    if kind == "empty_body":
        return b"\r\n" + _NEXT
    if kind == "boundary_in_body":
        head = b'Content-Type: application/xml; charset="UTF-8"\r\n'
        head += b"Content-Length: %d\r\n\r\n" % (len(_XML_PART) + len(_NEXT))
        return head + _XML_PART[:80] + _NEXT + _XML_PART[80:] + _NEXT
    if kind == "bad_xml":
        body = _XML_PART[:-30]
        head = b'Content-Type: application/xml; charset="UTF-8"\r\n'
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body + _NEXT
    if kind in ("nested_xml", "nested_json"):
        return _nested_part(kind, NESTED_DEPTH)
    raise ValueError(f"unknown malformed part {kind!r}; known: {', '.join(MALFORMED_PARTS)}")


NESTED_DEPTH = 1000
"""Levels of the hostile ``nested_*`` parts: the vendor library's parser recurses per level
and crashes its process (SIGSEGV, README "Vendor-library notes"); hikd's decoder would not."""


def _nested_part(kind: str, depth: int) -> bytes:
    """A hostile part, not a device's: a well-formed alert nested `depth` levels deep."""
    if kind == "nested_xml":
        body = b"<EventNotificationAlert>" + b"<a>" * depth + b"</a>" * depth
        body += b"</EventNotificationAlert>"
        content_type = b'application/xml; charset="UTF-8"'
    else:
        body = b'{"eventType": "VMD", "a": ' + b"[" * depth + b"]" * depth + b"}"
        content_type = b"application/json"
    head = b"Content-Type: " + content_type + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head + body + _NEXT


MALFORMED_PARTS = ("headerless", "empty", "empty_body", "boundary_in_body", "bad_xml")
HOSTILE_PARTS = ("nested_xml", "nested_json")
"""Parts that crash the vendor library (the device-host tests): not in `MALFORMED_PARTS`."""
