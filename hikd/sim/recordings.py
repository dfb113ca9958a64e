"""A device's recordings: the timeline per channel, `POST /ISAPI/ContentMgmt/search` and
the byte-exact `/ISAPI/ContentMgmt/download`.

What the library sends and reads is in sdk-over-isapi.md part 2 a and b: trackID =
channel*100+1, pages of 40 driven by `responseStatusStrg` MORE, times on the device's wall
clock with a literal "Z", FINDDATA filled from <timeSpan> and the name=/size= of
<playbackURI>.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from hikd.sim import documents, video
from hikd.sim.documents import elements
from hikd.sim.http import Connection, Request, Response
from hikd.sim.parts import DevicePart, RtspStarter

SEARCH_PATH = "/ISAPI/ContentMgmt/search"
DOWNLOAD_PATH = "/ISAPI/ContentMgmt/download"
_NAME = re.compile(r"ch(\d{2,3})_(\d{11})")


class RecordingsHost(DevicePart, Protocol):
    """What the recording store needs of the device: its RTSP server."""

    @property
    def rtsp(self) -> RtspStarter: ...


def wall(dt: datetime) -> str:
    """Device wall-clock time the Hikvision way: ISAPI form with a "Z" that is not UTC."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def compact(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%SZ")


def parse_wall(text: str) -> datetime:
    """ISAPI time as wall-clock: any Z or offset suffix is ignored, as the library does."""
    core = re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", text.strip())
    if core is None:
        raise ValueError(f"bad ISAPI time {text!r}")
    return datetime.strptime(core[0], "%Y-%m-%dT%H:%M:%S")


def parse_compact(text: str) -> datetime:
    return datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")


@dataclass(frozen=True, slots=True)
class Recording:
    channel: int
    index: int
    start: datetime
    end: datetime
    """Last second inside the recording (ISAPI end times are inclusive)."""
    size: int
    open: bool
    """Still being written: its end and size grow."""

    @property
    def name(self) -> str:
        return f"ch{self.channel:02d}_{self.index:011d}"


class RecordingStore:
    """The recordings of one device, computed from its `RecordingPlan`."""

    def __init__(self, device: RecordingsHost) -> None:
        self.device = device
        plan = device.config.recordings
        self.plan = plan
        now = documents.device_now(device.config).replace(tzinfo=None, microsecond=0)
        self.end = plan.end.replace(tzinfo=None) if plan.end is not None else now
        """Where the timeline stood when the device started; its clock runs on from there."""
        self._started = time.monotonic()
        self._stopped: dict[int, datetime] = {}
        """Channels whose recording was switched off, and when (timeline time)."""
        self._closed: dict[int, list[Recording]] = {}
        self._lock = threading.Lock()
        self._channels = set(plan.channels) if plan.channels is not None else None
        self.searches = 0
        self.download_knobs = DownloadKnobs()
        self.download_stats = DownloadStats()
        device.route("POST", SEARCH_PATH, self._search)
        device.route("GET", DOWNLOAD_PATH, self._download)
        device.route("POST", DOWNLOAD_PATH, self._download)

    def records(self, channel: int) -> bool:
        in_plan = self._channels is None or channel in self._channels
        return in_plan and 1 <= channel <= self.device.config.channel_count

    def is_recording(self, channel: int) -> bool:
        """The channel is recording now (its last segment is open)."""
        with self._lock:
            stopped = channel in self._stopped
        return self.records(channel) and self.plan.still_recording and not stopped

    def set_recording(self, channel: int, on: bool) -> None:
        with self._lock:
            if on:
                self._stopped.pop(channel, None)
            else:
                self._stopped.setdefault(channel, self.timeline_now())

    def timeline_now(self) -> datetime:
        """The recordings' clock: `end` at start, running on in real time."""
        return self.end + timedelta(seconds=int(time.monotonic() - self._started))

    @property
    def open_start(self) -> datetime:
        """Where the recording still being written began."""
        return self.end - timedelta(seconds=self.plan.open_since_s)

    def _segment(self, channel: int, index: int, start: datetime) -> Recording:
        end = start + timedelta(seconds=self.plan.segment_s - 1)
        return Recording(channel, index, start, end, self.size(start, end), False)

    def size(self, start: datetime, end: datetime) -> int:
        """Bytes of the recorder's file from `start` to `end` (seconds, both included)."""
        if self.plan.content == "video":
            return video.ps_size(start, end)
        return (int((end - start).total_seconds()) + 1) * self.plan.bytes_per_second

    def recordings(self, channel: int) -> list[Recording]:
        """Every recording of `channel`, oldest first. With `still_recording` the last one
        is open: it started where the timeline stood at device start and grows since."""
        plan = self.plan
        if not self.records(channel) or plan.per_channel == 0:
            return []
        with self._lock:
            closed = self._closed.get(channel)
            stopped = self._stopped.get(channel)
        if closed is None:
            step = timedelta(seconds=plan.segment_s + plan.gap_s)
            n = plan.per_channel - (1 if plan.still_recording else 0)
            last_start = self.end - timedelta(seconds=plan.segment_s)
            if plan.still_recording:
                last_start = self.open_start
            first = last_start - (plan.per_channel - 1) * step
            closed = [self._segment(channel, i + 1, first + i * step) for i in range(n)]
            with self._lock:
                self._closed[channel] = closed
        if not plan.still_recording:
            return closed
        start = self.open_start
        end = max(start, (stopped or self.timeline_now()) - timedelta(seconds=1))
        growing = Recording(
            channel, plan.per_channel, start, end, self.size(start, end), stopped is None
        )
        return [*closed, growing]

    def find(self, name: str) -> Recording | None:
        match = _NAME.fullmatch(name)
        if match is None:
            return None
        channel, index = int(match[1]), int(match[2])
        items = self.recordings(channel)
        return items[index - 1] if 1 <= index <= len(items) else None

    def content(
        self,
        recording: Recording,
        size: int | None = None,
        span: tuple[datetime, datetime] | None = None,
    ) -> bytes:
        """The recording's file as the recorder stores it, or the part of it from `span`
        (whole seconds inside the recording), at most `size` bytes. Deterministic: the same
        span gives the same bytes, and spans that follow each other join into the whole."""
        start, end = span or (recording.start, recording.end)
        if self.plan.content == "video":
            data = video.ps_file(start, end)
        else:
            # Noise: the recording's bytes, cut in proportion to the time.
            whole = random.Random(f"{self.device.name}/{recording.name}").randbytes(recording.size)
            rate = self.plan.bytes_per_second
            offset = int((start - recording.start).total_seconds()) * rate
            data = whole[offset : offset + self.size(start, end)]
        return data if size is None else data[:size]

    def search_size(self, rec: Recording) -> int | None:
        """The size the search gives `rec` (`RecordingPlan.search_size`); None: no size=."""
        plan = self.plan
        size = rec.size
        if rec.open and plan.open_size_lag_s:
            lagged = rec.end - timedelta(seconds=plan.open_size_lag_s)
            size = self.size(rec.start, lagged) if lagged >= rec.start else 0
        unit = 1 << 20 if size >= 1 << 20 else 1 << 10
        match plan.search_size:
            case "under":
                return size // unit * unit
            case "over":
                return (size // (1 << 20) + 1) * (1 << 20)
            case "zero":
                return 0
            case "missing":
                return None
        return size

    def playback_uri(self, rec: Recording, rtsp_port: int) -> str:
        host = self.device.host
        port = rtsp_port
        query = f"starttime={compact(rec.start)}&endtime={compact(rec.end)}&name={rec.name}"
        size = self.search_size(rec)
        if size is not None:
            query += f"&size={size}"
        return f"rtsp://{host}:{port}/Streaming/tracks/{self.track_id(rec)}/?{query}"

    def track_id(self, rec: Recording) -> int:
        """The device's id of the recording's channel, main stream: ``<id>01``."""
        return self.device.config.channel_id(rec.channel) * 100 + 1

    # ----- ISAPI ---------------------------------------------------------------------------

    async def _search(self, request: Request, conn: Connection) -> Response:
        self.searches += 1
        rtsp_port = await self.device.rtsp.ensure_started()
        fields = _search_fields(request.body)
        if fields is None:
            return Response(
                400,
                documents.response_status(request.path, 4, "Invalid XML Content", "badXmlContent"),
            )
        search_id, tracks, start, end, position, limit = fields
        anytime = self.plan.search_ignores_span
        channels = [self.device.config.channel_of_id(t // 100) for t in tracks if t % 100 == 1]
        matches = [
            rec
            for channel in channels
            if channel is not None
            for rec in self.recordings(channel)
            if anytime or (rec.start <= end and rec.end >= start)
        ]
        page = matches[position : position + limit]
        if not page:
            status = "NO MATCHES"
        elif position + len(page) < len(matches):
            status = "MORE"
        else:
            status = "OK"
        items = "".join(self._item(rec, rtsp_port) for rec in page)
        body = documents.document(
            "CMSearchResult",
            elements(
                searchID=search_id,
                responseStatus=True,
                responseStatusStrg=status,
                numOfMatches=len(page),
            )
            + f"<matchList>\n{items}</matchList>\n",
        )
        return Response(200, body)

    def _item(self, rec: Recording, rtsp_port: int) -> str:
        span = elements(startTime=wall(rec.start), endTime=wall(rec.end))
        media = elements(
            contentType="video", codecType="H.264-BP", playbackURI=self.playback_uri(rec, rtsp_port)
        )
        return (
            "<searchMatchItem>\n"
            + elements(sourceID=self.device.config.device_id, trackID=self.track_id(rec))
            + f"<timeSpan>\n{span}</timeSpan>\n"
            + f"<mediaSegmentDescriptor>\n{media}</mediaSegmentDescriptor>\n"
            + "<metadataMatches>\n"
            + elements(metadataDescriptor="recordType.meta.std-cgi.com/timing")
            + "</metadataMatches>\n</searchMatchItem>\n"
        )

    async def _download(self, request: Request, conn: Connection) -> Response | None:
        uri = _tag_text(request.body, "playbackURI") or request.query.get("playbackURI", "")
        params = parse_qs(urlsplit(uri.replace("&amp;", "&")).query)
        name = (params.get("name") or [""])[0]
        rec = self.find(name)
        if rec is None:
            return Response(404, documents.not_supported(request.path))
        span = (rec.start, rec.end) if self.plan.download_ignores_span else _span(params, rec)
        if span is None:
            return Response(
                400, documents.response_status(request.path, 4, "Invalid Operation", "badTime")
            )
        size = None
        whole = span == (rec.start, rec.end)
        if whole and params.get("size", [""])[0].isdigit():
            # Taken as the bytes to send, the worst a device may do with it: a client that
            # echoes a search's rounded-down size= gets a file cut short, silently.
            size = int(params["size"][0])
        data = await asyncio.to_thread(self.content, rec, size, span)
        self.download_stats.served += 1
        self.download_stats.spans.append((rec.name, *span))
        knobs = self.download_knobs
        cut = knobs.cut_after_bytes
        if cut is None or knobs.cuts_left == 0 or cut >= len(data):
            if knobs.bytes_per_second:
                await _paced(conn, Response(200, data, "application/octet-stream"), knobs)
                return None
            return Response(200, data, "application/octet-stream")
        if knobs.cuts_left is not None:
            knobs.cuts_left -= 1
        self.download_stats.cut += 1
        if knobs.cut_cleanly:
            return Response(200, data[:cut], "application/octet-stream")
        head = Response(200, data, "application/octet-stream", close=True).encode(False)
        conn.write(head[: len(head) - len(data) + cut])
        await conn.drain()
        if knobs.hold_after_cut_s:
            # A device that stops sending but keeps the connection: only a timeout ends it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.wait_closed_by_peer(), knobs.hold_after_cut_s)
        conn.abort()
        return None


@dataclass
class DownloadKnobs:
    """How `/ISAPI/ContentMgmt/download` misbehaves; a test may change it at any time."""

    cut_after_bytes: int | None = None
    """Send only this many bytes of the body, then stop."""
    cuts_left: int | None = None
    """How many replies to cut (None: every one); counts down."""
    cut_cleanly: bool = False
    """The cut reply is a whole one of fewer bytes (its Content-Length says so): a device
    that stopped early and ended the reply as if complete; only the video shows it."""
    hold_after_cut_s: float = 0.0
    """Keep the connection open this long after the cut (a stalled device) before closing."""
    bytes_per_second: int | None = None
    """Send a reply at this rate (a slow device or link); None: as fast as it goes."""


async def _paced(conn: Connection, response: Response, knobs: DownloadKnobs) -> None:
    """Write `response` at ``knobs.bytes_per_second``, in tenths of a second, then close."""
    data = response.encode(False)
    step = max(1, (knobs.bytes_per_second or 0) // 10)
    for offset in range(0, len(data), step):
        conn.write(data[offset : offset + step])
        await conn.drain()
        await asyncio.sleep(0.1)
    conn.writer.close()


@dataclass
class DownloadStats:
    served: int = 0
    cut: int = 0
    spans: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    """(recording name, first second, last second) of every reply, in order."""


def _span(params: dict[str, list[str]], rec: Recording) -> tuple[datetime, datetime] | None:
    """The whole seconds the playbackURI's starttime/endtime ask for, inside `rec` (a
    missing or unreadable time stands for the recording's own)."""
    start, end = rec.start, rec.end
    with contextlib.suppress(KeyError, ValueError):
        start = max(start, parse_compact(params["starttime"][0]))
    with contextlib.suppress(KeyError, ValueError):
        end = min(end, parse_compact(params["endtime"][0]))
    return (start, end) if start <= end else None


def _tag_text(body: bytes, tag: str) -> str:
    match = re.search(rf"<{tag}>([^<]*)</{tag}>".encode(), body)
    return match[1].decode("utf-8", "replace").strip() if match else ""


def _search_fields(body: bytes) -> tuple[str, list[int], datetime, datetime, int, int] | None:
    """searchID, trackIDs, time span, position and page size of a CMSearchDescription."""
    try:
        tracks = [int(t) for t in re.findall(rb"<trackID>\s*(\d+)\s*</trackID>", body)]
        start = parse_wall(_tag_text(body, "startTime"))
        end = parse_wall(_tag_text(body, "endTime"))
        # "searchResultPostion" is the library's (and ISAPI's) spelling (part 2 a).
        position = int(
            _tag_text(body, "searchResultPostion") or _tag_text(body, "searchResultPosition") or 0
        )
        limit = int(_tag_text(body, "maxResults") or 40)
    except ValueError:
        return None
    return _tag_text(body, "searchID"), tracks or [101], start, end, max(0, position), max(1, limit)
