"""Configuration backups (kind ``config_backup``): the device's configuration file, kept
only when it changed.

Each run exports the file (`hikd.devices.capabilities.config_export`: GetConfigFile_V30 on private
sessions, ``/ISAPI/System/configurationData`` on ISAPI ones) and compares its SHA-256 with
the last stored export's (state database). A new one is written as::

    <output>/<device>/<UTC time>.bin        e.g. 20240501T100000.123456Z.bin

through a temporary name, and announced with a file event (type ``config_backup``,
attributes ``sha256``, ``size``, ``path``). Retention keeps the newest ``keep`` files and
drops those older than ``max_age_days``; the newest export is never deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field

from hikd.devices.capabilities.config_export import export_configuration
from hikd.events import Event
from hikd.files import write_atomically
from hikd.jobs.base import Job, JobContext, JobResult
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

log = structlog.get_logger("hikd.recorders.config_backup")

SUFFIX = ".bin"


class ConfigBackupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keep: Annotated[int, Field(ge=1)] | None = 30
    """Exports kept per device (newest first); None: no limit."""
    max_age_days: Annotated[float, Field(gt=0)] | None = None
    """Exports older than this are deleted (the newest one always stays)."""


def store_export(folder: Path, data: bytes, when: datetime) -> Path:
    """Write ``data`` as ``<UTC time>.bin`` in ``folder`` through a temporary name."""
    folder.mkdir(parents=True, exist_ok=True)
    # Microseconds: two exports within a second still sort in the order they were taken.
    stem = when.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = folder / f"{stem}{SUFFIX}"
    n = 1
    while path.exists():
        path = folder / f"{stem}-{n}{SUFFIX}"
        n += 1
    write_atomically(path, data, folder / f".{path.name}.part")
    return path


def apply_config_retention(
    folder: Path, keep: int | None, max_age_days: float | None, now: float | None = None
) -> list[Path]:
    """Delete old exports in ``folder``; returns what was deleted. Names sort by time."""
    exports = sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file())
    if not exports:
        return []
    newest = exports[-1]
    doomed: list[Path] = []
    if keep is not None and len(exports) > keep:
        doomed.extend(exports[: len(exports) - keep])
    if max_age_days is not None:
        limit = (time.time() if now is None else now) - max_age_days * 86_400
        for path in exports:
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < limit and path not in doomed:
                    doomed.append(path)
    removed = []
    for path in doomed:
        if path == newest:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


class ConfigBackupJob(Job):
    """Kind ``config_backup``: store the configuration file when it changed."""

    kind: ClassVar[str] = "config_backup"
    Config: ClassVar[type[BaseModel]] = ConfigBackupConfig

    def __init__(self, config: BaseModel) -> None:
        assert isinstance(config, ConfigBackupConfig)
        self.config = config

    def run(self, ctx: JobContext) -> JobResult:
        session = ctx.session
        if ctx.output_dir is None:
            return JobResult(False, "no output folder configured")
        folder = Path(ctx.output_dir) / session.name
        try:
            data = export_configuration(session)
        except SdkError as exc:
            log.warning("configuration export failed", device=session.name, error=str(exc))
            return JobResult(False, f"configuration export failed: {exc}")
        digest = hashlib.sha256(data).hexdigest()
        key = f"{session.name}/last"
        last = ctx.state.get(ctx.job, key, None) or {}
        if last.get("sha256") == digest and Path(last.get("path", "")).is_file():
            removed = apply_config_retention(folder, self.config.keep, self.config.max_age_days)
            return JobResult(
                True,
                "configuration unchanged",
                {"sha256": digest, "stored": False, "removed": len(removed)},
            )
        path = store_export(folder, data, datetime.now(UTC))
        ctx.state.put(ctx.job, key, {"sha256": digest, "path": str(path), "size": len(data)})
        ctx.publish(_file_event(session, path, digest, len(data)))
        removed = apply_config_retention(folder, self.config.keep, self.config.max_age_days)
        log.info("configuration stored", device=session.name, path=str(path), size=len(data))
        return JobResult(
            True,
            f"configuration stored ({len(data)} bytes)",
            {"sha256": digest, "stored": True, "path": str(path), "removed": len(removed)},
        )


def _file_event(session: DeviceSession, path: Path, digest: str, size: int) -> Event:
    return Event(
        kind="file",
        type="config_backup",
        state="pulse",
        device=session.device,
        attributes={"sha256": digest, "size": size, "path": str(path)},
        files=(str(path),),
    )
