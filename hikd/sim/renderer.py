"""An alert's alertStream part from a cached template: what a device's alarm stream sends
per alarm, cheap enough for benchmarks at thousands of alarms per second.

Only the sequence number, the send time and the dateTime change between two alerts of the
same kind; the rest of the part (headers included) is rendered once per kind
(`tests/sim/test_renderer.py`: byte for byte what `alerts.render` and `alerts.stream_parts`
make afresh).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hikd.sim.alerts import STREAM_BOUNDARY, SimAlert, Stamp, render, stream_parts
from hikd.sim.config import SimDeviceConfig

_SEQ_MARK = 900_000_000_000_000_001
_NS_MARK = 900_000_000_000_000_002
_DT_MARK = "HIKDSIMDATETIMEMARK"
_MARKS = re.compile(rf"({_SEQ_MARK}|{_NS_MARK}|{_DT_MARK})")
_MARK_VALUE = {str(_SEQ_MARK): 0, str(_NS_MARK): 1, _DT_MARK: 2}
"""Which of a stamp's (seq, sent_ns, date_time) a mark in a template stands for."""
_TEMPLATE_LIMIT = 4096
_PART_END = b"\r\n--" + STREAM_BOUNDARY + b"\r\n"


@dataclass(frozen=True, slots=True)
class _Template:
    content_type: str
    pieces: list[str]
    """The body's text split at the marks: text, mark, text, mark, ..., text."""
    marks: list[tuple[int, int]]
    """(index in `pieces`, which stamp value) of each mark."""
    part_head: bytes
    """The alertStream part's headers up to the Content-Length's value."""


class AlertRenderer:
    """Renders one device's alerts from cached templates: only the sequence number, the
    send time and the dateTime change between two alerts of the same kind. Keeps the
    simulator's cost per event low enough for benchmarks at tens of thousands per second.
    Used on the simulator's loop only."""

    def __init__(self, cfg: SimDeviceConfig) -> None:
        self.cfg = cfg
        self._templates: dict[tuple[object, ...], _Template] = {}

    def _template(self, alert: SimAlert, port: int, numbered: bool) -> _Template:
        extra = tuple(sorted(alert.extra.items()))
        key = (
            alert.type, alert.channel, alert.state, alert.pictures, alert.fmt,
            alert.region_id, alert.target, alert.active_post_count, extra, port, numbered,
            alert.resent,
        )  # fmt: skip
        found = self._templates.get(key)
        if found is None:
            marks = Stamp(_SEQ_MARK if numbered else None, _NS_MARK, _DT_MARK, port)
            content_type, body = render(alert, self.cfg, marks)
            pieces = _MARKS.split(body.decode())
            found = _Template(
                content_type,
                pieces,
                [(i, _MARK_VALUE[pieces[i]]) for i in range(1, len(pieces), 2)],
                f"Content-Type: {content_type}\r\nContent-Length: ".encode(),
            )
            if len(self._templates) >= _TEMPLATE_LIMIT:
                self._templates.clear()
            self._templates[key] = found
        return found

    @staticmethod
    def _fill(template: _Template, stamp: Stamp) -> bytes:
        values = (str(stamp.seq), str(stamp.sent_ns), stamp.date_time)
        text = template.pieces.copy()
        for at, which in template.marks:
            text[at] = values[which]
        return "".join(text).encode()

    def body(self, alert: SimAlert, stamp: Stamp) -> tuple[str, bytes]:
        """The same (content type, body) as `render`, from a template."""
        template = self._template(alert, stamp.port, stamp.seq is not None)
        return template.content_type, self._fill(template, stamp)

    def stream_parts(self, alert: SimAlert, stamp: Stamp) -> bytes:
        """The same bytes as `stream_parts`, from a template."""
        template = self._template(alert, stamp.port, stamp.seq is not None)
        body = self._fill(template, stamp)
        if alert.pictures:
            return stream_parts(alert, self.cfg, stamp, (template.content_type, body))
        return b"%s%d\r\n\r\n%s%s" % (template.part_head, len(body), body, _PART_END)
