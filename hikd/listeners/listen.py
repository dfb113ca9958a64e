"""Listen servers: devices push alarms to hikd (seed 3.8.2, 5.17).

One ``NET_DVR_StartListen_V30`` per configured address and port. The library answers each
POST and hands the alarm to the callback with only the sender's socket address
(sdk-over-isapi.md part 1 §4); the pipeline matches it to a configured device and drops
senders that are not allowed (counted and logged), on its own thread.
"""

from __future__ import annotations

import structlog

from hikd.listeners.pipeline import AlarmPipeline
from hikd.sdk.alarms import MessageCallback, start_listen, stop_listen
from hikd.sdk.library import Library

log = structlog.get_logger("hikd.listen")


class ListenServer:
    def __init__(self, sdk: Library, pipeline: AlarmPipeline, address: str, port: int) -> None:
        self.sdk = sdk
        self.address = address
        self.port = port
        self.callback = MessageCallback(pipeline.enqueue, "listen", port)
        self.handle: int | None = None

    def start(self) -> None:
        self.handle = start_listen(self.sdk, self.address, self.port, self.callback)
        log.info("listening for pushed alarms", address=self.address, port=self.port)

    def stop(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            try:
                stop_listen(self.sdk, handle)
            except Exception as exc:
                log.debug("stop listen failed", port=self.port, error=str(exc))
