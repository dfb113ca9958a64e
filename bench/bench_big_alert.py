"""Decoder time for an alert with a huge description, against compiling its shape.

Run: ``.venv/bin/python bench/bench_big_alert.py``

A device sent an alert whose description was 1.2 MB; before issue 8 item 10 the second
such body made `AlertShapes` compile it into one regular expression, which held the
decoder thread (and so every device's alarms) for seconds. Now bodies above
`shapes.MAX_SOURCE` or with more than `shapes.MAX_LEAVES` leaves are never compiled and
texts above `hikd.listeners.decode.isapi.attributes.MAX_TEXT` are cut.

* decode: the worst of three decodes of the same body (the second is where the old
  decoder compiled), with today's decoder.
* reference, same run: `AlertShapes._compile` of that body, the step the old decoder
  took on the second body (the decode itself came on top of it).

Target: decode well under 0.1 s per body; the ratio printed is reference/decode.
"""

from __future__ import annotations

import time

from hikd.events import DeviceRef
from hikd.listeners.decode import DecodeContext, DecodeStats, decode
from hikd.listeners.decode.isapi import body as alert_body
from hikd.sdk.raw import NO_ALARMER, RawAlarm

CTX = DecodeContext(DeviceRef("nvr", "SERIAL", "10.0.0.2"))


def body(description: str, size: int) -> str:
    text = description * (size // len(description))
    return (
        "<EventNotificationAlert><channelID>1</channelID><eventType>VMD</eventType>"
        f"<eventState>active</eventState><eventDescription>{text}</eventDescription>"
        "</EventNotificationAlert>"
    )


def main() -> None:
    print(f"{'body':>34} {'decode s':>9} {'old compile s':>14} {'ratio':>7}")
    for label, description in (
        ("text with '>' and CRLF", "line of text > more\r\n"),
        ("text with markup", "<b>bold</b> text "),
    ):
        for size in (500_000, 1_200_000):
            source = body(description, size)
            raw = RawAlarm(0x6009, NO_ALARMER, source.encode(), time.time_ns(), data_type=1)
            alert_body._shapes.clear()
            worst = 0.0
            for _ in range(3):
                t0 = time.perf_counter()
                decode(raw, CTX, DecodeStats())
                worst = max(worst, time.perf_counter() - t0)
            t0 = time.perf_counter()
            alert_body.alert_shapes()._compile(source)
            old = time.perf_counter() - t0
            name = f"{label}, {size / 1e6:.1f} MB"
            print(f"{name:>34} {worst:9.3f} {old:14.3f} {old / worst:7.0f}x")


if __name__ == "__main__":
    main()
