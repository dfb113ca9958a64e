"""Alert bodies of a known shape (hikd/listeners/decode/shapes.py) decode exactly as
parsing them does: same events, same attributes, same order, whatever their leaf texts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hikd.events import DeviceRef, Event
from hikd.listeners.alarm_state import AlarmStateTracker
from hikd.listeners.decode import DecodeContext, DecodeStats, decode, shapes
from hikd.listeners.decode.isapi import body as alert_body
from hikd.listeners.decode.isapi.attributes import MAX_TEXT
from hikd.sdk.raw import NO_ALARMER, RawAlarm
from hikd.sim.alerts import SimAlert, Stamp, render
from hikd.sim.config import SimDeviceConfig

ALERTS = Path(__file__).parents[2] / "fixtures" / "alerts"
CTX = DecodeContext(DeviceRef("nvr", "SERIAL", "10.0.0.2"), start_ip_channel=33)
LEAF = re.compile(r"<([A-Za-z_][A-Za-z0-9_.\-]*)>([^<]*)</\1>")
TEXTS = [
    "", " ", "0", "7", "-1", "+7", "007", " 42 ", "\n3\n", "12345678901234567890",
    "٣", "²", "1.5", ".5", "-.5e3", "1e999", "nan", "0x10", "1_000", "VMD", "active",
    "inactive", "duration", "IO", "videoloss", "linedetection", "2024-03-10T10:02:11+01:00",
    "2024-03-10T10:02:11", "not a time", "human", "中文", "a\nb", "\u00a0x\u00a0", "\ue000",
    # Not plain texts: such bodies must not match a shape and are parsed instead.
    "&amp;", "a &lt; b", "<![CDATA[x]]>", "<!-- c -->", "a\r\nb", ">", "]]>",
]  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_shapes(monkeypatch: pytest.MonkeyPatch) -> Iterator[shapes.AlertShapes]:
    known = alert_body.alert_shapes()
    monkeypatch.setattr(alert_body, "_shapes", known)
    yield known


def _raw(body: str | bytes, n: int = 0) -> RawAlarm:
    payload = body.encode() if isinstance(body, str) else body
    return RawAlarm(
        0x6009, NO_ALARMER, payload + b"\r\n", 1_700_000_000_000_000_000 + n, data_type=1
    )


def _comparable(events: list[Event]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        d = event.to_dict()
        d.pop("id")
        out.append(d)
    return out


def _parsed(body: str | bytes, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What parsing gives: the body decoded by a decoder that knows no shape yet."""
    with monkeypatch.context() as m:
        m.setattr(alert_body, "_shapes", alert_body.alert_shapes())
        return _comparable(decode(_raw(body), CTX, DecodeStats()))


def _known(body: str | bytes) -> list[dict[str, Any]]:
    return _comparable(decode(_raw(body), CTX, DecodeStats()))


def _sim_bodies() -> list[str]:
    cfg = SimDeviceConfig(name="nvr")
    bodies = []
    for kind in ("VMD", "linedetection", "fielddetection", "tamperdetection", "IO"):
        for state in ("active", "inactive"):
            _ctype, body = render(
                SimAlert(type=kind, channel=3, state=state),
                cfg,
                Stamp(1, 5, "2024-03-10T10:02:11+01:00", 80),
            )
            bodies.append(body.decode())
    return bodies


HAND_MADE = [
    # Only the second region names a target: the first one that does goes on top.
    "<EventNotificationAlert><eventType>fielddetection</eventType><eventState>active"
    "</eventState><channelID>2</channelID><DetectionRegionList><DetectionRegionEntry>"
    "<regionID>1</regionID></DetectionRegionEntry><DetectionRegionEntry><regionID>2"
    "</regionID><detectionTarget>vehicle</detectionTarget></DetectionRegionEntry>"
    "</DetectionRegionList></EventNotificationAlert>",
    # Repeated leaves, nested fields with the names of top-level ones, renamed fields.
    "<EventNotificationAlert><eventType>IO</eventType><inputIOPortID>3</inputIOPortID>"
    "<hddID>1</hddID><hddID>2</hddID><macAddress>m</macAddress><mac>n</mac><a><b>1</b>"
    "<eventType>x</eventType></a><a><b>2</b></a><X>1.5</X><Y>7</Y><dateTime>"
    "2024-01-01T00:00:00</dateTime></EventNotificationAlert>",
    # A duration event names the real one further down.
    "<EventNotificationAlert><eventType>duration</eventType><DurationList><Duration>"
    "<relationEvent>linedetection</relationEvent></Duration></DurationList><eventState>"
    "active</eventState></EventNotificationAlert>",
]


def _bodies() -> list[str]:
    files = [p.read_text() for p in sorted(ALERTS.glob("*.xml"))]
    return files + _sim_bodies() + HAND_MADE


def _learn(body: str) -> None:
    for _ in range(shapes._LEARN_AFTER):
        decode(_raw(body), CTX, DecodeStats())


def test_a_shape_is_learned_from_repeats_and_then_used(
    fresh_shapes: shapes.AlertShapes, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _sim_bodies()[2]  # line crossing: regions, coordinates, a target rectangle
    first = _known(body)
    assert len(fresh_shapes) == 0
    _learn(body)
    assert len(fresh_shapes) == 1
    source = alert_body._XML_DECL.sub("", body.strip(), count=1)
    assert fresh_shapes.read(source) is not None
    assert _known(body) == first == _parsed(body, monkeypatch)


def _with_texts(body: str, text_for: Any) -> str:
    """`body` with the text of its i-th leaf replaced by ``text_for(i)``."""
    leaves = iter(range(10_000))
    return LEAF.sub(lambda m: f"<{m[1]}>{text_for(next(leaves))}</{m[1]}>", body)


@pytest.mark.parametrize("index", range(len(_bodies())))
def test_bodies_of_a_known_shape_decode_as_parsed(
    index: int, fresh_shapes: shapes.AlertShapes, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _bodies()[index]
    _learn(body)
    for n, text in enumerate(TEXTS):
        # Every leaf text replaced by the same text, then each by another one.
        for variant in (
            _with_texts(body, lambda i, text=text: text),
            _with_texts(body, lambda i, n=n: TEXTS[(n + i) % len(TEXTS)]),
        ):
            assert _known(variant) == _parsed(variant, monkeypatch), variant
    # Learnable bodies were read by their shape (the others have entities, a DOCTYPE, ...).
    assert fresh_shapes._hits > 0 or len(fresh_shapes) == 0


def test_texts_that_are_not_plain_are_parsed(fresh_shapes: shapes.AlertShapes) -> None:
    body = _sim_bodies()[0]
    _learn(body)
    source = alert_body._XML_DECL.sub("", body.strip(), count=1)
    assert fresh_shapes.read(source) is not None
    for text in ("a &amp; b", "<![CDATA[VMD]]>", "x<!-- c -->", "a\r\nb", "a > b", "\x7f\x1f"):
        odd = source.replace("<eventType>VMD</eventType>", f"<eventType>{text}</eventType>")
        assert odd != source
        assert fresh_shapes.read(odd) is None


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(texts=st.lists(st.text(max_size=12), min_size=1, max_size=40))
def test_random_leaf_texts_decode_as_parsed(
    texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _sim_bodies()[2]
    if len(alert_body._shapes) == 0:
        _learn(body)
    texts = [
        "".join(c for c in t if c in "\t\n" or (c >= " " and not "\ud800" <= c <= "\udfff"))
        for t in texts
    ]
    variant = _with_texts(body, lambda i: texts[i % len(texts)])
    try:
        variant.encode()
    except UnicodeEncodeError:
        return
    assert _known(variant) == _parsed(variant, monkeypatch)


def test_a_shape_deeper_than_the_depth_limit_is_not_used(
    fresh_shapes: shapes.AlertShapes, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = (
        "".join(f"<L{i}>" for i in range(40))
        + "x"
        + "".join(f"</L{i}>" for i in reversed(range(40)))
    )
    body = f"<EventNotificationAlert><eventType>VMD</eventType>{deep}</EventNotificationAlert>"
    _learn(body)
    assert len(fresh_shapes) == 0
    assert _known(body) == _parsed(body, monkeypatch)


def test_shapes_kept_and_compiled_are_bounded(fresh_shapes: shapes.AlertShapes) -> None:
    # Bodies of ever new shapes, each twice: compiling stops after MAX_SHAPES until
    # enough bodies are read from the shapes kept.
    for i in range(shapes.MAX_SHAPES + 10):
        _learn(
            f"<EventNotificationAlert><eventType>VMD</eventType><f{i}>1</f{i}></EventNotificationAlert>"
        )
    assert len(fresh_shapes) == shapes.MAX_SHAPES
    assert fresh_shapes._compiles == shapes.MAX_SHAPES


def _big_alert(description: str, state: str = "active") -> str:
    return (
        "<EventNotificationAlert><channelID>1</channelID><eventType>VMD</eventType>"
        f"<eventState>{state}</eventState><eventDescription>{description}</eventDescription>"
        "</EventNotificationAlert>"
    )


@pytest.mark.parametrize(
    ("description", "cut_key"),
    [
        # A ">" keeps the text from being a leaf: one 1.2 MB literal (1.5 s to compile).
        ("line of text > more\r\n" * 57_000, "event_description"),
        # Markup inside: one regex group per leaf (21 s to compile at 1.2 MB).
        ("<b>bold</b> text " * 70_000, "b"),
    ],
    ids=["literal", "leaves"],
)
def test_a_huge_alert_is_never_compiled_and_its_texts_are_cut(
    description: str, cut_key: str, fresh_shapes: shapes.AlertShapes
) -> None:
    # Issue 8 item 10: compiling it blocked the decoder thread (and every device) for
    # seconds, and the stop repeated the whole description.
    body = _big_alert(description)
    for _ in range(shapes._LEARN_AFTER + 1):
        [event] = decode(_raw(body), CTX, DecodeStats())
    assert len(fresh_shapes) == 0
    cut = event.attributes["truncated"]
    assert set(cut) == {cut_key} and cut[cut_key] > 50_000
    value = event.attributes[cut_key]
    if isinstance(value, str):
        assert value.startswith("line of text > more\nline") and value.endswith(" characters]")
    assert len(event.to_json()) < 3 * MAX_TEXT
    # The stop the tracker derives carries no more than the start did.
    tracker = AlarmStateTracker({"default": 10})
    [start] = tracker.feed(event)
    [stop_event] = decode(_raw(_big_alert(description, "inactive")), CTX, DecodeStats())
    [stop] = tracker.feed(stop_event)
    assert stop.state == "stop" and stop.attributes["start_id"] == start.id
    assert len(stop.to_json()) < 3 * MAX_TEXT


def test_a_short_alert_keeps_its_texts_whole() -> None:
    text = "d" * MAX_TEXT
    [event] = decode(_raw(_big_alert(text)), CTX, DecodeStats())
    assert event.attributes["event_description"] == text
    assert "truncated" not in event.attributes
