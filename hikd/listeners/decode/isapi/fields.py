"""Which fields of an ISAPI alert hikd reads itself, and how their XML text becomes a number."""

from __future__ import annotations

import math
import re
from typing import Any

MAX_DEPTH = 24
"""Deeper structure than any device sends is cut off (kept as a marker), so a hostile
body cannot make the decoder recurse without bound."""

INT_TEXT = re.compile(r"^[+-]?\d{1,19}$")
FLOAT_TEXT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")

# Leaf names whose XML text is a number (JSON keeps its own types).
INT_FIELDS = frozenset(
    {
        "channelID",
        "dynChannelID",
        "videoInputChannelID",
        "dynVideoInputChannelID",
        "inputIOPortID",
        "dynInputIOPortID",
        "activePostCount",
        "portNo",
        "regionID",
        "ruleID",
        "sensitivityLevel",
        "positionX",
        "positionY",
        "picturesNumber",
        "picNum",
        "targetID",
        "hddID",
        "hikdSimSentNs",
        "hikdSimSeq",
    }
)
FLOAT_FIELDS = frozenset({"X", "Y", "x", "y", "width", "height"})
NUMERIC_FIELDS = INT_FIELDS | FLOAT_FIELDS
CHANNEL_FIELDS = ("channelID", "dynChannelID", "videoInputChannelID", "dynVideoInputChannelID")
INPUT_FIELDS = ("inputIOPortID", "dynInputIOPortID")
EVENT_FIELDS = (
    "_root_only",
    "eventType",
    "DurationList",
    "eventState",
    "dateTime",
    *CHANNEL_FIELDS,
    *INPUT_FIELDS,
)
"""Every alert field `alert_events` reads itself (the others reach it as attributes)."""

CACHE_MAX = 4096
"""Entries kept in each cache of names (element tag -> local name, field -> attribute
name): names repeat in every alert, and a body can invent any number of them."""


def leaf(name: str, value: Any) -> Any:
    """A leaf's XML text as a number when its field holds one, else as it came."""
    if not isinstance(value, str):
        return value
    if name in INT_FIELDS:
        # Plain digits are what devices send: skip the regex for them.
        if (value.isdecimal() and len(value) <= 19) or INT_TEXT.match(value):
            return int(value)
        return value
    if name in FLOAT_FIELDS and (value.replace(".", "", 1).isdecimal() or FLOAT_TEXT.match(value)):
        number = float(value)
        return number if math.isfinite(number) else value
    return value
