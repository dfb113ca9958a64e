"""What the device said the last time it refused the doctor's login: never spend the last
try on a password the device already refused.

A refused login tells how many tries the device allows before it locks the user
(`hikd.devices.lockout`). When that was one or none, or the user is locked and its unlock
time has not come, ``hikd doctor`` does not try the same password again: a wrong password
then locks the account for everyone. A changed password is tried (it may be the right
one). The password is kept only as a salted PBKDF2 digest, in
``<state_dir>/doctor-refusals.json`` (the doctor's own file: it may run as another user than
the daemon, and must not leave that user's files in the daemon's databases); a state
directory this user cannot write just means no memory, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hikd.devices.lockout import NextTry
from hikd.files import write_atomically

if TYPE_CHECKING:
    from hikd.config import DeviceConfig

FILE_NAME = "doctor-refusals.json"
_LOCK = threading.Lock()
"""Devices are examined in parallel: one read-change-write of the file at a time."""
_ROUNDS = 100_000


def _key(device: DeviceConfig) -> str:
    return f"refused/{device.name}/{device.username}"


def _password(device: DeviceConfig) -> bytes:
    return device.password.get_secret_value().encode() if device.password else b""


def _digest(password: bytes, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", password, salt, _ROUNDS).hex()


def _path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def _load(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(_path(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(state_dir: Path, data: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        state_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(_path(state_dir), json.dumps(data, indent=1).encode())


def must_not_try(state_dir: Path, device: DeviceConfig) -> str | None:
    """Why the doctor must not log in with this password now, or None."""
    record = _load(state_dir).get(_key(device))
    if not isinstance(record, dict):
        return None
    try:
        salt = bytes.fromhex(record.get("salt", ""))
        digest = record.get("digest", "")
        unlock_at = record.get("unlock_at")
        locked_until = datetime.fromisoformat(unlock_at) if unlock_at else None
        left = record.get("retries_left")
        if locked_until is not None and locked_until.tzinfo is None:
            raise TypeError(unlock_at)  # cannot be compared with the time now
        if not isinstance(digest, str) or not (left is None or isinstance(left, int)):
            raise TypeError(record)
    except (TypeError, ValueError):
        return None  # a record edited by hand or by another version: as if there were none
    if not hmac.compare_digest(_digest(_password(device), salt), digest):
        return None  # another password: it may be the right one
    if locked_until and locked_until > datetime.now(UTC):
        return f"the device locked the user after this password; it unlocks at {unlock_at}"
    if left is not None and left <= 1 and not unlock_at:
        plural = "try" if left == 1 else "tries"
        return (
            f"the device refused this password on {record.get('when', '?')} and allows "
            f"{left} more {plural} before it locks the user"
        )
    return None


def remember(state_dir: Path, device: DeviceConfig, plan: NextTry) -> None:
    salt = os.urandom(16)
    record = {
        "salt": salt.hex(),
        "digest": _digest(_password(device), salt),
        "retries_left": plan.retries_left,
        "unlock_at": plan.unlock_at.isoformat(timespec="seconds") if plan.unlock_at else None,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with _LOCK:
        data = _load(state_dir)
        data[_key(device)] = record
        _save(state_dir, data)


def forget(state_dir: Path, device: DeviceConfig) -> None:
    with _LOCK:
        data = _load(state_dir)
        if data.pop(_key(device), None) is not None:
            _save(state_dir, data)
