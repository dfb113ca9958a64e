"""A device host: everything that calls the vendor library, for the devices it owns.

The vendor library, sessions, arming, listening, decoding, alarm state and jobs. It runs in
a device-host process (`hikd.hosts.child`) under the supervisor, or inside the caller's
process (`Daemon` given an open library: tests, benches, ``hikd demo``). Either way it
publishes every event through one function and knows nothing of delivery.

Start order: library -> alarm pipeline -> arming and listening -> sessions -> jobs. Stop
order is the reverse, under the caller's deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import structlog

from hikd.addresses import AddressSet, NameRefresher
from hikd.commands import CommandResult
from hikd.devices.closing import close_sessions
from hikd.devices.commands import run_command
from hikd.devices.library import open_library
from hikd.devices.sdk_exceptions import SdkExceptionRouter
from hikd.devices.session import DeviceSession, SessionHooks
from hikd.events import DeviceRef, health
from hikd.hosts.messages import DeviceStatus
from hikd.hosts.publishing import Publishing
from hikd.listeners.alarm_state import AlarmStateTracker
from hikd.listeners.arming import ArmingListener, arming_options
from hikd.listeners.backfill import Backfill
from hikd.listeners.backfill_heard import heard_path
from hikd.listeners.decode import DecodeContext
from hikd.listeners.decode.types import ONE_SHOT_TYPES
from hikd.listeners.listen import LibraryListen, ListenServer
from hikd.listeners.pipeline import AlarmPipeline, DeviceDirectory
from hikd.listeners.senders import SenderMap
from hikd.listeners.stream_watch import StreamWatch
from hikd.sdk.library import Library

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig
    from hikd.jobs.config import JobSpec
    from hikd.jobs.scheduler import JobScheduler
    from hikd.state import StateStore

log = structlog.get_logger("hikd.daemon")

Listening = Literal["front", "library"]
"""front: the listen fronts and the library's listen ports here (one process); library:
only the library's loopback listen ports, the fronts run in the supervisor."""

CommandHandler = Callable[[DeviceSession, Mapping[str, Any]], Any]
COMMANDS: dict[str, CommandHandler] = {}
"""Commands a device's host runs for the supervisor (`hikd.hosts.supervisor.command`), by
name: ``handler(session, args)`` returns a picklable value or raises. Register with
`command_handler`."""


def command_handler(name: str) -> Callable[[CommandHandler], CommandHandler]:
    def register(handler: CommandHandler) -> CommandHandler:
        COMMANDS[name] = handler
        return handler

    return register


@command_handler("describe")
def _describe(session: DeviceSession, _args: Mapping[str, Any]) -> Any:
    """The session's state and facts (also the smallest command for tests)."""
    return {"state": session.state, **session.describe()}


@command_handler("user_command")
def _user_command(session: DeviceSession, args: Mapping[str, Any]) -> CommandResult:
    """A user's command from a sink (`hikd.commands`), carried out on the session."""
    command = args["command"]
    picture_dir = Path(args["picture_dir"])
    return run_command({session.name: session}, command, session.publish, picture_dir)


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


class DeviceHost:
    def __init__(
        self,
        config: Config,
        devices: Sequence[DeviceConfig],
        publishing: Publishing,
        *,
        sdk: Library | None = None,
        listening: Listening = "front",
        senders: SenderMap | None = None,
        index: int = 0,
    ) -> None:
        """`devices`: the enabled devices this host owns. `sdk`: an open library to use
        (and leave open at stop); by default the host opens its own. `index`: which host
        this is (names its files in the state directory)."""
        self.index = index
        self.config = config
        self.devices = list(devices)
        self.publishing = publishing
        self.publish = publishing.publish
        self.listening = listening
        self.sdk = sdk
        self._owns_sdk = sdk is None
        self.scheduler: JobScheduler | None = None
        self.state: StateStore | None = None
        self.pipeline: AlarmPipeline | None = None
        self.arming: ArmingListener | None = None
        self.stream_watch: StreamWatch | None = None
        self.router: SdkExceptionRouter | None = None
        self.backfill: Backfill | None = None
        self.listeners: list[ListenServer] = []
        self.library_listens: list[LibraryListen] = []
        self.sessions: list[DeviceSession] = []
        self.directory = DeviceDirectory()
        self.senders = senders or SenderMap()
        self.resolver: NameRefresher | None = None

    # -- start -------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        state_dir = Path(cfg.daemon.state_dir)
        picture_dir = Path(cfg.daemon.picture_dir)
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
            self.publishing.queue or self.publish,
            senders=self.senders,
            picture_dir=picture_dir,
            flush=self.publishing.flush,
        )
        self.pipeline.start()
        self.arming = ArmingListener(
            self.sdk,
            self.pipeline,
            self.publish,
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
        self.router = SdkExceptionRouter(lambda: self.sessions, self.publish)
        self.sdk.add_exception_handler(self.router.handler)
        self.router.start()

        for device in self.devices:
            self.sessions.append(self.new_session(device))

        if cfg.listen:
            self._start_listening()
        for session in self.sessions:
            session.start()
        if cfg.jobs:
            self._start_jobs(state_dir)

    def _state_store(self, state_dir: Path) -> StateStore:
        from hikd.state import StateStore

        if self.state is None:
            self.state = StateStore(state_dir / "state.sqlite")
        return self.state

    def _start_backfill(self, state_dir: Path) -> None:
        """The log reader for alarms missed during gaps (README "Backfill")."""
        devices = [d for d in self.devices if d.arm and d.backfill]
        if not devices or self.pipeline is None:
            return
        subscribe_stored = self.publishing.subscribe_stored
        self.backfill = Backfill(
            devices,
            self.sessions_by_name,
            self.publish,
            self._state_store(state_dir),
            heard=heard_path(state_dir, self.index) if subscribe_stored else None,
        )
        self.pipeline.watchers.append(self.backfill.watch)
        self.publishing.subscribe(self.backfill.observe)
        if subscribe_stored is not None:
            subscribe_stored(self.backfill.stored)
        self.backfill.start()

    def _start_jobs(self, state_dir: Path) -> None:
        """Scheduled and alarm-driven jobs (downloads, clips, snapshots, status, ...) on this
        host's devices."""
        from hikd.jobs.config import default_output_dir
        from hikd.jobs.scheduler import JobScheduler

        self.scheduler = JobScheduler(
            self.jobs(),
            self.sessions_by_name,
            self.publish,
            self._state_store(state_dir),
            threading.Event(),
            default_output_dir(self.config),
            stored=self.publishing.stored,
        )
        # Alarm-driven jobs (clips, snapshots on alarm) see every event; they only enqueue.
        self.publishing.subscribe(self.scheduler.on_event)
        self.scheduler.start()

    def jobs(self) -> list[JobSpec]:
        """The configured jobs, each on the devices of this host it names."""
        from hikd.jobs.config import host_jobs

        owned = {device.name for device in self.devices}
        return host_jobs(self.config.jobs, [d.name for d in self.config.devices], owned)

    def new_session(self, device: DeviceConfig) -> DeviceSession:
        """`device`'s entry in the alarm pipeline's directory and its session (not started:
        the caller adds it to `sessions` and starts it)."""
        assert self.sdk is not None
        picture_dir = Path(self.config.daemon.picture_dir)
        addresses = [device.host, *device.allowed_addresses]
        self.directory.add(device.name, self._context(device, picture_dir), addresses)
        return DeviceSession(self.sdk, device, self.publish, self._hooks(device, picture_dir))

    def sessions_by_name(self) -> dict[str, DeviceSession]:
        return {session.name: session for session in self.sessions}

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
        """Names in devices' addresses (and, with the fronts here, in allow-lists) resolved
        first: a listen sender is matched to its device by address."""
        assert self.sdk is not None and self.pipeline is not None
        fronts = self.listening == "front"
        allowed = {
            listen.port: AddressSet(listen.allowed, where=f"listen port {listen.port}")
            for listen in self.config.listen
            if fronts
        }
        self.resolver = NameRefresher(
            [*allowed.values(), *self.directory.address_sets()],
            on_change=self.directory.addresses_changed,
        )
        self.resolver.start()
        for listen in self.config.listen:
            if fronts:
                server = ListenServer(
                    self.sdk,
                    self.pipeline,
                    listen,
                    allowed[listen.port],
                    self.senders,
                    self.publish,
                )
                server.start()
                self.listeners.append(server)
                self.pipeline.misread = self._misread
            else:
                library = LibraryListen(self.sdk, self.pipeline, listen.port)
                library.start()
                self.library_listens.append(library)

    def _misread(self, alias: str, number: int) -> None:
        for server in self.listeners:
            if server.front is not None:
                server.front.misread(alias, number)

    def library_ports(self) -> dict[int, int]:
        """Public listen port -> this host's loopback port of the library behind it."""
        return {lib.public_port: lib.library_port for lib in self.library_listens}

    # -- running -----------------------------------------------------------------------
    def statuses(self) -> list[DeviceStatus]:
        arming = self.arming
        return [
            DeviceStatus(
                s.name,
                s.device.serial,
                s.device.address,
                s.state,
                arming is not None and arming.is_armed(s.name),
            )
            for s in self.sessions
        ]

    def healthy(self) -> bool:
        # A listen front whose thread ended leaves devices that push unheard.
        fronts = all(server.alive() for server in self.listeners)
        return self.pipeline is not None and self.pipeline.alive() and fronts

    def command(self, device: str, name: str, args: Mapping[str, Any]) -> Any:
        """Run command `name` on `device`'s session (`COMMANDS`); its result."""
        handler = COMMANDS.get(name)
        if handler is None:
            raise LookupError(f"no command {name!r} (known: {', '.join(sorted(COMMANDS))})")
        session = self.sessions_by_name().get(device)
        if session is None:
            raise LookupError(f"device {device!r} is not on this host")
        return handler(session, args)

    def run_job(self, name: str) -> list[Any]:
        """Run job `name` now on this host's devices; one result per device."""
        if self.scheduler is None:
            raise LookupError("no jobs are configured")
        return list(self.scheduler.run_now(name))

    # -- stop --------------------------------------------------------------------------
    def stop(self, deadline: float) -> bool:
        """Stop everything but the library (`cleanup` closes it); False when a job was
        still running (it keeps the state database until the process ends)."""
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
        for library in self.library_listens:
            library.stop()
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
        return jobs_done

    def close(self, deadline: float, jobs_done: bool) -> None:
        """After the events are stored: the state database and the library."""
        if self.state is not None and jobs_done:
            self.state.close()  # a job still running keeps it until the process ends
        if self.sdk is not None and self._owns_sdk:
            sdk = self.sdk
            cleaner = threading.Thread(target=sdk.cleanup, name="sdk-cleanup", daemon=True)
            cleaner.start()
            cleaner.join(max(0.1, deadline - time.monotonic()))
            if cleaner.is_alive():
                log.warning("the vendor library did not clean up in time; exiting anyway")
