"""The simulator's ISAPI session login, driven by a plain HTTP client.

The client side of the login hash is written out here on purpose (not imported from
hikd.sim), so that a mistake in the simulator's hash cannot hide behind the same mistake
in the test. The formula is libhcnetsdk's (sdk-over-isapi.md part 1 §1).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hikd.sim import SimDeviceConfig, Simulator

PASSWORD = "s3cret-pass"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fields(body: str) -> dict[str, str]:
    return dict(re.findall(r"<(\w+)>([^<]*)</\1>", body))


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]


class IsapiClient:
    """What the vendor library does over HTTP, one keep-alive connection."""

    def __init__(self, port: int, *, https: bool = False) -> None:
        if https:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", port, timeout=10, context=context
            )
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.cookie = ""

    def request(self, method: str, url: str, body: str | None = None) -> Reply:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        self.conn.request(method, url, body=body, headers=headers)
        resp = self.conn.getresponse()
        text = resp.read().decode()
        return Reply(resp.status, text, {k.lower(): v for k, v in resp.getheaders()})

    def login(self, user: str, password: str, random: str = "12345678") -> tuple[Reply, Reply]:
        cap = self.request(
            "GET", f"/ISAPI/Security/sessionLogin/capabilities?username={user}&random={random}"
        )
        c = fields(cap.body)
        h = sha(user + c["salt"] + password) if c.get("isIrreversible") == "true" else sha(password)
        h += c["challenge"]
        for _ in range(int(c["iterations"]) - 1):
            h = sha(h)
        version = (
            f"<sessionIDVersion>{c['sessionIDVersion']}</sessionIDVersion>\r\n"
            if ("sessionIDVersion" in c)
            else ""
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\r\n'
            '<SessionLogin version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\r\n'
            f"<userName>{user}</userName>\r\n<password>{h}</password>\r\n"
            f"<sessionID>{c['sessionID']}</sessionID>\r\n"
            f"<isSessionIDValidLongTerm>true</isSessionIDValidLongTerm>\r\n{version}"
            "</SessionLogin>\r\n"
        )
        reply = self.request("POST", "/ISAPI/Security/sessionLogin", body)
        if reply.status == 200:
            self.cookie = f"WebSession={fields(reply.body)['sessionID']};"
        return cap, reply

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(
        [
            SimDeviceConfig(name="nvr", password=PASSWORD, analog_channels=2, ip_channels=8),
            SimDeviceConfig(name="locky", password=PASSWORD, lock_seconds=1),
            SimDeviceConfig(name="v2", password=PASSWORD, session_id_version="2"),
        ]
    )
    try:
        yield simulator.start()
    finally:
        simulator.stop()


@pytest.fixture
def client(sim: Simulator) -> Iterator[IsapiClient]:
    c = IsapiClient(sim.devices[0].port)
    try:
        yield c
    finally:
        c.close()


def test_capabilities_offer_a_64_hex_salt_and_a_32_hex_challenge(client: IsapiClient) -> None:
    cap = client.request("GET", "/ISAPI/Security/sessionLogin/capabilities?username=admin&random=1")
    c = fields(cap.body)
    assert cap.status == 200
    assert re.fullmatch(r"[0-9a-f]{64}", c["salt"])
    assert re.fullmatch(r"[0-9a-f]{32}", c["challenge"])
    assert c["isIrreversible"] == "true"
    assert int(c["iterations"]) >= 1
    assert "sessionIDVersion" not in c


def test_right_password_logs_in_and_the_cookie_opens_the_device(
    sim: Simulator, client: IsapiClient
) -> None:
    _, reply = client.login("admin", PASSWORD)
    assert reply.status == 200
    assert fields(reply.body)["statusValue"] == "200"
    info = client.request("GET", "/ISAPI/System/deviceInfo")
    assert info.status == 200
    assert fields(info.body)["serialNumber"] == sim.devices[0].config.serial_number
    assert 'xmlns="http://www.isapi.org/ver20/XMLSchema"' in info.body
    assert sim.devices[0].logins("admin") == 1
    assert sim.devices[0].bad_tries("admin") == 0


def test_login_sequence_documents_count_what_the_config_says(client: IsapiClient) -> None:
    client.login("admin", PASSWORD)
    counts = {
        "/ISAPI/System/IO/inputs": ("IOInputPort", 4),
        "/ISAPI/System/IO/outputs": ("IOOutputPort", 1),
        "/ISAPI/System/Video/inputs/channels": ("VideoInputChannel", 2),
        "/ISAPI/ContentMgmt/InputProxy/channels": ("InputProxyChannel", 8),
        "/ISAPI/ContentMgmt/ZeroVideo/channels": ("ZeroVideoChannel", 0),
        "/ISAPI/System/TwoWayAudio/channels": ("TwoWayAudioChannel", 1),
        "/ISAPI/ContentMgmt/Storage/hdd": ("hdd", 1),
    }
    for url, (element, expected) in counts.items():
        reply = client.request("GET", url)
        assert reply.status == 200, url
        assert len(re.findall(rf"<{element}[ >]", reply.body)) == expected, url
    for url in (
        "/ISAPI/Security/capabilities?username=admin",
        "/SDK/language",
        "/ISAPI/System/time",
    ):
        assert client.request("GET", url).status == 200, url
    assert client.request("PUT", "/ISAPI/Security/sessionHeartbeat").status == 200


def test_wrong_password_is_401_with_the_tries_left(sim: Simulator, client: IsapiClient) -> None:
    for tries_left in (4, 3):
        _, reply = client.login("admin", "wrong")
        assert reply.status == 401
        f = fields(reply.body)
        assert f["lockStatus"] == "unlock"
        assert f["retryLoginTime"] == str(tries_left)
    assert sim.devices[0].bad_tries("admin") == 2
    assert not sim.devices[0].is_locked("admin")


def test_fifth_wrong_password_locks_the_user_even_against_the_right_one(sim: Simulator) -> None:
    dev = sim.devices[1]
    client = IsapiClient(dev.port)
    try:
        for _ in range(4):
            assert fields(client.login("admin", "wrong")[1].body)["lockStatus"] == "unlock"
        _, fifth = client.login("admin", "wrong")
        assert fifth.status == 401
        assert fields(fifth.body)["lockStatus"] == "lock"
        assert int(fields(fifth.body)["unlockTime"]) >= 1
        assert dev.is_locked("admin")
        _, right = client.login("admin", PASSWORD)
        assert right.status == 401
        assert fields(right.body)["lockStatus"] == "lock"
        assert dev.bad_tries("admin") == 5
        # lock_seconds=1: the lock ends by itself.
        deadline = time.monotonic() + 10
        while dev.is_locked("admin") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.login("admin", PASSWORD)[1].status == 200
    finally:
        client.close()


def test_unknown_or_missing_cookie_is_401(sim: Simulator, client: IsapiClient) -> None:
    assert client.request("GET", "/ISAPI/System/deviceInfo").status == 401
    client.cookie = "WebSession=" + "0" * 64 + ";"
    assert client.request("GET", "/ISAPI/System/deviceInfo").status == 401
    client.login("admin", PASSWORD)
    assert client.request("GET", "/ISAPI/System/deviceInfo").status == 200
    sim.devices[0].forget_sessions()
    assert client.request("GET", "/ISAPI/System/deviceInfo").status == 401


def test_logout_ends_the_session(client: IsapiClient) -> None:
    client.login("admin", PASSWORD)
    assert client.request("PUT", "/ISAPI/Security/sessionLogout").status == 200
    assert client.request("GET", "/ISAPI/System/deviceInfo").status == 401


def test_session_id_version_gives_the_hmac_session_id_and_a_set_cookie(sim: Simulator) -> None:
    dev = sim.devices[2]
    client = IsapiClient(dev.port)
    try:
        cap, reply = client.login("admin", PASSWORD, random="87654321")
        c = fields(cap.body)
        assert c["sessionIDVersion"] == "2"
        key = sha("admin" + c["iterations"] + c["challenge"]).encode()
        msg = b"GET/ISAPI/Security/sessionLogin/capabilities" + b"admin" + b"87654321"
        assert c["sessionID"] == hmac.new(key, msg, hashlib.sha256).hexdigest()
        assert reply.status == 200
        name, _, value = reply.headers["set-cookie"].split(";")[0].partition("=")
        assert name.startswith("WebSession")
        # The library replays the Set-Cookie name verbatim in this mode.
        client.cookie = f"{name}={value};"
        assert client.request("GET", "/ISAPI/System/deviceInfo").status == 200
    finally:
        client.close()


def test_password_only_hash_when_capabilities_failed(client: IsapiClient) -> None:
    # What the library sends when the capabilities request got a 404 (part 1 §1).
    body = (
        f"<SessionLogin><userName>admin</userName><password>{sha(PASSWORD)}</password>"
        "<sessionID></sessionID></SessionLogin>"
    )
    reply = client.request("POST", "/ISAPI/Security/sessionLogin", body)
    assert reply.status == 200
    assert fields(reply.body)["sessionID"]


def _raw_reply(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    return sock.recv(1 << 20)


def test_each_reply_arrives_in_one_piece_on_a_keep_alive_connection(sim: Simulator) -> None:
    # One send() of a small reply is one loopback segment, so the client's first recv
    # holds all of it; a reply written as headers then body would often arrive split.
    # That split is what costs 44 ms per request with the library's delayed ACK.
    with socket.create_connection(("127.0.0.1", sim.devices[0].port), timeout=5) as sock:
        for _ in range(20):
            data = _raw_reply(
                sock,
                b"GET /ISAPI/Security/sessionLogin/capabilities?username=admin&random=1"
                b" HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n",
            )
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head)[1])  # type: ignore[index]
            assert len(body) == length
            assert b"Connection: keep-alive" in head


def test_non_http_bytes_are_closed_at_once(sim: Simulator) -> None:
    # The private-protocol login probe of adaptive login (byLoginMode=2) starts like this.
    probe = bytes.fromhex("000000e05a000000") + b"admin".ljust(216, b"\0")
    with socket.create_connection(("127.0.0.1", sim.devices[0].port), timeout=3) as sock:
        sock.sendall(probe)
        assert sock.recv(100) == b""  # closed, not a 3 s timeout


def test_https_login(tmp_path: object) -> None:
    with Simulator([SimDeviceConfig(name="tls", https=True, password=PASSWORD)]) as sim:
        client = IsapiClient(sim.devices[0].port, https=True)
        try:
            assert client.login("admin", PASSWORD)[1].status == 200
            assert client.request("GET", "/ISAPI/System/deviceInfo").status == 200
        finally:
            client.close()


def test_restart_on_the_same_port_forgets_sessions() -> None:
    first = Simulator([SimDeviceConfig(password=PASSWORD)]).start()
    try:
        port = first.devices[0].port
        client = IsapiClient(port)
        client.login("admin", PASSWORD)
        assert client.request("GET", "/ISAPI/System/deviceInfo").status == 200
        client.close()
    finally:
        first.stop()
    first.stop()  # idempotent
    with Simulator([SimDeviceConfig(password=PASSWORD, port=port)]) as second:
        assert second.devices[0].port == port
        again = IsapiClient(port)
        again.cookie = client.cookie
        try:
            assert again.request("GET", "/ISAPI/System/deviceInfo").status == 401
            assert again.login("admin", PASSWORD)[1].status == 200
        finally:
            again.close()


def test_many_devices_get_their_own_ports_and_identities() -> None:
    with Simulator.many(16, SimDeviceConfig(name="cam", device_type="IPCamera")) as sim:
        ports = {d.port for d in sim.devices}
        serials = {d.config.serial_number for d in sim.devices}
        macs = {d.config.mac_address for d in sim.devices}
        assert len(ports) == len(serials) == len(macs) == 16
        assert sim.devices[3].name == "cam-04"
