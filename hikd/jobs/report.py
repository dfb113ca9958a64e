"""The jobs as `hikd status` shows them when the daemon's scheduler is in another process
(device hosts): next runs computed from each job's trigger, last results from the state
database, as ``hikd jobs`` reads them."""

from __future__ import annotations

from pathlib import Path

from hikd.config import Config
from hikd.jobs.config import parse_jobs
from hikd.jobs.scheduler import JobRow, describe_jobs
from hikd.state import FILE_NAME, StateStore


def configured_jobs(config: Config) -> list[JobRow]:
    if not config.jobs:
        return []
    specs = parse_jobs(config.jobs, [d.name for d in config.devices])
    db = Path(config.daemon.state_dir) / FILE_NAME
    state = StateStore(db, read_only=True) if db.is_file() else None
    try:
        return describe_jobs(specs, state)
    finally:
        if state is not None:
            state.close()
