"""What hikd polls through ISAPI pass-through: work status, alarm input states, snapshots,
the configuration file and the RTSP port.

Over an ISAPI login the structured calls refuse (GET_WORK_STATUS returns TRUE with status
189 and zeros, CaptureJPEGPicture fails with 189); hikd reads these URLs with
NET_DVR_STDXMLConfig instead, which returns the bodies unchanged (sdk-over-isapi.md part 2
c, f, g).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from typing import Protocol

from hikd.sim import documents
from hikd.sim.documents import elements
from hikd.sim.http import JSON, Connection, Request, Response
from hikd.sim.parts import DevicePart, RtspStarter
from hikd.sim.pictures import jpeg
from hikd.sim.recordings import RecordingStore
from hikd.sim.variants import json_body, restyle_xml

SNAPSHOT_PATH = r"/ISAPI/Streaming/channels/(\d+)/picture"
DISK_CODES = {"ok": 0, "unformatted": 1, "error": 2, "abnormal": 3, "sleeping": 5, "idle": 0}
"""ISAPI disk status -> the SDK's dwHardDiskStatic (0 normal, 1 unformatted, 2 error, ...)."""


class StatusHost(DevicePart, Protocol):
    """What the status documents need of the device: RTSP and what it records."""

    @property
    def rtsp(self) -> RtspStarter: ...

    @property
    def recordings(self) -> RecordingStore: ...


class DeviceStatus:
    """Live state a test can flip, and the endpoints that report it."""

    def __init__(self, device: StatusHost) -> None:
        self.device = device
        self.started = time.monotonic()
        self.offline_channels: set[int] = set()
        self.active_inputs: set[int] = set()
        self.active_outputs: set[int] = set()
        self._lock = threading.Lock()
        variants = device.config.variants
        device.route("GET", "/ISAPI/Security/adminAccesses", self._admin_accesses)
        device.route_static("GET", "/ISAPI/System/workingstatus", self._working_status)
        if variants.io_status == "inputs":
            device.route_static(
                "GET",
                "/ISAPI/System/IO/inputs/status",
                lambda r: Response(200, self.input_status()),
            )
        else:
            device.route_static(
                "GET", "/ISAPI/System/IO/status", lambda r: Response(200, self.io_status())
            )
        device.route_static(
            "GET",
            "/ISAPI/System/configurationData",
            lambda r: Response(200, self.configuration_data(), "application/octet-stream"),
        )
        device.route("GET", SNAPSHOT_PATH, self._snapshot)

    # ----- knobs ---------------------------------------------------------------------------

    def set_disk_status(self, disk_id: int, status: str) -> None:
        for disk in self.device.config.disks:
            if disk.id == disk_id:
                disk.status = status  # type: ignore[assignment]  # checked by the caller
                return
        raise KeyError(f"no disk {disk_id}")

    def set_input(self, port: int, active: bool) -> None:
        with self._lock:
            (self.active_inputs.add if active else self.active_inputs.discard)(port)

    def set_output(self, port: int, active: bool) -> None:
        with self._lock:
            (self.active_outputs.add if active else self.active_outputs.discard)(port)

    def set_channel_online(self, channel: int, online: bool) -> None:
        with self._lock:
            (self.offline_channels.discard if online else self.offline_channels.add)(channel)

    # ----- documents -----------------------------------------------------------------------

    async def _admin_accesses(self, request: Request, conn: Connection) -> Response:
        return Response(200, self.admin_accesses(await self.device.rtsp.ensure_started()))

    def admin_accesses(self, rtsp_port: int) -> bytes:
        """Only used by the library to find the RTSP port for downloads (part 2 b)."""
        dev = self.device
        protocols = [
            (1, "HTTPS" if dev.config.https else "HTTP", dev.port),
            (2, "DEV_MANAGE", 8000),
            (4, "RTSP", rtsp_port),
        ]
        inner = "".join(
            "<AdminAccessProtocol>\n"
            + elements(id=i, enabled=True, protocol=name, portNo=port)
            + "</AdminAccessProtocol>\n"
            for i, name, port in protocols
        )
        return documents.document("AdminAccessProtocolList", inner)

    def working_status(self) -> dict[str, object]:
        dev = self.device
        cfg = dev.config
        with self._lock:
            offline = set(self.offline_channels)
            inputs = set(self.active_inputs)
            outputs = set(self.active_outputs)
        channels = [
            {
                "chanNo": cfg.channel_id(ch),
                "enable": 1,
                "online": 0 if ch in offline else 1,
                "record": 1 if dev.recordings.is_recording(ch) else 0,
                "signal": 1 if ch in offline else 0,
                "linkNum": 0,
                "bitRate": 0 if ch in offline else 2048,
            }
            for ch in range(1, cfg.channel_count + 1)
        ]
        disks = [
            {
                "hdNo": d.id,
                "status": DISK_CODES.get(d.status, 2),
                "volume": d.capacity_mb,
                "freeSpace": d.free_mb,
            }
            for d in cfg.disks
        ]
        io = [
            {"ioPortNo": i, "ioType": "input", "ioState": 1 if i in inputs else 0}
            for i in range(1, cfg.alarm_inputs + 1)
        ] + [
            {"ioPortNo": i, "ioType": "output", "ioState": 1 if i in outputs else 0}
            for i in range(1, cfg.alarm_outputs + 1)
        ]
        bad_disk = any(d.status not in ("ok", "idle", "sleeping") for d in cfg.disks)
        return {
            "WorkingStatus": {
                "devStatus": 1 if bad_disk else 0,
                "runTime": int(time.monotonic() - self.started),
                "ChanStatus": channels,
                "HDStatus": disks,
                "IOStatus": io,
            }
        }

    def _working_status(self, request: Request) -> Response:
        variants = self.device.config.variants
        if request.query.get("format") == "json" and variants.working_status == "json":
            return Response(200, json_body(self.working_status(), variants), JSON)
        return Response(200, restyle_xml(self._working_status_xml(), variants))

    def _working_status_xml(self) -> bytes:
        data = self.working_status()["WorkingStatus"]
        assert isinstance(data, dict)
        inner = elements(devStatus=data["devStatus"], runTime=data["runTime"])
        for key, entry in (
            ("ChanStatus", "ChanStatus"),
            ("HDStatus", "HDStatus"),
            ("IOStatus", "IOStatus"),
        ):
            for item in data[key]:
                inner += f"<{entry}>\n" + elements(**item) + f"</{entry}>\n"
        return documents.document("WorkingStatus", inner)

    def input_status(self) -> bytes:
        """/ISAPI/System/IO/inputs/status: the alarm inputs."""
        with self._lock:
            inputs = set(self.active_inputs)
        count = self.device.config.alarm_inputs
        ports = "".join(self._port("input", i, i in inputs) for i in range(1, count + 1))
        return restyle_xml(
            documents.document("IOPortStatusList", ports), self.device.config.variants
        )

    def io_status(self) -> bytes:
        """/ISAPI/System/IO/status: inputs and outputs in one list."""
        with self._lock:
            inputs, outputs = set(self.active_inputs), set(self.active_outputs)
        cfg = self.device.config
        ports = "".join(self._port("input", i, i in inputs) for i in range(1, cfg.alarm_inputs + 1))
        ports += "".join(
            self._port("output", i, i in outputs) for i in range(1, cfg.alarm_outputs + 1)
        )
        return restyle_xml(documents.document("IOPortStatusList", ports), cfg.variants)

    def _port(self, kind: str, number: int, active: bool) -> str:
        name: str = self.device.config.variants.io_port_id
        if kind == "output" and name in ("inputIOPortID", "inputPort"):
            name = name.replace("input", "output")  # outputIOPortID, outputPort
        fields = {name: number, "ioPortType": kind, "ioState": "active" if active else "inactive"}
        return f"<IOPortStatus>\n{elements(**fields)}</IOPortStatus>\n"

    def snapshot(self, channel: int) -> bytes:
        """The JPEG `GET /ISAPI/Streaming/channels/<ch>01/picture` returns, byte for byte."""
        return jpeg(self.device.name, channel)

    async def _snapshot(self, request: Request, conn: Connection) -> Response:
        match = re.fullmatch(SNAPSHOT_PATH, request.path)
        assert match is not None
        stream_id = int(match[1])
        channel = self.device.config.channel_of_id(stream_id // 100)
        if channel is None or stream_id % 100 == 0:
            return Response(404, documents.not_supported(request.path))
        return Response(200, self.snapshot(channel), "image/jpeg")

    def configuration_data(self) -> bytes:
        """The device's configuration file: opaque, deterministic per device."""
        cfg = self.device.config
        seed = hashlib.sha256(f"{cfg.serial_number}/{cfg.firmware_version}".encode()).digest()
        header = b"HIKD-SIM-CONFIG\x00" + cfg.serial_number.encode().ljust(48, b"\x00")
        body = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(2048))
        return header + body
