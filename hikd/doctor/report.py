"""What a doctor run finds: checks, the changes it would make, one report per device."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warning", "problem"]
ORDER: dict[Status, int] = {"ok": 0, "warning": 1, "problem": 2}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    """What was checked, in the user's words ("login", "motion linkage", ...)."""
    status: Status
    detail: str
    """What hikd found."""
    remedy: str = ""
    """What to change, when it is not ok."""
    where: str = ""
    """Where in the device's web UI (a menu path), or in hikd's configuration."""


@dataclass(frozen=True, slots=True)
class Change:
    """One write `--fix` makes on the device: the request and what it changes."""

    summary: str
    method: str
    url: str
    body: bytes
    """The device's own document with the change made in place."""
    added: str
    """The exact change: the XML added or the values set."""
    applied: bool = False
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "request": f"{self.method} {self.url}",
            "change": self.added,
            "applied": self.applied,
            "error": self.error,
        }


@dataclass
class DeviceReport:
    device: str
    address: str
    checks: list[Check] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    backup: str = ""
    """Where the device's configuration was saved before changes were applied."""

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    @property
    def status(self) -> Status:
        worst: Status = "ok"
        for check in self.checks:
            if ORDER[check.status] > ORDER[worst]:
                worst = check.status
        for change in self.changes:
            if change.error:
                worst = "problem"
        return worst

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "address": self.address,
            "status": self.status,
            "checks": [asdict(c) for c in self.checks],
            "changes": [c.to_dict() for c in self.changes],
            "backup": self.backup,
        }
