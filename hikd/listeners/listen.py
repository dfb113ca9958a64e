"""Listen servers: devices push alarms to hikd (seed 3.8.2, 5.17).

One per ``[[listen]]`` entry: hikd's own front (`hikd.listeners.front`) owns the public port
and relays each vetted request to a ``NET_DVR_StartListen_V30`` on a loopback port that only
it uses. The library hands the alarm to the callback with only the socket peer address
(sdk-over-isapi.md part 1 §4): the relay's loopback address, which the pipeline maps back
to the real sender (`SenderMap`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from hikd.addresses import AddressSet
from hikd.events import Event
from hikd.listeners.pipeline import AlarmPipeline
from hikd.listeners.senders import LIBRARY_ADDRESS, SenderMap
from hikd.listeners.vet import listen_limits, port_in_use
from hikd.sdk.alarms import start_listen, stop_listen
from hikd.sdk.errors import SdkError
from hikd.sdk.library import Library

if TYPE_CHECKING:
    from hikd.config import ListenConfig
    from hikd.listeners.front import ListenFront

log = structlog.get_logger("hikd.listen")

_PORT_TRIES = 5


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind((LIBRARY_ADDRESS, 0))
        return int(sock.getsockname()[1])


class LibraryListen:
    """``NET_DVR_StartListen_V30`` on a free loopback port, fed only by a listen front (in
    this process, or in the supervisor when devices have their own processes)."""

    def __init__(self, sdk: Library, pipeline: AlarmPipeline, public_port: int) -> None:
        self.sdk = sdk
        self.public_port = public_port
        self.callback = pipeline.message_callback("listen", public_port)
        self.handle: int | None = None
        self.library_port = 0

    def start(self) -> None:
        """On a free loopback port (another program may take it between the probe and the
        call: then another port)."""
        error: SdkError | None = None
        for _ in range(_PORT_TRIES):
            port = free_loopback_port()
            try:
                self.handle = start_listen(self.sdk, LIBRARY_ADDRESS, port, self.callback)
            except SdkError as exc:
                error = exc
                continue
            self.library_port = port
            return
        assert error is not None
        raise error

    def stop(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            try:
                stop_listen(self.sdk, handle)
            except Exception as exc:
                log.debug("stop listen failed", port=self.public_port, error=str(exc))


class ListenServer:
    """A listen front and the library's listen port behind it, in one process."""

    def __init__(
        self,
        sdk: Library,
        pipeline: AlarmPipeline,
        config: ListenConfig,
        allowed: AddressSet,
        senders: SenderMap,
        publish: Callable[[Event], None],
    ) -> None:
        self.config = config
        self.address = config.address
        self.port = config.port
        self.allowed = allowed
        self.senders = senders
        self.publish = publish
        self.library = LibraryListen(sdk, pipeline, config.port)
        self.front: ListenFront | None = None

    @property
    def library_port(self) -> int:
        return self.library.library_port

    def start(self) -> None:
        # Here, not at the top: the front runs on asyncio, which a device host (the library
        # ports only) never needs (its memory: hikd.lazy_imports).
        from hikd.listeners.front import ListenFront

        self.library.start()
        cfg = self.config
        front = ListenFront(
            cfg.address,
            cfg.port,
            self.library_port,
            self.allowed,
            self.senders,
            self.publish,
            listen_limits(cfg),
            relay_host=LIBRARY_ADDRESS,
        )
        try:
            front.start()
        except OSError as exc:
            self.stop()
            raise port_in_use(cfg, exc) from None
        self.front = front
        log.info(
            "listening for pushed alarms",
            address=cfg.address,
            port=cfg.port,
            library_port=self.library_port,
        )

    def alive(self) -> bool:
        return self.front is not None and self.front.alive()

    def stop(self) -> None:
        front, self.front = self.front, None
        if front is not None:
            front.stop()
        self.library.stop()
