"""Certificates made at test time with `openssl` (Debian's package; `make test` installs it
when missing): a CA and a server certificate it signs, for TLS tests on loopback."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_NAMES = "subjectAltName=IP:127.0.0.1,DNS:localhost"


@dataclass(frozen=True)
class ServerCertificate:
    ca: Path
    """The CA's certificate: what a client trusts (mqtt `ca_file`)."""
    certificate: Path
    key: Path


def _openssl(*args: str | Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail("openssl is not installed: apt-get install openssl, or run `make test`")
    subprocess.run([binary, *map(str, args)], check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str = "hikd test CA") -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "ca.pem", folder / "ca.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_server_certificate(
    folder: Path, names: str = SERVER_NAMES, ca: tuple[Path, Path] | None = None
) -> ServerCertificate:
    """A server certificate for `names` (loopback by default), signed by a new CA or `ca`."""
    ca_cert, ca_key = ca or make_ca(folder / "ca")
    key, request, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    extensions = folder / "server.ext"
    extensions.write_text(
        f"{names}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", request, "-subj", "/CN=hikd test broker",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", extensions,
    )  # fmt: skip
    return ServerCertificate(ca_cert, cert, key)
