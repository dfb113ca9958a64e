"""structlog without asyncio, until something really uses asyncio.

structlog imports asyncio for its ``async`` logging methods, which hikd never calls, and
asyncio imports ssl, which loads OpenSSL: ~6 MB of resident memory in every process of `hikd
run` that has no other use for them (a device host; the supervisor without listen fronts or
MQTT over TLS). `import_structlog()` imports structlog with a stand-in for asyncio in
`sys.modules`, and takes the stand-in out again: structlog's modules keep it, and the first
attribute they read from it imports the real asyncio. Anyone else's ``import asyncio`` is
an ordinary import.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __getattr__(self, name: str) -> Any:  # only for what the stand-in lacks
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def import_structlog() -> None:
    """Import structlog, with asyncio deferred if nothing has imported asyncio yet."""
    if "structlog" in sys.modules or "asyncio" in sys.modules:
        return
    stand_in = _Deferred("asyncio")
    sys.modules["asyncio"] = stand_in
    try:
        import structlog  # noqa: F401 - imported here on purpose, with the stand-in
    finally:
        if sys.modules.get("asyncio") is stand_in:
            del sys.modules["asyncio"]
