"""structlog without asyncio until asyncio is used (`hikd.lazy_imports`), in a fresh
interpreter: importing hikd.hosts (where a device host process starts) leaves asyncio and
ssl out; structlog's async logging and anyone's ``import asyncio`` get the real module."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import hikd.hosts
import structlog, structlog.stdlib
assert "asyncio" not in sys.modules and "ssl" not in sys.modules, "asyncio loaded at import"
structlog.configure(logger_factory=structlog.stdlib.LoggerFactory(),
                    wrapper_class=structlog.stdlib.BoundLogger)
import logging
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
import asyncio
assert type(asyncio) is type(sys), asyncio
async def main():
    await structlog.stdlib.get_logger("t").ainfo("async log line")
    return "done"
print(asyncio.run(main()))
assert structlog.stdlib.asyncio.get_running_loop is asyncio.get_running_loop
"""


def test_structlog_gets_asyncio_only_when_it_uses_it() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "async log line" in out.stdout
    assert out.stdout.strip().endswith("done")
