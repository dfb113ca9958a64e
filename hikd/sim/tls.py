"""A throw-away self-signed certificate for simulated HTTPS devices.

The vendor library does not verify the device certificate (byVerifyMode=0; it logs
"SSLTrans_CTX_Load_CA invalid path" and carries on, sdk-over-isapi.md part 1 §6), so
any certificate works. It is made with the openssl command: the `cryptography` package
is not a dependency of hikd.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

from hikd.errors import UserError


class SelfSignedCertificate:
    """A key and certificate in a private temporary directory, removed by `cleanup()`."""

    def __init__(self, common_name: str = "hikd-sim") -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise UserError("simulated HTTPS needs the `openssl` command: install openssl")
        self.directory = Path(tempfile.mkdtemp(prefix="hikd-sim-tls-"))
        self.key = self.directory / "key.pem"
        self.cert = self.directory / "cert.pem"
        command = [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-days", "3650", "-subj", f"/CN={common_name}",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(self.key), "-out", str(self.cert),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            self.cleanup()
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise UserError(f"could not make a self-signed certificate with openssl: {last}")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
