"""What a user's commands change on the simulated device: alarm outputs and detections.

* ``PUT /ISAPI/System/IO/outputs/<id>/trigger`` with ``<IOPortData><outputState>high|low``
  switches an output; the IO status documents and the working status show it, and
  ``GET /ISAPI/System/IO/outputs/<id>/status`` answers its state.
* Per channel (the device's id), the documents of motion detection
  (``/ISAPI/System/Video/inputs/channels/<id>/motionDetection``, and for an NVR's IP
  channel ``/ISAPI/ContentMgmt/InputProxy/channels/<id>/video/motionDetection``), line
  crossing (``/ISAPI/Smart/LineDetection/<id>``) and intrusion
  (``/ISAPI/Smart/FieldDetection/<id>``), each with fields hikd does not know and nested
  ``<enabled>`` elements of their own lines and regions. Whether each is on is the device's
  event set-up (`hikd.sim.linkage`, which `hikd doctor` reads). A PUT that lacks any element
  the device served (a rebuilt document) is answered 400 ``badXmlContent``, as real devices
  do (peers.md, 2026-12 update); one that keeps them is stored and served from then on. A
  path in ``device.unavailable`` answers 404 as on a device without that detection.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from typing import Protocol
from xml.etree.ElementTree import Element

from hikd.isapi_xml import key, named, parse
from hikd.sim import documents
from hikd.sim.documents import elements
from hikd.sim.http import Connection, Handler, Request, Response
from hikd.sim.linkage import DETECTIONS as DOCUMENTS
from hikd.sim.linkage import UNREACHABLE_DELAY_S, EventLinkage
from hikd.sim.parts import DevicePart
from hikd.sim.status import DeviceStatus
from hikd.sim.variants import restyle_xml

OUTPUT_TRIGGER = r"/ISAPI/System/IO/outputs/(\d+)/trigger"
OUTPUT_STATUS = r"/ISAPI/System/IO/outputs/(\d+)/status"
DETECTIONS = {"motion": "VMD", "line_crossing": "linedetection", "intrusion": "fielddetection"}
"""hikd's detection name -> the device's event type (`hikd.sim.linkage.DETECTIONS`)."""

_SCREEN = "<normalizedScreenSize>\n" + (
    elements(normalizedScreenWidth=1000, normalizedScreenHeight=1000) + "</normalizedScreenSize>\n"
)
_POINTS = (
    "<CoordinatesList>\n"
    + "".join(
        f"<Coordinates>\n{elements(positionX=x, positionY=y)}</Coordinates>\n"
        for x, y in ((100, 500), (900, 500))
    )
    + "</CoordinatesList>\n"
)


class ControlsHost(DevicePart, Protocol):
    @property
    def status(self) -> DeviceStatus: ...

    @property
    def linkage(self) -> EventLinkage: ...


def _shape(root: Element) -> Counter[tuple[str, ...]]:
    """Every element's path of local names: what a PUT must keep of what was served."""
    found: Counter[tuple[str, ...]] = Counter()

    def walk(element: Element, path: tuple[str, ...]) -> None:
        for child in element:
            here = (*path, key(child.tag))
            found[here] += 1
            walk(child, here)

    walk(root, (key(root.tag),))
    return found


def _own_enabled(root: Element) -> bool | None:
    for child in root:
        if key(child.tag) == "enabled":
            return (child.text or "").strip().lower() == "true"
    return None


class DeviceControls:
    """The outputs and detections a command switches; read them from any thread."""

    def __init__(self, device: ControlsHost) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._documents: dict[tuple[str, int], bytes] = {}
        self.output_commands: list[tuple[int, str]] = []
        """(output id, ``high``/``low``) of every trigger request, in order."""
        self.refused_puts = 0
        """Detection documents refused with 400 (rebuilt, not edited)."""
        device.route("PUT", OUTPUT_TRIGGER, self._trigger)
        device.route("GET", OUTPUT_STATUS, self._output_status)
        for detection, event_type in DETECTIONS.items():
            _prefix, _schedules, _root, analog_url, ip_url = DOCUMENTS[event_type]
            for url in dict.fromkeys((analog_url, ip_url)):
                device.route("GET", url.format(r"(\d+)"), self._getter(detection))
                device.route("PUT", url.format(r"(\d+)"), self._putter(detection))

    # ----- what tests read ------------------------------------------------------------------

    def output_on(self, output: int) -> bool:
        return output in self.device.status.active_outputs

    def detection_enabled(self, detection: str, channel: int) -> bool:
        """Whether `detection` (``motion``, ``line_crossing``, ``intrusion``) is on for the
        simulator's channel `channel`."""
        device_id = self.device.config.channel_id(channel)
        return self.device.linkage.detection(DETECTIONS[detection], device_id) is True

    def summary(self) -> dict[str, object]:
        """What ``hikd sim status`` shows: the outputs on, and per detection the channels
        where it is on."""
        channels = range(1, self.device.config.channel_count + 1)
        return {
            "outputs_on": sorted(self.device.status.active_outputs),
            "detections_on": {
                d: [c for c in channels if self.detection_enabled(d, c)] for d in DETECTIONS
            },
        }

    def document(self, detection: str, device_id: int) -> bytes | None:
        """The document the device serves now for `detection` on the channel it calls
        `device_id`: the last one put, while its ``<enabled>`` still says what the device's
        set-up says; None when the device has no such detection there."""
        on = self.device.linkage.detection(DETECTIONS[detection], device_id)
        if on is None:
            return None
        with self._lock:
            stored = self._documents.get((detection, device_id))
        root = parse(stored) if stored is not None else None
        if stored is not None and root is not None and _own_enabled(root) == on:
            return stored
        return self._initial(detection, device_id, on)

    # ----- outputs ------------------------------------------------------------------------

    async def _trigger(self, request: Request, conn: Connection) -> Response:
        output = self._output(request, OUTPUT_TRIGGER)
        if output is None:
            return Response(404, documents.not_supported(request.path))
        root = parse(request.body)
        states = (
            [] if root is None else [(e.text or "").strip() for e in named(root, "outputState")]
        )
        if root is None or key(root.tag) != "ioportdata" or states[:1] not in (["high"], ["low"]):
            return Response(400, _bad_xml(request.path))
        with self._lock:
            self.output_commands.append((output, states[0]))
        self.device.status.set_output(output, states[0] == "high")
        return Response(200, documents.response_status(request.path))

    async def _output_status(self, request: Request, conn: Connection) -> Response:
        output = self._output(request, OUTPUT_STATUS)
        if output is None:
            return Response(404, documents.not_supported(request.path))
        state = "active" if self.output_on(output) else "inactive"
        body = documents.document(
            "IOPortStatus", elements(ioPortID=output, ioPortType="output", ioState=state)
        )
        return Response(200, restyle_xml(body, self.device.config.variants))

    def _output(self, request: Request, pattern: str) -> int | None:
        match = re.fullmatch(pattern, request.path)
        output = int(match[1]) if match else 0
        return output if 1 <= output <= self.device.config.alarm_outputs else None

    # ----- detections ---------------------------------------------------------------------

    async def _device_id(self, request: Request) -> int:
        """The channel id a detection's URL names, once the device answers: an NVR asks
        the camera, and an unreachable one (`EventLinkage.unreachable`) keeps the request
        waiting until the client gives up."""
        match = re.search(r"/(\d+)(?:/|$)", request.path)
        device_id = int(match[1]) if match else 0
        if self.device.config.channel_of_id(device_id) in self.device.linkage.unreachable:
            await asyncio.sleep(UNREACHABLE_DELAY_S)
        return device_id

    def _getter(self, detection: str) -> Handler:
        async def get(request: Request, conn: Connection) -> Response:
            body = self.document(detection, await self._device_id(request))
            if body is None:
                return Response(404, documents.not_supported(request.path))
            return Response(200, body)

        return get

    def _putter(self, detection: str) -> Handler:
        async def put(request: Request, conn: Connection) -> Response:
            device_id = await self._device_id(request)
            body = self.document(detection, device_id)
            if body is None:
                return Response(404, documents.not_supported(request.path))
            served = parse(body)
            sent = parse(request.body)
            assert served is not None
            on = None if sent is None else _own_enabled(sent)
            if sent is None or key(sent.tag) != key(served.tag) or on is None:
                return Response(400, _bad_xml(request.path))
            if _shape(served) - _shape(sent):  # an element of the device's is missing
                with self._lock:
                    self.refused_puts += 1
                return Response(400, _bad_xml(request.path))
            with self._lock:
                self._documents[(detection, device_id)] = request.body
            self.device.linkage.set_detection(DETECTIONS[detection], device_id, on)
            return Response(200, documents.response_status(request.path))

        return put

    def _initial(self, detection: str, device_id: int, on: bool) -> bytes:
        """A device's document, each with its own lines or regions (nested ``<enabled>``
        elements of their own)."""
        root = DOCUMENTS[DETECTIONS[detection]][2]
        if detection == "motion":
            inner = elements(
                id=device_id,
                enabled=on,
                enableHighlight=False,
                samplingInterval=2,
                startTriggerTime=500,
                endTriggerTime=500,
                regionType="grid",
            )
            inner += "<Grid>\n" + elements(rowGranularity=18, columnGranularity=22) + "</Grid>\n"
            inner += (
                '<MotionDetectionLayout version="2.0">\n'
                + elements(sensitivityLevel=60)
                + "<layout>\n"
                + elements(gridMap="fffffcfffffcfffffcfffffcfffffcfffffc")
                + "</layout>\n</MotionDetectionLayout>\n"
            )
        elif detection == "line_crossing":
            inner = elements(id=device_id, enabled=on) + _SCREEN
            inner += '<LineItemList size="4">\n<LineItem>\n'
            inner += elements(id=1, enabled=True, sensitivityLevel=50, directionSensitivity="any")
            inner += _POINTS + "</LineItem>\n</LineItemList>\n"
        else:
            inner = elements(id=device_id, enabled=on, startTriggerTime=500) + _SCREEN
            inner += '<FieldDetectionRegionList size="4">\n<FieldDetectionRegion>\n'
            inner += elements(id=1, enabled=True, sensitivityLevel=50, timeThreshold=5)
            inner += "<RegionCoordinatesList>\n"
            inner += "".join(
                f"<RegionCoordinates>\n{elements(positionX=x, positionY=y)}</RegionCoordinates>\n"
                for x, y in ((100, 100), (900, 100), (900, 900))
            )
            inner += "</RegionCoordinatesList>\n</FieldDetectionRegion>\n"
            inner += "</FieldDetectionRegionList>\n"
        return restyle_xml(documents.document(root, inner), self.device.config.variants)


def _bad_xml(url: str) -> bytes:
    return documents.response_status(url, 6, "Invalid XML Content", "badXmlContent")
