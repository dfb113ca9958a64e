"""The simulator's own endpoints under `/hikd-sim/` on every device port.

They drive a running simulator from outside its process (`hikd sim trigger`, `hikd sim
scenario`, tests that run `python -m hikd.sim` as a subprocess). No login, but only
from the loopback address: anyone who can reach them can fake alarms.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from hikd.sim.alerts import SimAlert
from hikd.sim.config import PushTarget
from hikd.sim.http import JSON, Connection, Request, Response

if TYPE_CHECKING:
    from hikd.sim.device import SimDevice

PREFIX = "/hikd-sim"
JsonHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _json(status: int, data: dict[str, Any]) -> Response:
    return Response(status, json.dumps(data).encode(), JSON)


def _loopback(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _endpoint(handler: JsonHandler) -> Callable[[Request, Connection], Awaitable[Response]]:
    async def serve(request: Request, conn: Connection) -> Response:
        if not _loopback(request.peer):
            return _json(403, {"error": "the /hikd-sim/ endpoints answer only on loopback"})
        try:
            data = json.loads(request.body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            return _json(200, await handler(data))
        except (ValueError, TypeError, KeyError) as exc:
            return _json(400, {"error": str(exc)})

    return serve


def device_status(device: SimDevice) -> dict[str, Any]:
    user = device.config.username
    return {
        "name": device.name,
        "host": device.host,
        "port": device.port,
        "scheme": device.scheme,
        "serial": device.config.serial_number,
        "streams": device.stream_count,
        "sessions": device.accounts.session_count,
        "last_seq": device.alarms.last_seq,
        "logins": device.logins(user),
        "bad_tries": device.bad_tries(user),
        "locked": device.is_locked(user),
        **device.controls.summary(),
    }


def add_device_endpoints(device: SimDevice) -> None:
    async def trigger(data: dict[str, Any]) -> dict[str, Any]:
        push = bool(data.pop("push", True))
        sent = device.alarms.send(SimAlert.from_dict(data), push=push)
        return {
            "seq": sent.seq,
            "sent_ns": sent.sent_ns,
            "streams": sent.streams,
            "pushes": sent.pushes,
        }

    async def status(data: dict[str, Any]) -> dict[str, Any]:
        return device_status(device)

    async def settings(data: dict[str, Any]) -> dict[str, Any]:
        """Flip state knobs: {"alert_stream_status": 404, "cookie_check": false, ...}."""
        done: list[str] = []
        for key, value in data.items():
            apply = _SETTINGS.get(key)
            if apply is None:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(sorted(_SETTINGS))}")
            apply(device, value)
            done.append(key)
        return {"applied": done, **device_status(device)}

    device.route("POST", f"{PREFIX}/trigger", _endpoint(trigger))
    device.route("GET", f"{PREFIX}/status", _endpoint(status))
    device.route("POST", f"{PREFIX}/set", _endpoint(settings))


def _set_stream_status(device: SimDevice, value: Any) -> None:
    device.alarms.stream_status = int(value)


def _set_cookie_check(device: SimDevice, value: Any) -> None:
    device.cookie_check = bool(value)


def _forget_sessions(device: SimDevice, value: Any) -> None:
    if value:
        device.forget_sessions()


def _close_streams(device: SimDevice, value: Any) -> None:
    if value:
        device.alarms.close_streams()


def _unlock(device: SimDevice, value: Any) -> None:
    device.unlock(str(value) if isinstance(value, str) else device.config.username)


def _password(device: SimDevice, value: Any) -> None:
    device.set_password(str(value))


def _heartbeat_s(device: SimDevice, value: Any) -> None:
    """A period in seconds, or 0/null: the device stops sending heartbeats."""
    device.alarms.heartbeat_s = float(value) if value else None


def _malformed_part(device: SimDevice, value: Any) -> None:
    device.alarms.send_malformed(str(value))


def _per_item(value: Any) -> list[tuple[int, Any]]:
    """{"1": x, "2": y} -> [(1, x), (2, y)]: JSON keys are strings."""
    if not isinstance(value, dict):
        raise ValueError('expected an object like {"1": ...}')
    return [(int(k), v) for k, v in value.items()]


def _disk_status(device: SimDevice, value: Any) -> None:
    for disk, status in _per_item(value):
        device.set_disk_status(disk, status)


def _recording(device: SimDevice, value: Any) -> None:
    for channel, on in _per_item(value):
        device.set_recording(channel, bool(on))


def _inputs(device: SimDevice, value: Any) -> None:
    for port, active in _per_item(value):
        device.set_input(port, bool(active))


def _online(device: SimDevice, value: Any) -> None:
    for channel, online in _per_item(value):
        device.set_channel_online(channel, bool(online))


def _events(device: SimDevice, value: Any) -> None:
    """{"notify_center": false, "schedule": "empty", ...}: `hikd.sim.linkage_config`."""
    if not isinstance(value, dict):
        raise ValueError('expected an object like {"notify_center": false}')
    device.linkage.set_up(**value)


def _rtsp_cut(device: SimDevice, value: Any) -> None:
    device.rtsp.knobs.cut_after_bytes = None if value is None else int(value)


def _rtsp_rate(device: SimDevice, value: Any) -> None:
    device.rtsp.knobs.bytes_per_second = None if value is None else int(value)


def _rtsp_end(device: SimDevice, value: Any) -> None:
    device.rtsp.knobs.end_signal = bool(value)


_SETTINGS: dict[str, Callable[[SimDevice, Any], None]] = {
    "disk_status": _disk_status,
    "recording": _recording,
    "inputs": _inputs,
    "channel_online": _online,
    "events": _events,
    "rtsp_cut_after_bytes": _rtsp_cut,
    "rtsp_bytes_per_second": _rtsp_rate,
    "rtsp_end_signal": _rtsp_end,
    "alert_stream_status": _set_stream_status,
    "cookie_check": _set_cookie_check,
    "forget_sessions": _forget_sessions,
    "close_streams": _close_streams,
    "unlock": _unlock,
    "password": _password,
    "heartbeat_s": _heartbeat_s,
    "malformed_part": _malformed_part,
}


class DeviceList(Protocol):
    """The simulator as its scenario endpoint sees it."""

    @property
    def devices(self) -> Sequence[SimDevice]: ...


def add_simulator_endpoints(device: SimDevice, simulator: DeviceList) -> None:
    """`POST /hikd-sim/scenario` on `device` runs a scenario over the whole simulator."""

    async def scenario(data: dict[str, Any]) -> dict[str, Any]:
        from hikd.sim.scenario import run_scenario

        types = data.get("types", ["VMD"])
        if isinstance(types, str):
            types = [t for t in types.split(",") if t]
        count = data.get("devices")
        devices = simulator.devices if count is None else simulator.devices[: int(count)]
        push = data.get("push_to")
        result = await run_scenario(
            devices,
            float(data.get("rate", 100)),
            [str(t) for t in types],
            float(data.get("duration", 1)),
            push_to=PushTarget.model_validate(push) if push else None,
            pictures=int(data.get("pictures", 0)),
            fmt=data.get("fmt", "xml"),
        )
        return result.to_dict()

    async def devices(data: dict[str, Any]) -> dict[str, Any]:
        return {"devices": [device_status(d) for d in simulator.devices]}

    device.route("POST", f"{PREFIX}/scenario", _endpoint(scenario))
    device.route("GET", f"{PREFIX}/devices", _endpoint(devices))
