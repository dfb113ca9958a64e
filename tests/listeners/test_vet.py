"""What the listen front accepts and how it rebuilds it (hikd.listeners.vet); the front and
the library end to end are in tests/listeners/test_front.py."""

from __future__ import annotations

import pytest

from hikd.listeners.vet import Limits, Refused, parse_head, parse_multipart, rebuild, xml_depth
from hikd.sim import hostile
from hikd.sim.alerts import PUSH_BOUNDARY, SimAlert, Stamp, push_body
from hikd.sim.config import SimDeviceConfig

LIMITS = Limits()
ALERT_XML = b"<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>"


def split(request: bytes) -> tuple[bytes, bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    return head, body


def refused(request: bytes) -> int:
    head, body = split(request)
    with pytest.raises(Refused) as caught:
        rebuild(parse_head(head, LIMITS), body, LIMITS)
    return caught.value.status


def test_what_devices_send_passes_unchanged_or_reframed() -> None:
    cfg = SimDeviceConfig()
    for form in ("xml", "json"):
        content_type, body = push_body(SimAlert(fmt=form), cfg, Stamp(1, 0, "", 80), form)
        head, _ = split(hostile.post(body, content_type + "; charset=UTF-8", "/alarm?x=1"))
        parsed = parse_head(head, LIMITS)
        assert parsed.path == "/alarm"
        assert rebuild(parsed, body, LIMITS) == (f"application/{form}", body)
    # XML as devices write it: declaration, namespace, comment, attributes with ">".
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert version="2.0" '
        b'xmlns="http://www.hikvision.com/ver20/XMLSchema"><!-- <x> --><a b="1>2"/>'
        b"<eventType>VMD</eventType><![CDATA[<<<]]></EventNotificationAlert>"
    )
    assert xml_depth(body, 64) == 2
    for root in (b"<EventNotificationAlert/>", b"<ns0:EventNotificationAlert xmlns:ns0='x'>"):
        head, _ = split(hostile.post(root))
        assert rebuild(parse_head(head, LIMITS), root, LIMITS)[1] == root


def test_multipart_is_rebuilt_with_hikds_own_part_headers_and_boundary() -> None:
    cfg = SimDeviceConfig()
    content_type, body = push_body(
        SimAlert(type="linedetection", pictures=2), cfg, Stamp(1, 0, "", 80), "multipart"
    )
    head, _ = split(hostile.post(body, content_type))
    new_type, new_body = rebuild(parse_head(head, LIMITS), body, LIMITS)
    boundary = new_type.split("boundary=", 1)[1]
    assert boundary != PUSH_BOUNDARY and PUSH_BOUNDARY.encode() not in new_body
    old, new = parse_multipart(PUSH_BOUNDARY, body), parse_multipart(boundary, new_body)
    assert [p.data for p in new] == [p.data for p in old]
    assert [p.content_type for p in new] == ["application/xml", "image/jpeg", "image/jpeg"]
    assert all(p.filename for p in new[1:])


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (hostile.post(hostile.nested_xml(65)), 400),
        (hostile.post(b'<E><a x="/>">' * 100), 400),  # quotes hide no element from the count
        (hostile.post(hostile.nested_json(65), "application/json"), 400),
        (hostile.post(b'<!DOCTYPE E [<!ENTITY a "aa">]><E>&a;</E>'), 400),
        (hostile.post(b"<E><!-- unterminated"), 400),
        (hostile.post(b"<E><a<b></E>"), 400),
        (hostile.post(b"<E/>", "image/png"), 415),
        (hostile.post(b"<E/>"), 400),  # well-formed, but not an alarm
        (hostile.post(b"<?xml version='1.0'?><!-- x --><a:Other/>"), 400),
        (hostile.post(b'{"a": [1]}', "application/json"), 400),
        (hostile.multipart([("application/xml", b"<E/>")]), 400),
        (hostile.multipart([("application/json", hostile.nested_json(100))]), 400),
        (hostile.multipart([("image/jpeg", b"\xff\xd8\xff\xd9")]), 400),  # no alarm in it
        (hostile.post(b"--MIME_boundary\r\n", "multipart/form-data; boundary=MIME_boundary"), 400),
        (hostile.broken_multipart(), 400),
        (hostile.broken_multipart(b""), 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n<E/>", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\n folded\r\n\r\n<E/>", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -4\r\n\r\n<E/>", 411),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413),
        (b"POST /\x00 HTTP/1.1\r\nContent-Length: 4\r\n\r\n<E/>", 400),
    ],
)
def test_what_the_front_refuses(request_bytes: bytes, status: int) -> None:
    assert refused(request_bytes) == status


def test_depth_is_measured_in_linear_time_on_hostile_shapes() -> None:
    # Each of these made a naive scanner search to the end again per item.
    for body in (b"<?a>" * 500_000, b"<" + b"a" * 4_000_000, b'<a b="' * 500_000):
        with pytest.raises(Refused):
            xml_depth(body, 64)


def test_a_multipart_longer_than_the_library_takes_once_rebuilt_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hikd's part headers and boundary may be longer than the sender's: a body just under
    the library's 64 MiB would reach it over, and the library resets that without a word
    after the device was answered 200 (tests/listeners/test_front_dropped.py). Here the
    bound is made small: the same arithmetic without 64 MiB in memory."""
    from hikd.listeners import vet

    request = hostile.multipart([("application/xml", ALERT_XML), ("image/jpeg", b"\xff" * 300)])
    head, body = split(request)
    monkeypatch.setattr(vet, "LIBRARY_MAX_BODY", len(body) + 1)
    assert refused(request) == 413
    monkeypatch.setattr(vet, "LIBRARY_MAX_BODY", len(body) + 200)
    assert rebuild(parse_head(head, LIMITS), body, LIMITS)[0].startswith("multipart/form-data")


def test_a_part_with_its_length_may_hold_the_boundary() -> None:
    """Devices give each part's Content-Length: a picture whose bytes hold the boundary is
    read by its length (it was refused, 400); without a length the boundary ends it."""
    picture = b"\xff\xd8 \r\n--MIME_boundary\r\n \xff\xd9"
    request = hostile.multipart([("application/xml", ALERT_XML), ("image/jpeg", picture)])
    head, body = split(request)
    content_type, relayed = rebuild(parse_head(head, LIMITS), body, LIMITS)
    (alarm, jpeg) = parse_multipart(content_type.split("boundary=")[1], relayed)
    assert (alarm.data, jpeg.data) == (ALERT_XML, picture)
    without_length = b"Content-Length: %d\r\n\r\n\xff" % len(picture)
    assert refused(request.replace(without_length, b"\r\n\xff")) == 400


def test_the_alarm_part_is_relayed_first() -> None:
    """The library takes the first part for the alarm document (README's vendor-library
    notes): the first alarm goes first, the other parts after it in the sender's order."""
    parts = [
        ("image/jpeg", b"\xff\xd8one\xff\xd9"),
        ("application/xml", b"<E/>"),
        ("application/xml", ALERT_XML),
        ("image/jpeg", b"\xff\xd8two\xff\xd9"),
    ]
    head, body = split(hostile.multipart(parts))
    content_type, relayed = rebuild(parse_head(head, LIMITS), body, LIMITS)
    found = parse_multipart(content_type.split("boundary=")[1], relayed)
    assert [p.data for p in found] == [parts[i][1] for i in (2, 0, 1, 3)]
