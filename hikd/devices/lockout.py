"""When to try a refused login again: what the device says, never a guess.

A refused login carries the device's own count of tries left before it locks the user
(``NET_DVR_DEVICEINFO_V40.byRetryLoginTime``, from ``<retryLoginTime>`` of the ISAPI 401
body) and, once locked, the seconds until it unlocks (``dwSurplusLockTime``, from
``<unlockTime>``; error 153). sdk-over-isapi.md part 1 §1 says what the library maps.

hikd never spends the last try (a wrong password then locks the account for everyone,
the installer included) and never tries before the unlock time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hikd.sdk.login import LoginFailureDetails

USER_LOCKED = 153
"""NET_DVR_USER_LOCKED (guide ch. 6)."""


@dataclass(frozen=True, slots=True)
class NextTry:
    wait_s: float | None
    """Seconds until the next login attempt; None: not until hikd is restarted."""
    retries_left: int | None
    unlock_in_s: int | None
    unlock_at: datetime | None
    what_to_do: str

    def facts(self) -> dict[str, Any]:
        """What the ``auth_failed`` health event and the log line say about the wait."""
        return {
            "retries_left": self.retries_left,
            "unlock_in_s": self.unlock_in_s,
            "unlock_at": self.unlock_at.isoformat(timespec="seconds") if self.unlock_at else None,
            "next_try_s": self.wait_s,
            "what_to_do": self.what_to_do,
        }


def next_try(
    name: str, code: int, details: LoginFailureDetails | None, auth_retry_s: float
) -> NextTry:
    """The wait after a refused login of device ``name``."""
    retries_left = details.retries_left if details else None
    unlock_in_s = details.lock_seconds if details else None
    fix = f"check the user name and password of device {name!r}"
    if code == USER_LOCKED or unlock_in_s:
        unlock_at = datetime.now(UTC) + timedelta(seconds=unlock_in_s) if unlock_in_s else None
        # One second past the device's unlock time: its clock counts whole seconds.
        wait = max(auth_retry_s, unlock_in_s + 1) if unlock_in_s else auth_retry_s
        when = f"at {unlock_at:%H:%M:%S} UTC" if unlock_at else "when the device unlocks it"
        return NextTry(
            wait,
            retries_left,
            unlock_in_s,
            unlock_at,
            f"the device has locked the user; {fix}; hikd tries again {when} "
            "(or unlock the user on the device's web page and restart hikd)",
        )
    if retries_left is not None and retries_left <= 1:
        return NextTry(
            None,
            retries_left,
            None,
            None,
            f"{fix}; the device locks the user after {retries_left} more wrong "
            f"password{'s' if retries_left != 1 else ''}, so hikd will not try again: "
            "fix the password in hikd's configuration or on the device, then restart hikd",
        )
    left = f" ({retries_left} tries left before the device locks the user)" if retries_left else ""
    return NextTry(
        auth_retry_s,
        retries_left,
        None,
        None,
        f"{fix}; hikd tries again in {auth_retry_s:.0f} s{left}",
    )
