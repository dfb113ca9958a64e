"""Arming: one alarm channel per logged-in device (seed 3.8.1, 5.16).

When a session logs in, its device is armed with ``NET_DVR_SetupAlarmChan_V41``; before
it logs out, the channel is closed. A device that cannot be armed (error 23: the device
has no alertStream, 29: refused) is reported and tried again on its own timer, so it never
holds up the others. Reconnects of the alarm stream are the library's job (seed 5.2.4):
hikd turns its exception codes into health events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from hikd.devices.session import DeviceSession
from hikd.events import Event, health
from hikd.listeners.pipeline import AlarmPipeline
from hikd.sdk.alarms import (
    RESEND_AFTER_OUTAGE,
    ArmingOptions,
    close_alarm_channel,
    set_message_callback,
    setup_alarm_channel,
)
from hikd.sdk.errors import SdkError
from hikd.sdk.library import Library

if TYPE_CHECKING:
    from hikd.config import ArmingConfig

log = structlog.get_logger("hikd.arming")


_LEVELS = {"high": 0, "medium": 1, "low": 2}
_DEPLOY = {"client": 0, "realtime": 1}


def arming_options(config: ArmingConfig) -> ArmingOptions:
    """What the ``[arming]`` section asks of NET_DVR_SetupAlarmChan_V41."""
    return ArmingOptions(
        level=_LEVELS[config.level],
        deploy_type=_DEPLOY[config.deploy_type],
        alarm_info_v40=config.alarm_info_v40,
        upload_confirmation=config.upload_confirmation,
        resend_after_outage=RESEND_AFTER_OUTAGE if config.resend_after_outage else 0,
    )


class ArmingListener:
    def __init__(
        self,
        sdk: Library,
        pipeline: AlarmPipeline,
        publish: Callable[[Event], None],
        options: ArmingOptions,
        retry_s: float = 30.0,
    ) -> None:
        self.sdk = sdk
        self.pipeline = pipeline
        self._publish = publish
        self.options = options
        self.retry_s = retry_s
        self.callback = pipeline.message_callback("arming")
        self._lock = threading.Lock()
        self._handles: dict[str, int] = {}
        self._retries: dict[str, threading.Timer] = {}
        self._closed = False

    def start(self) -> None:
        # One process-wide message callback: it also receives the 0x7fff error messages
        # of listen mode (sdk-over-isapi.md part 1 §4).
        set_message_callback(self.sdk, self.callback)

    # -- session hooks -----------------------------------------------------------------
    def arm(self, session: DeviceSession) -> None:
        user_id = session.user_id
        if user_id is None or self._closed:
            return
        with self._lock:
            if session.name in self._handles:
                return
        try:
            handle = setup_alarm_channel(self.sdk, user_id, self.options)
        except SdkError as exc:
            log.warning(
                "cannot arm device, will try again",
                device=session.name,
                error=str(exc),
                retry_in_s=self.retry_s,
                hint="enable 'Notify Surveillance Center' in the device's event linkage",
            )
            self._publish(health(session.device, "arming_failed", code=exc.code, reason=str(exc)))
            self._schedule_retry(session)
            return
        with self._lock:
            self._handles[session.name] = handle
        log.info("armed", device=session.name, handle=handle)
        self._publish(health(session.device, "armed", handle=handle))

    def disarm(self, session: DeviceSession) -> None:
        with self._lock:
            handle = self._handles.pop(session.name, None)
            timer = self._retries.pop(session.name, None)
        if timer is not None:
            timer.cancel()
        if handle is None:
            return
        try:
            close_alarm_channel(self.sdk, handle)
        except SdkError as exc:
            log.debug("closing the alarm channel failed", device=session.name, error=str(exc))

    def is_armed(self, name: str) -> bool:
        with self._lock:
            return name in self._handles

    def _schedule_retry(self, session: DeviceSession) -> None:
        timer = threading.Timer(self.retry_s, self._retry, args=(session,))
        timer.daemon = True
        with self._lock:
            old = self._retries.pop(session.name, None)
            self._retries[session.name] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def _retry(self, session: DeviceSession) -> None:
        with self._lock:
            self._retries.pop(session.name, None)
        if session.state == "online":
            self.arm(session)
        elif not self._closed:
            self._schedule_retry(session)

    def close(self) -> None:
        """Stop retrying; channels are closed per session by `disarm` before logout."""
        self._closed = True
        with self._lock:
            timers = list(self._retries.values())
            self._retries.clear()
        for timer in timers:
            timer.cancel()
