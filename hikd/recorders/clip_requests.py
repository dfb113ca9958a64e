"""What a clip is: its settings (`ClipConfig`), and the span an alarm asks for
(`clip_request`): from ``pre_s`` before the alarm to ``post_s`` after it, kept in the state
database as a `ClipRequest` until it is fetched."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hikd.events import Event


class ClipConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Annotated[int, Field(ge=1)]] | None = None
    """Only alarms of these channels; default: every channel."""
    types: list[str] = Field(default_factory=list)
    """Only these alarm types (``motion``, ``line_crossing``, ...); default: every type."""
    trigger: Literal["stop", "start"] = "stop"
    """Make the clip when the alarm stops, or when it starts (then it is taken to last
    ``after_start_s``)."""
    after_start_s: Annotated[float, Field(ge=0)] = 30.0
    pre_s: Annotated[float, Field(ge=0)] = 10.0
    post_s: Annotated[float, Field(ge=0)] = 10.0
    max_length_s: Annotated[float, Field(gt=0)] = 600.0
    """A longer alarm gives a clip of this length from its beginning."""
    margin_s: Annotated[float, Field(ge=0)] = 10.0
    """Wait this long past the clip's end before fetching: the device writes its
    recording with some delay."""
    stall_timeout_s: Annotated[float, Field(gt=0)] = 20.0
    retries: Annotated[int, Field(ge=0, le=20)] = 2
    retry_backoff_s: Annotated[float, Field(ge=0)] = 5.0
    retry_later_s: Annotated[float, Field(gt=0)] = 60.0
    """When the device is offline or every retry failed, try again this much later..."""
    give_up_after_s: Annotated[float, Field(gt=0)] = 6 * 3600.0
    """... until this long after the clip's end."""
    parallel: Annotated[int, Field(ge=1, le=16)] = 2
    route: Literal["auto", "file", "stream"] = "auto"
    """As for downloads: the device's own file over ISAPI, else the playback stream."""
    keep_days: Annotated[float, Field(gt=0)] | None = None
    keep_bytes: Annotated[int, Field(gt=0)] | None = None


@dataclass(frozen=True, slots=True)
class ClipRequest:
    alarm_id: str
    device: str
    channel: int
    alarm_type: str
    start: datetime
    end: datetime
    due: float
    """POSIX time from which to try."""
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipRequest:
        return cls(
            alarm_id=str(data["alarm_id"]),
            device=str(data["device"]),
            channel=int(data["channel"]),
            alarm_type=str(data["alarm_type"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            due=float(data["due"]),
            attempts=int(data.get("attempts", 0)),
        )


def clip_request(
    event: Event, cfg: ClipConfig, devices: list[str] | None = None
) -> ClipRequest | None:
    """The clip an event asks for under `cfg`, or None."""
    if event.kind != "alarm" or event.channel is None:
        return None
    if devices is not None and event.device.name not in devices:
        return None
    if cfg.types and event.type not in cfg.types:
        return None
    if cfg.channels and event.channel not in cfg.channels:
        return None
    attrs = event.attributes
    if event.state == "stop" and cfg.trigger == "stop":
        alarm_id = str(attrs.get("start_id") or event.id)
        alarm_start = _time(attrs.get("started")) or event.time
        alarm_end = event.time
    elif event.state == "start" and cfg.trigger == "start":
        alarm_id, alarm_start = event.id, event.time
        alarm_end = event.time + timedelta(seconds=cfg.after_start_s)
    elif event.state == "pulse":
        alarm_id, alarm_start, alarm_end = event.id, event.time, event.time
    else:
        return None
    start = alarm_start - timedelta(seconds=cfg.pre_s)
    end = alarm_end + timedelta(seconds=cfg.post_s)
    end = max(start, min(end, start + timedelta(seconds=cfg.max_length_s)))
    return ClipRequest(
        alarm_id=alarm_id,
        device=event.device.name,
        channel=event.channel,
        alarm_type=event.type,
        start=start,
        end=end,
        due=end.timestamp() + cfg.margin_s,
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
