"""Job kinds by name: what ``kind = "download"`` in a ``[[jobs]]`` table means.

A kind is registered as a class or as ``"module:Class"``, imported only when a job of
that kind is configured: a kind whose module is missing or broken only fails the jobs
that use it. Each recorder module may also call `register()` itself.

A job class has ``kind``, a pydantic ``Config`` and ``run(ctx)`` (`hikd.recorders.base`);
the scheduler builds it as ``JobClass(config)`` with its validated ``Config``.
"""

from __future__ import annotations

import importlib
import threading

from hikd.errors import UserError
from hikd.recorders.base import Job

_lock = threading.Lock()
_KINDS: dict[str, str | type[Job]] = {
    "download": "hikd.recorders.download:DownloadJob",
    "clips": "hikd.recorders.clips:ClipJob",
    "snapshot": "hikd.recorders.snapshot:SnapshotJob",
    "status": "hikd.recorders.status:StatusJob",
    "config_backup": "hikd.recorders.config_backup:ConfigBackupJob",
    "device_log": "hikd.recorders.device_log:DeviceLogJob",
    "device_backup": "hikd.recorders.device_backup:DeviceBackupJob",
}


class UnknownKind(UserError):
    """A job names a kind that is not registered or cannot be loaded."""


def register(kind: str, target: str | type[Job]) -> None:
    """Make `kind` mean `target` (a job class, or ``"package.module:Class"``)."""
    with _lock:
        _KINDS[kind] = target


def kinds() -> list[str]:
    with _lock:
        return sorted(_KINDS)


def job_class(kind: str) -> type[Job]:
    """The class of `kind`, importing it on first use. Raises `UnknownKind`."""
    with _lock:
        target = _KINDS.get(kind)
    if target is None:
        raise UnknownKind(f"unknown kind {kind!r}; known kinds: {', '.join(kinds())}")
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
            cls: type[Job] = getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownKind(
                f"kind {kind!r} is not available in this installation ({exc})"
            ) from None
        with _lock:
            _KINDS[kind] = cls
        return cls
    return target
