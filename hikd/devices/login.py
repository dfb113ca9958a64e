"""One login for a command a user runs: never a retry.

A wrong password must not count twice on the device (it locks the account after a few,
README "Wrong passwords"), so a command logs in once, says why it could not, and logs out
whatever happens. The daemon's sessions retry with backoff instead (`DeviceSession.start`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from hikd.devices.session import DeviceSession
from hikd.errors import UserError
from hikd.sdk.errors import SdkError

if TYPE_CHECKING:
    from hikd.config import DeviceConfig
    from hikd.sdk.library import Library


class LoginFailed(UserError):
    """The one login of a command failed; `reason` is the library's word for why."""

    def __init__(self, device: DeviceConfig, reason: str) -> None:
        super().__init__(f"cannot log in to {device.name} ({device.host}:{device.port}): {reason}")
        self.reason = reason


def login_once(session: DeviceSession) -> None:
    """The one login attempt of `session`. Raises `LoginFailed`."""
    try:
        session.login_once()
    except SdkError as exc:
        raise LoginFailed(session.config, str(exc)) from None


@contextmanager
def login(sdk: Library, device: DeviceConfig) -> Iterator[DeviceSession]:
    """A session logged in once to `device`, logged out when the block ends.
    Raises `LoginFailed` (a `UserError`: one line for the user)."""
    session = DeviceSession(sdk, device, publish=lambda _event: None)
    login_once(session)
    try:
        yield session
    finally:
        session.close()
