"""The simulator's real video: byte-exact downloads by time that join and decode, the same
frames over RTSP, and HTTP Digest next to session cookies."""

from __future__ import annotations

import base64
import http.client
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hikd.sim import SimDeviceConfig, Simulator, video
from hikd.sim.config import RecordingPlan
from tests.sim.test_recordings import RtspClient, digest
from tests.video import annex_b, decoded_frames

PASSWORD = "rec-pass"
END = datetime(2024, 5, 2, 0, 0, 0)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    plan = RecordingPlan(per_channel=3, segment_s=60, end=END, still_recording=False)
    s = Simulator([SimDeviceConfig(name="nvr", password=PASSWORD, recordings=plan)])
    try:
        yield s.start()
    finally:
        s.stop()


def digest_opener(port: int, password: str) -> urllib.request.OpenerDirector:
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, f"http://127.0.0.1:{port}/", "admin", password)
    return urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))


def download_request(uri: str) -> bytes:
    return f"<downloadRequest><playbackURI>{uri}</playbackURI></downloadRequest>".encode()


def test_http_digest_is_accepted_like_a_session_cookie(sim: Simulator) -> None:
    port = sim.devices[0].port
    info = f"http://127.0.0.1:{port}/ISAPI/System/deviceInfo"
    with digest_opener(port, PASSWORD).open(info) as r:
        assert r.status == 200 and b"<DeviceInfo" in r.read()
    with pytest.raises(urllib.error.HTTPError) as refused:
        digest_opener(port, "wrong").open(info)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"].startswith("Digest realm=")


def test_pieces_by_time_join_into_the_recording_and_decode(sim: Simulator, tmp_path: Path) -> None:
    dev = sim.devices[0]
    rec = dev.recording_list(1)[1]
    opener = digest_opener(dev.port, PASSWORD)
    url = f"http://127.0.0.1:{dev.port}/ISAPI/ContentMgmt/download"

    def fetch(start: datetime, end: datetime) -> bytes:
        uri = (
            f"rtsp://127.0.0.1/Streaming/tracks/101/?starttime={start:%Y%m%dT%H%M%S}Z"
            f"&amp;endtime={end:%Y%m%dT%H%M%S}Z&amp;name={rec.name}&amp;size={rec.size}"
        )
        request = urllib.request.Request(url, download_request(uri), method="GET")
        with opener.open(request) as r:
            return bytes(r.read())

    whole = fetch(rec.start, rec.end)
    assert len(whole) == rec.size and whole == dev.recording_bytes(rec.name)
    assert whole[:4] == b"IMKH" and whole[40:44] == b"\x00\x00\x01\xba"
    cuts = [rec.start, rec.start + timedelta(seconds=17), rec.start + timedelta(seconds=41)]
    ends = [c - timedelta(seconds=1) for c in cuts[1:]] + [rec.end]
    pieces = [fetch(s, e) for s, e in zip(cuts, ends, strict=True)]
    # Each piece is a file of its own (IMKH header first); without the later headers they
    # make the recording, byte for byte.
    assert all(p[:4] == b"IMKH" for p in pieces)
    assert pieces[0] + b"".join(p[40:] for p in pieces[1:]) == whole
    path = tmp_path / "whole.ps"
    path.write_bytes(whole)
    assert decoded_frames(path) == 60 * video.FPS
    piece = tmp_path / "piece.ps"
    piece.write_bytes(pieces[1])
    assert decoded_frames(piece) == 24 * video.FPS


def test_rtsp_serves_the_same_real_frames(sim: Simulator, tmp_path: Path) -> None:
    dev = sim.devices[0]
    client = RtspClient(dev.rtsp_port)
    url = (
        f"rtsp://127.0.0.1:{dev.rtsp_port}/ISAPI/Streaming/tracks/101/"
        "?starttime=20240501T000000Z&endtime=20240501T000019Z"
    )
    try:
        _, headers, _ = client.request("DESCRIBE", url, {"Accept": "application/sdp"})
        params = dict(re.findall(r'(\w+)="([^"]*)"', headers["www-authenticate"]))

        def auth(method: str, target: str) -> dict[str, str]:
            return {"Authorization": digest(method, target, params["realm"], params["nonce"])}

        status, _, _ = client.request("DESCRIBE", url, auth("DESCRIBE", url))
        assert status == "RTSP/1.0 200 OK"
        setup = f"{url}/trackID=1"
        transport = {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
        _, headers, _ = client.request("SETUP", setup, {**transport, **auth("SETUP", setup)})
        session = {"Session": headers["session"].split(";")[0]}
        assert client.request("PLAY", url, {**session, **auth("PLAY", url)})[0].endswith("200 OK")
        packets: list[bytes] = []
        while sum(1 for p in packets if p[1] & 0x80) < 20 * video.FPS:  # marker: frame end
            more = client.rtp(until_bytes=1)
            assert more, "the stream ended early"
            packets += more
    finally:
        client.close()
    assert dev.rtsp.stats.frames_sent == 20 * video.FPS
    stream = tmp_path / "stream.h264"
    stream.write_bytes(annex_b(packets))
    assert decoded_frames(stream) == 20 * video.FPS


def test_a_cut_download_sends_part_of_the_file(sim: Simulator) -> None:
    dev = sim.devices[0]
    rec = dev.recording_list(1)[0]
    dev.recordings.download_knobs.cut_after_bytes = 10_000
    dev.recordings.download_knobs.cuts_left = 1
    body = download_request(f"rtsp://x/Streaming/tracks/101/?name={rec.name}")
    for expect_cut in (True, False):
        conn = http.client.HTTPConnection("127.0.0.1", dev.port, timeout=10)
        try:
            conn.putrequest("GET", "/ISAPI/ContentMgmt/download")
            conn.putheader("Authorization", "Basic " + _basic(PASSWORD))
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            if expect_cut:
                with pytest.raises(http.client.IncompleteRead) as cut:
                    response.read()
                assert len(cut.value.partial) == 10_000
            else:
                assert response.read() == dev.recording_bytes(rec.name)
        finally:
            conn.close()
    assert dev.recordings.download_stats.cut == 1


def _basic(password: str) -> str:
    return base64.b64encode(f"admin:{password}".encode()).decode()
