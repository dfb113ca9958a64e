"""The daemon: builds every part from the configuration, starts and stops them in order.

It assembles; it does not contain. Start order: library -> outbox and sinks -> alarm
pipeline -> arming and listen servers -> sessions. Stop order is the reverse, under one
deadline (``sdk.shutdown_timeout_s``): the library's own close/logout can take seconds
per device, and systemd must not have to kill hikd.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog

from hikd import __version__
from hikd.addresses import AddressSet, NameRefresher
from hikd.config import Config, DeviceConfig, load_config
from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import Outbox
from hikd.devices.library import open_library
from hikd.devices.sdk_exceptions import SdkExceptionRouter
from hikd.devices.session import DeviceSession, SessionHooks, close_sessions
from hikd.errors import UserError
from hikd.events import DeviceRef, Event, health
from hikd.files import make_dir
from hikd.listeners.alarm_state import AlarmStateTracker
from hikd.listeners.arming import ArmingListener, arming_options
from hikd.listeners.backfill import Backfill
from hikd.listeners.decode import DecodeContext
from hikd.listeners.decode.types import ONE_SHOT_TYPES
from hikd.listeners.front import SenderMap
from hikd.listeners.listen import ListenServer
from hikd.listeners.pipeline import AlarmPipeline, DeviceDirectory
from hikd.listeners.stream_watch import StreamWatch
from hikd.logs import setup_logging
from hikd.native_stderr import route_native_stderr
from hikd.sdk.library import Library
from hikd.sinks.base import SinkContext
from hikd.sinks.registry import build_sinks
from hikd.systemd import Notifier, watchdog_interval_s

if TYPE_CHECKING:
    from hikd.jobs.scheduler import JobScheduler
    from hikd.state import StateStore

log = structlog.get_logger("hikd.daemon")

STORED_WAIT_S = 30.0
"""How long a job waits for its events to be stored before it gives up (a full disk)."""


def device_timezone(value: str | None) -> tzinfo | None:
    """The configured zone of a device that sends times without an offset: a fixed offset
    such as ``+01:00`` or an IANA name such as ``Europe/Berlin`` (daylight saving included)."""
    if not value:
        return None
    if value[0] in "+-":
        sign = -1 if value[0] == "-" else 1
        hours, _, minutes = value[1:].partition(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
    return ZoneInfo(value)


class Daemon:
    def __init__(
        self,
        config: Config,
        observers: Sequence[Callable[[Event], None]] = (),
        sdk: Library | None = None,
    ) -> None:
        """``observers``: consumers that see every event (subscribed to the bus).
        ``sdk``: an already open library to use (and leave open at stop), e.g. when
        several daemons share one process in the tests; by default the daemon opens it."""
        self.config = config
        self.observers = list(observers)
        self.notifier = Notifier()
        self.stopping = threading.Event()
        self.sdk: Library | None = sdk
        self._owns_sdk = sdk is None
        self.bus: EventBus | None = None
        self.outbox: Outbox | None = None
        self.scheduler: JobScheduler | None = None
        self.state: StateStore | None = None
        self.pipeline: AlarmPipeline | None = None
        self.arming: ArmingListener | None = None
        self.stream_watch: StreamWatch | None = None
        self.router: SdkExceptionRouter | None = None
        self.backfill: Backfill | None = None
        self.listeners: list[ListenServer] = []
        self.sessions: list[DeviceSession] = []
        self.directory = DeviceDirectory()
        self.senders = SenderMap()
        self.resolver: NameRefresher | None = None

    # -- start -------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        # The library's callbacks need the GIL to copy and enqueue; with the default 5 ms
        # switch interval a busy decoder or sink thread can hold them that long.
        sys.setswitchinterval(0.0005)
        state_dir = make_dir(Path(cfg.daemon.state_dir), "daemon.state_dir")
        picture_dir = Path(cfg.daemon.picture_dir)
        if cfg.sdk.log_dir is not None:
            make_dir(cfg.sdk.log_dir, "sdk.log_dir")

        self.bus = self._build_bus(state_dir)
        self.bus.start()
        publish = self.publish

        self.sdk = self.sdk or open_library(cfg.sdk, daemon=True)
        log.info(
            "vendor library ready", version=self.sdk.version(), directory=str(self.sdk.directory)
        )

        tracker = AlarmStateTracker(
            hold_s=dict(cfg.alarms.hold_s),
            # Types the decoders know to be one-shot (face snaps, plates, ...) have no end.
            pulse_types=set(cfg.alarms.pulse_types) | set(ONE_SHOT_TYPES),
        )
        self.pipeline = AlarmPipeline(
            self.directory,
            tracker,
            publish,
            senders=self.senders,
            picture_dir=picture_dir,
        )
        self.pipeline.start()

        self.arming = ArmingListener(
            self.sdk,
            self.pipeline,
            publish,
            arming_options(cfg.arming),
            retry_s=cfg.arming.retry_s,
        )
        self.arming.start()
        self.stream_watch = StreamWatch(
            self.arming, lambda: self.sessions, misses=cfg.arming.heartbeat_misses
        )
        self.pipeline.part_watchers.append(self.stream_watch.on_part)
        self.stream_watch.start()

        self._start_backfill(state_dir)

        self.router = SdkExceptionRouter(lambda: self.sessions, publish)
        self.sdk.add_exception_handler(self.router.handler)
        self.router.start()

        for device in cfg.devices:
            if not device.enabled:
                continue
            self.directory.add(
                device.name,
                self._context(device, picture_dir),
                [device.host, *device.allowed_addresses],
            )
            session = DeviceSession(self.sdk, device, publish, self._hooks(device, picture_dir))
            self.sessions.append(session)

        if cfg.listen:
            self._start_listening()
        for session in self.sessions:
            session.start()

        if cfg.jobs:
            self._start_jobs(state_dir)
        # Everything built so far lives as long as the daemon: keep the garbage collector
        # from walking it again and again (about a tenth of the alarm path's time).
        gc.freeze()

    def _state_store(self, state_dir: Path) -> StateStore:
        from hikd.state import StateStore

        if self.state is None:
            self.state = StateStore(state_dir / "state.sqlite")
        return self.state

    def _start_backfill(self, state_dir: Path) -> None:
        """The log reader for alarms missed during gaps (README "Backfill")."""
        devices = [d for d in self.config.devices if d.enabled and d.arm and d.backfill]
        if not devices or self.pipeline is None:
            return
        self.backfill = Backfill(
            devices,
            lambda: {session.name: session for session in self.sessions},
            self.publish,
            self._state_store(state_dir),
        )
        self.pipeline.watchers.append(self.backfill.watch)
        if self.bus is not None:
            self.bus.subscribe(self.backfill.observe)
        self.backfill.start()

    def _start_jobs(self, state_dir: Path) -> None:
        """Scheduled and alarm-driven jobs (downloads, clips, snapshots, status, ...)."""
        from hikd.jobs.config import default_output_dir
        from hikd.jobs.scheduler import JobScheduler

        self.scheduler = JobScheduler(
            self.config.jobs,
            lambda: {session.name: session for session in self.sessions},
            self.publish,
            self._state_store(state_dir),
            threading.Event(),
            default_output_dir(self.config),
            devices=[device.name for device in self.config.devices],
            stored=self._stored,
        )
        # Alarm-driven jobs (clips, snapshots on alarm) see every event; they only enqueue.
        if self.bus is not None:
            self.bus.subscribe(self.scheduler.on_event)
        self.scheduler.start()

    def _stored(self) -> None:
        """Return once every event published so far is stored in the outbox; what a job
        marks done waits for this (`StateStore.waiting_for`)."""
        if self.bus is not None and not self.bus.wait_stored(STORED_WAIT_S):
            raise UserError(
                f"its events are not stored in the outbox after {STORED_WAIT_S:g} s "
                "(see the outbox_unwritable health event); nothing was marked done"
            )

    def _build_bus(self, state_dir: Path) -> EventBus:
        limits = self.config.outbox
        outbox = Outbox(
            state_dir / "outbox.sqlite",
            max_events=limits.max_events,
            max_bytes=limits.max_bytes,
            synchronous="FULL" if limits.synchronous == "full" else "NORMAL",
        )
        self.outbox = outbox

        def context(name: str) -> SinkContext:
            sink_dir = make_dir(state_dir / "sinks" / name, "daemon.state_dir")
            # backlog: how many events wait for a sink (the MQTT sink's "Outbox backlog").
            extra = {"version": __version__, "backlog": outbox.pending}
            return SinkContext(name=name, state_dir=sink_dir, extra=extra)

        sinks = build_sinks(self.config.sinks, context)
        bus = EventBus(outbox, sinks)
        for consumer in self.observers:
            bus.subscribe(consumer)
        return bus

    def _context(self, device: DeviceConfig, picture_dir: Path) -> DecodeContext:
        return DecodeContext(
            device=DeviceRef(device.name, "", f"{device.host}:{device.port}"),
            utc_offset=device_timezone(device.timezone),
            picture_dir=picture_dir,
        )

    def _hooks(self, device: DeviceConfig, picture_dir: Path) -> SessionHooks:
        hooks = SessionHooks()

        def logged_in(session: DeviceSession) -> None:
            facts = session.facts
            context = DecodeContext(
                device=session.device,
                start_channel=facts.start_channel if facts else 1,
                start_ip_channel=facts.start_ip_channel if facts else 1,
                utc_offset=device_timezone(device.timezone),
                picture_dir=picture_dir,
                channels=session.channels,
            )
            if session.user_id is not None:
                self.directory.logged_in(device.name, session.user_id, context)
            if device.arm and self.arming is not None:
                self.arming.arm(session)

        def logging_out(session: DeviceSession) -> None:
            if self.arming is not None and self.arming.is_armed(device.name):
                self.arming.disarm(session)
                # The arming concern's health must not say "armed" once the session is gone.
                self.publish(health(session.device, "disarmed", reason="the session ended"))
            elif self.arming is not None:
                self.arming.disarm(session)  # a pending retry, if any
            self.directory.logged_out(device.name)

        hooks.on_login.append(logged_in)
        hooks.before_logout.append(logging_out)
        return hooks

    def _start_listening(self) -> None:
        """The listen fronts; names in allow-lists and devices' addresses resolved first (a
        listen sender is matched to its device by address)."""
        assert self.sdk is not None and self.pipeline is not None
        allowed = {
            listen.port: AddressSet(listen.allowed, where=f"listen port {listen.port}")
            for listen in self.config.listen
        }
        self.resolver = NameRefresher(
            [*allowed.values(), *self.directory.address_sets()],
            on_change=self.directory.addresses_changed,
        )
        self.resolver.start()
        for listen in self.config.listen:
            server = ListenServer(
                self.sdk, self.pipeline, listen, allowed[listen.port], self.senders, self.publish
            )
            server.start()
            self.listeners.append(server)

    # -- run ---------------------------------------------------------------------------
    def status_line(self) -> str:
        online = sum(1 for s in self.sessions if s.state == "online")
        armed = sum(1 for s in self.sessions if self.arming and self.arming.is_armed(s.name))
        return f"{online}/{len(self.sessions)} devices online, {armed} armed"

    def run_forever(self) -> None:
        def on_signal(signum: int, _frame: Any) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.notifier.ready(self.status_line())
        watchdog = watchdog_interval_s()
        tick = min(watchdog or 5.0, 5.0)
        last_status = ""
        while not self.stopping.wait(tick):
            if watchdog is not None and self._healthy():
                self.notifier.watchdog()
            status = self.status_line()
            if status != last_status:
                self.notifier.status(status)
                last_status = status

    def _healthy(self) -> bool:
        # A listen front whose thread ended leaves devices that push unheard: let systemd's
        # watchdog restart hikd.
        fronts = all(server.alive() for server in self.listeners)
        return self.pipeline is not None and self.pipeline.alive() and fronts

    # -- stop --------------------------------------------------------------------------
    def stop(self) -> None:
        deadline = time.monotonic() + self.config.sdk.shutdown_timeout_s
        self.notifier.stopping()
        jobs_done = True
        if self.scheduler is not None:
            # Running jobs are told to stop; a download left half-way resumes next time.
            wait_s = max(0.1, min(2.0, deadline - time.monotonic() - 2))
            jobs_done = self.scheduler.shutdown(wait_s=wait_s)
        if self.backfill is not None:
            self.backfill.closing()
        if self.resolver is not None:
            self.resolver.stop()
        for server in self.listeners:
            server.stop()
        if self.stream_watch is not None:
            self.stream_watch.stop()
        if self.arming is not None:
            self.arming.close()
        close_sessions(self.sessions, deadline - time.monotonic() - 1.0)
        if self.pipeline is not None:
            self.pipeline.stop(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        if self.backfill is not None:
            # After the decoder drained: until when each device was heard.
            self.backfill.stop(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
        if self.router is not None:
            if self.sdk is not None:
                self.sdk.remove_exception_handler(self.router.handler)
            self.router.stop(timeout=0.5)
        if self.bus is not None:
            self.bus.stop(timeout=max(0.5, deadline - time.monotonic()))
        if self.outbox is not None:
            self.outbox.close()
        if self.state is not None and jobs_done:
            self.state.close()  # a job still running keeps it until the process ends
        if self.sdk is not None and self._owns_sdk:
            sdk = self.sdk
            cleaner = threading.Thread(target=sdk.cleanup, name="sdk-cleanup", daemon=True)
            cleaner.start()
            cleaner.join(max(0.1, deadline - time.monotonic()))
            if cleaner.is_alive():
                log.warning("the vendor library did not clean up in time; exiting anyway")
        log.info("stopped")

    def publish(self, event: Event) -> None:
        """Every event of every part goes through here into the outbox."""
        if self.bus is not None:
            self.bus.publish(event)


def run(config_path: Path | None) -> int:
    config = load_config(config_path)
    setup_logging(config.logging.level, config.logging.format)
    route_native_stderr()
    daemon = Daemon(config)
    try:
        daemon.start()
        daemon.run_forever()
    finally:
        daemon.stop()
    return 0
