"""Session login and the documents the library reads right after it.

The login sequence and every reply shape follow sdk-over-isapi.md part 1 §1 and part 2 §1:
capabilities (salt, challenge, optional HMAC sessionID), the hashed-password POST, then
the cookie on every request; the system documents fill NET_DVR_DEVICEINFO_V40.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Protocol

from hikd.sim import documents
from hikd.sim.auth import CAPABILITIES_PATH
from hikd.sim.devicelog import DeviceLog
from hikd.sim.http import Connection, Request, Response
from hikd.sim.parts import DevicePart
from hikd.sim.variants import restyle_xml

LOGIN_PATH = "/ISAPI/Security/sessionLogin"


class LoginHost(DevicePart, Protocol):
    """What the login endpoints need of the device: its log of logins."""

    @property
    def log(self) -> DeviceLog: ...


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_fields(body: bytes) -> dict[str, str]:
    """Leaf elements of an XML body by local name (namespaces dropped); {} if not XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return {}
    return {_local_name(el.tag): (el.text or "").strip() for el in root.iter() if len(el) == 0}


def session_cookie(header: str) -> str:
    """The session id from `Cookie: WebSession=<id>;` or `WebSession_<port>=<id>;`.

    Without <sessionIDVersion> the library sends `WebSession=<id from the login body>`;
    with it, it replays our Set-Cookie name verbatim (part 2 §1, cookie behaviour).
    """
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name.startswith("WebSession"):
            return value.strip()
    return ""


def add_login_endpoints(device: LoginHost) -> None:
    accounts = device.accounts

    async def capabilities(request: Request, conn: Connection) -> Response:
        username = request.query.get("username", "")
        random = request.query.get("random", "")
        session_id, pending = accounts.new_challenge(username, random)
        body = documents.capabilities_reply(
            session_id,
            pending.challenge,
            accounts.iterations,
            pending.salt,
            session_id_version=accounts.session_id_version,
            salt2=pending.salt2,
        )
        return Response(200, body)

    async def login(request: Request, conn: Connection) -> Response:
        fields = xml_fields(request.body)
        user = fields.get("userName", "")
        result = accounts.login(user, fields.get("password", ""), fields.get("sessionID", ""))
        if not result.ok:
            device.log.add("Exception", "illegalAccess", user=user, ip=request.peer)
            # HTTP 401 is what makes the library report error 1, or 153 with lockStatus
            # lock; a 200 carrying the same body would give error 11 (part 1 §1).
            body = documents.user_check(
                locked=result.locked,
                unlock_in_s=result.unlock_in_s,
                retries_left=result.retries_left,
            )
            return Response(401, body)
        device.log.add("Operation", "remoteLogin", user=user, ip=request.peer)
        # With <sessionIDVersion> the library insists on a Set-Cookie (error 17 without
        # it) and replays it verbatim; without, it ignores it (part 2 §1).
        cookie = f"WebSession_{device.port}={result.session_id}; path=/; HttpOnly"
        body = documents.login_ok(result.session_id)
        return Response(200, body, headers=[("Set-Cookie", cookie)])

    async def heartbeat(request: Request, conn: Connection) -> Response:
        # RemoteControl(NET_DVR_CHECK_USER_STATUS) sends this (part 2 c).
        return Response(200, documents.response_status(request.path))

    async def logout(request: Request, conn: Connection) -> Response:
        session = session_cookie(request.header("cookie"))
        user = accounts.session_user(session) or ""
        if accounts.logout(session):
            device.log.add("Operation", "remoteLogout", user=user, ip=request.peer)
        return Response(200, documents.response_status(request.path))

    device.route("GET", CAPABILITIES_PATH, capabilities, public=True)
    device.route("POST", LOGIN_PATH, login, public=True)
    device.route("PUT", "/ISAPI/Security/sessionHeartbeat", heartbeat)
    device.route("PUT", "/ISAPI/Security/sessionLogout", logout)


def add_system_documents(device: LoginHost) -> None:
    """Requests 3-12 of the login sequence, and /ISAPI/System/time. All optional for the
    library: each only fills some DEVICEINFO_V40 fields (part 1 §1)."""
    cfg = device.config
    variants = cfg.variants
    camera = cfg.device_type in ("IPCamera", "IPDome")
    static: dict[str, Callable[[], bytes]] = {
        "/ISAPI/Security/capabilities": lambda: documents.security_capabilities(cfg),
        "/SDK/language": documents.language,
        "/ISAPI/System/deviceInfo": lambda: restyle_xml(documents.device_info(cfg), variants),
        "/ISAPI/System/IO/inputs": lambda: documents.io_inputs(cfg),
        "/ISAPI/System/IO/outputs": lambda: documents.io_outputs(cfg),
        "/ISAPI/System/Video/inputs/channels": lambda: restyle_xml(
            documents.video_inputs(cfg), variants
        ),
        "/ISAPI/System/TwoWayAudio/channels": lambda: documents.audio_channels(cfg),
        "/ISAPI/ContentMgmt/Storage/hdd": lambda: restyle_xml(documents.hdd_list(cfg), variants),
        "/ISAPI/System/time": lambda: documents.system_time(cfg),
    }
    # Cameras without IP or zero channels answer notSupport there, as real ones do.
    if not camera or cfg.ip_channels:
        static["/ISAPI/ContentMgmt/InputProxy/channels"] = lambda: restyle_xml(
            documents.input_proxy_channels(cfg), variants
        )
    if not camera or cfg.zero_channels:
        static["/ISAPI/ContentMgmt/ZeroVideo/channels"] = lambda: documents.zero_channels(cfg)
    for path, make in static.items():
        device.route_static("GET", path, _document_reply(make))


def _document_reply(make: Callable[[], bytes]) -> Callable[[Request], Response]:
    def reply(request: Request) -> Response:
        return Response(200, make())

    return reply
