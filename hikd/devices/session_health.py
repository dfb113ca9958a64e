"""What a device session says about its device: offline, unreachable, login refused.

Each change is one log line and one ``health`` event, said once: an unreachable device that
stays unreachable is reported when it goes, then only at debug level on each retry. A refused
login also says when hikd tries again and what the user should do (`hikd.devices.lockout`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import structlog

from hikd.devices.lockout import next_try
from hikd.events import DeviceRef, Event, health
from hikd.sdk.errors import AuthError, SdkError
from hikd.sdk.login import LoginFailureDetails

if TYPE_CHECKING:
    from hikd.config import DeviceConfig

# The session's own logger: these lines are the session's.
log = structlog.get_logger("hikd.devices.session")

SessionState = Literal["starting", "online", "offline", "auth_failed", "stopped"]


class ReportingSession(Protocol):
    """The part of a device session (`hikd.devices.session`) that reports its health."""

    name: str
    config: DeviceConfig
    state: SessionState
    last_error: str

    @property
    def device(self) -> DeviceRef: ...

    def publish(self, event: Event) -> None: ...


def report_offline(session: ReportingSession, reason: str) -> None:
    """The device went offline (said once until it is back)."""
    if session.state == "offline":
        return
    session.state = "offline"
    session.last_error = reason
    log.warning("device offline", device=session.name, reason=reason)
    session.publish(health(session.device, "offline", reason=reason))


def report_unreachable(session: ReportingSession, exc: SdkError, delay: float) -> None:
    """A login found no device; the next try is in ``delay`` seconds."""
    first = session.state != "offline"
    session.last_error = str(exc)
    if first:
        session.state = "offline"
        log.warning(
            "cannot reach device, retrying with backoff",
            device=session.name,
            address=f"{session.config.host}:{session.config.port}",
            error=str(exc),
        )
        session.publish(health(session.device, "offline", reason=str(exc), code=exc.code))
    else:
        log.debug(
            "still unreachable", device=session.name, error=str(exc), retry_in=round(delay, 1)
        )


def report_login_refused(session: ReportingSession, exc: AuthError) -> float | None:
    """Report a refused login; return the seconds to wait (None: until stopped)."""
    details: LoginFailureDetails | None = getattr(exc, "login_details", None)
    plan = next_try(session.name, exc.code, details, session.config.auth_retry_s)
    session.last_error = str(exc)
    session.state = "auth_failed"
    facts = plan.facts()
    log.error(
        "login refused",
        device=session.name,
        error=str(exc),
        retries_left=plan.retries_left,
        unlock_at=facts["unlock_at"],
        next_try_s=None if plan.wait_s is None else round(plan.wait_s),
        what_to_do=plan.what_to_do,
    )
    session.publish(health(session.device, "auth_failed", code=exc.code, reason=str(exc), **facts))
    return plan.wait_s
