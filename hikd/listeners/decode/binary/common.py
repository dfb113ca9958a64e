"""What the decoders of the private protocol's alarm structs share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hikd.events import Event
from hikd.listeners.decode.context import DecodeContext, malformed, received_at
from hikd.listeners.decode.stats import DecodeStats
from hikd.sdk.alarm_structs import PayloadTooShort
from hikd.sdk.raw import RawAlarm

Decoder = Callable[[RawAlarm, DecodeContext, DecodeStats], list[Event]]


def too_short(
    raw: RawAlarm, ctx: DecodeContext, stats: DecodeStats, exc: PayloadTooShort
) -> list[Event]:
    """A payload shorter than its struct: one malformed-alarm health event."""
    return [malformed(raw, ctx, stats, str(exc), struct=exc.struct_name)]


def number(value: float) -> float | None:
    """A float field fit for JSON (garbage floats can be NaN or infinite)."""
    return round(value, 6) if math.isfinite(value) else None


def health(raw: RawAlarm, ctx: DecodeContext, type_: str, **attributes: Any) -> Event:
    """A health fact a device pushed as an alarm message."""
    return Event(
        kind="health",
        type=type_,
        state="pulse",
        device=ctx.device,
        time=received_at(raw),
        received=received_at(raw),
        attributes={"command": raw.command, **attributes},
    )
