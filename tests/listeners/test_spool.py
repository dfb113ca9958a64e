"""The listen spool (`hikd.listeners.spool`) on its own: what is added and not done is read
back after the process ends, whatever its end; `tests/hosts/test_spool_crash.py` kills the
whole daemon with pushes kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hikd.listeners import spool as spool_module
from hikd.listeners.relayed import Relayed
from hikd.listeners.spool import Spool


def request(body: bytes, sender: str = "192.0.2.7", tries: int = 1) -> Relayed:
    return Relayed(sender, "/alarm", "application/xml", body, tries, 0.0)


def test_what_is_not_done_is_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "listen-7200.spool"
    spool = Spool(path)
    assert spool.open() == []
    ids = [spool.add(request(b"<a>%d</a>" % n, tries=n % 3 + 1)) for n in range(5)]
    asyncio.run(spool.durable())
    spool.done([ids[1], ids[3]])
    # No close: the process is gone (SIGKILL) with the file as it is.
    again = Spool(path)
    found = again.open()
    assert [ident for ident, _ in found] == [ids[0], ids[2], ids[4]]
    assert [r.payload for _, r in found] == [b"<a>0</a>", b"<a>2</a>", b"<a>4</a>"]
    first = found[0][1]
    assert (first.sender, first.path, first.content_type, first.tries) == (
        "192.0.2.7",
        "/alarm",
        "application/xml",
        1,
    )
    # Read back, the file holds only what is kept; new ids go on after the old ones.
    assert again.add(request(b"new")) > ids[-1]
    again.close()
    assert [r.payload for _, r in Spool(path).open()] == [
        b"<a>0</a>",
        b"<a>2</a>",
        b"<a>4</a>",
        b"new",
    ]


def test_a_torn_record_at_the_end_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "listen-7200.spool"
    spool = Spool(path)
    spool.open()
    spool.add(request(b"whole"))
    spool.add(request(b"torn by the crash"))
    spool.close()
    path.write_bytes(path.read_bytes()[:-5])
    assert [r.payload for _, r in Spool(path).open()] == [b"whole"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # a flipped bit: the checksum leaves it out too
    path.write_bytes(bytes(data))
    assert Spool(path).open() == []


def test_the_file_is_rewritten_when_it_is_mostly_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 4096)
    path = tmp_path / "listen-7200.spool"
    spool = Spool(path)
    spool.open()
    kept = spool.add(request(b"kept"))

    async def many() -> None:
        for _ in range(100):
            spool.done([spool.add(request(b"x" * 100))])
            await spool.durable()

    asyncio.run(many())
    assert path.stat().st_size < 4096 + 200
    spool.close()
    assert [ident for ident, _ in Spool(path).open()] == [kept]
