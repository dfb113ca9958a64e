"""The daemon: builds every part from the configuration, starts and stops them in order.

It assembles; it does not contain. ``hikd run`` is the supervisor and delivery process:
the outbox and sinks (the event bus), systemd, the listen fronts, and one or more device
hosts in processes of their own (`hikd.hosts`), which load the vendor library and own the
devices. Given ``hosts="inline"`` (tests, benches, ``hikd demo``) the one device host runs in
this process instead. Start order: outbox and sinks -> device hosts (library -> alarm
pipeline -> arming and listening -> sessions -> jobs) -> listen fronts. Stop order is the
reverse, under one deadline (``sdk.shutdown_timeout_s``): the library's own close/logout can
take seconds per device, and systemd must not have to kill hikd.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from hikd import __version__
from hikd.commands import Command, CommandResult, CommandRunner
from hikd.config import Config, load_config
from hikd.delivery.bus import EventBus
from hikd.delivery.outbox import HIKD, Outbox
from hikd.errors import ConfigError, UserError
from hikd.events import Event, health
from hikd.files import make_dir
from hikd.hosts import interpreter
from hikd.listeners.spool_file import warn_spools_left
from hikd.logs import redact, setup_logging
from hikd.observe.service import Observation
from hikd.sinks.base import SinkContext
from hikd.sinks.registry import build_sinks
from hikd.systemd import Notifier, watchdog_interval_s

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession
    from hikd.hosts.device_host import DeviceHost
    from hikd.hosts.fronts import SupervisedFronts
    from hikd.hosts.supervisor import HostSupervisor
    from hikd.listeners.arming import ArmingListener
    from hikd.listeners.listen import ListenServer
    from hikd.listeners.pipeline import AlarmPipeline
    from hikd.listeners.stream_watch import StreamWatch
    from hikd.sdk.library import Library

log = structlog.get_logger("hikd.daemon")

STORED_WAIT_S = 30.0
"""How long a job waits for its events to be stored before it gives up (a full disk)."""
COMMAND_TIMEOUT_S = 30.0
"""How long a user's command may take on its device's host (a snapshot, a detection's
document read and put back: each request times out after 10 s)."""

Hosts = Literal["inline", "processes"]


class Daemon:
    host_class: type[DeviceHost] | None = None
    """What runs the devices inline (default `DeviceHost`; a bench may watch its parts)."""

    def __init__(
        self,
        config: Config,
        observers: Sequence[Callable[[Event], None]] = (),
        sdk: Library | None = None,
        hosts: Hosts = "inline",
        config_path: Path | None = None,
    ) -> None:
        """``observers``: consumers that see every event published in this process
        (subscribed to the bus; with ``hosts="processes"`` only the supervisor's own).
        ``sdk``: an already open library for the inline host to use (and leave open at
        stop), e.g. when several daemons share one process in the tests. ``config_path``:
        the file `reload` reads again (None: $HIKD_CONFIG or the default path)."""
        self.config = config
        self.config_path = config_path
        self._reloading = threading.Lock()
        self.observers = list(observers)
        self.notifier = Notifier()
        self.stopping = threading.Event()
        self.sdk = sdk
        self.mode: Hosts = hosts
        self.bus: EventBus | None = None
        self.outbox: Outbox | None = None
        self.host: DeviceHost | None = None
        self.supervisor: HostSupervisor | None = None
        self.fronts: SupervisedFronts | None = None
        self.observation = Observation(config, jobs=self._job_rows, reload=self.reload)
        self.commands = CommandRunner(
            self._run_command,
            self.publish,
            lambda: {d.name for d in self.config.devices if d.enabled},
        )
        """Users' commands from sinks (`hikd.commands`); sinks get its `submit`."""

    # The inline host's parts, for tests and benches.
    @property
    def sessions(self) -> list[DeviceSession]:
        return self.host.sessions if self.host else []

    @property
    def pipeline(self) -> AlarmPipeline | None:
        return self.host.pipeline if self.host else None

    @property
    def arming(self) -> ArmingListener | None:
        return self.host.arming if self.host else None

    @property
    def stream_watch(self) -> StreamWatch | None:
        return self.host.stream_watch if self.host else None

    @property
    def listeners(self) -> list[ListenServer]:
        return self.host.listeners if self.host else []

    # -- start -------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        interpreter.set_up()
        state_dir = make_dir(Path(cfg.daemon.state_dir), "daemon.state_dir")
        if cfg.sdk.log_dir is not None:
            make_dir(cfg.sdk.log_dir, "sdk.log_dir")
        self.bus = self._build_bus(state_dir)
        self.bus.start()
        self.observation.start(self.bus.stats)
        if self.mode == "inline":
            self.host = self._make_host()
            self.host.start()
        else:
            self._start_hosts()
            self.observation.hosts = self.supervisor.hosts if self.supervisor else None
        # Everything built so far lives as long as the daemon: keep the garbage collector
        # from walking it again and again (about a tenth of the alarm path's time).
        interpreter.started(interpreter.SUPERVISOR_GC_THRESHOLDS)

    def _make_host(self) -> DeviceHost:
        # Here, not at the top: the supervisor of `hikd run` never loads the device side.
        from hikd.hosts.device_host import DeviceHost
        from hikd.hosts.publishing import Publishing

        assert self.bus is not None
        publishing = Publishing(self.publish, self.bus.subscribe, self._stored)
        devices = [d for d in self.config.devices if d.enabled]
        host_class = self.host_class or DeviceHost
        return host_class(self.config, devices, publishing, sdk=self.sdk)

    def _start_hosts(self) -> None:
        from hikd.hosts.supervisor import HostSupervisor

        assert self.bus is not None
        if self.config.listen:
            # Only with [[listen]]: without, the fronts' modules stay unloaded. Before the
            # hosts start: the fronts open the moment the hosts are ready.
            from hikd.hosts.fronts import SupervisedFronts
        self.supervisor = HostSupervisor(self.config, self.publish, self.bus.others_stored)
        self.supervisor.start()
        if self.config.listen:
            # Once the hosts are ready: "listening" means a push is taken.
            self.fronts = SupervisedFronts(self.config, self.supervisor, self.publish)
            self.fronts.start()
            self.observation.listen = self.fronts.stats
        else:  # a removed listen port's pushes wait for one (README "The listen front")
            warn_spools_left(self.config.daemon.state_dir)

    def _job_rows(self) -> list[Any]:
        """For `hikd status`: the inline host's scheduler, else configuration and state."""
        if self.host is not None and self.host.scheduler is not None:
            return list(self.host.scheduler.describe())
        from hikd.jobs.report import configured_jobs

        return list(configured_jobs(self.config))

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
            # backlog: how many events wait for a sink (the MQTT sink's "Outbox backlog");
            # devices: the devices configured now (the MQTT sink forgets others).
            extra = {
                "version": __version__,
                "backlog": outbox.pending,
                "submit_command": self.commands.submit,
                "devices": lambda: [d.name for d in self.config.devices if d.enabled],
            }
            return SinkContext(name=name, state_dir=sink_dir, extra=extra)

        sinks = build_sinks(self.config.sinks, context)
        bus = EventBus(outbox, [*sinks, *self.observation.watch()])
        for consumer in self.observers:
            bus.subscribe(consumer)
        return bus

    def _run_command(self, command: Command) -> CommandResult:
        """Carry out a checked command on the host that owns its device (`hikd.devices.
        commands` there, by the host command ``user_command``)."""
        from hikd.hosts.supervisor import CommandFailed, HostUnavailable

        args = {"command": command, "picture_dir": str(self.config.daemon.picture_dir)}
        try:
            if self.supervisor is not None:
                result = self.supervisor.command(
                    command.device, "user_command", args, COMMAND_TIMEOUT_S
                )
            elif self.host is not None:
                result = self.host.command(command.device, "user_command", args)
            else:
                return CommandResult.refused("hikd runs no devices")
        except HostUnavailable:
            return CommandResult.failed(f"the process of {command.device} is restarting")
        except TimeoutError:
            return CommandResult.failed(f"{command.device} did not answer in time")
        except (CommandFailed, LookupError) as error:
            return CommandResult.failed(str(error))
        assert isinstance(result, CommandResult)
        return result

    # -- reload ------------------------------------------------------------------------
    def reload(self) -> dict[str, Any]:
        """Read the configuration file again and apply its devices (`hikd.config.changes`);
        what changed, or why nothing did. Never raises: a bad file leaves all as it was."""
        with self._reloading:
            if self.stopping.is_set():
                return {"ok": False, "line": "configuration not reloaded: hikd is stopping"}
            self.notifier.reloading()
            try:
                answer = self._reload()
            except Exception as exc:  # a bug: say so, and keep running on what runs
                log.exception("reload failed")
                answer = {"ok": False, "line": f"configuration not reloaded: {exc}"}
            self.notifier.ready(self.status_line())
            return answer

    def _reload(self) -> dict[str, Any]:
        from hikd.config.changes import applied, compare

        try:
            new = load_config(self.config_path)
            _check_sinks_and_jobs(new)
        except UserError as exc:
            return self._not_reloaded(exc)
        changes = compare(self.config, new)
        config = applied(self.config, new)
        hosts: dict[int, Any] = {}
        if "logging.level" in changes.live:  # here, and in every device host
            setup_logging(config.logging.level, config.logging.format)
        if changes.devices_changed or changes.live or changes.jobs:
            hosts = self._apply_devices(config, every_host=changes.every_host)
        if changes.allowed:
            self._renew_allowed(config)
        self.config = config
        line = changes.line()
        rearmed = sum(len(r.get("rearmed", ())) for r in hosts.values() if isinstance(r, dict))
        if rearmed:
            line += f"; {rearmed} device{'s' * (rearmed != 1)} armed again with the new [arming]"
        failed = {i: r for i, r in hosts.items() if isinstance(r, str)}
        if failed:
            line += "; " + "; ".join(f"device host {i}: {why}" for i, why in failed.items())
        log.info("configuration reloaded", changes=line)
        self.publish(health(HIKD, "reload", ok=True, summary=line, **changes.attributes()))
        return {"ok": True, "line": line, **changes.attributes()}

    def _apply_devices(self, config: Config, every_host: bool) -> dict[int, Any]:
        timeout = config.sdk.shutdown_timeout_s + STORED_WAIT_S
        if self.supervisor is not None:
            done = self.supervisor.reload(config, timeout, every_host)
            if self.fronts is not None:
                self.fronts.devices_changed()
            return done
        if self.host is not None:
            from hikd.hosts.host_reload import reload_devices

            enabled = [d for d in config.devices if d.enabled]
            return {0: reload_devices(self.host, config, enabled)}
        return {}

    def _renew_allowed(self, config: Config) -> None:
        """Who may push changed: the fronts check each new sender against the new lists."""
        from hikd.hosts.host_reload import renew_allowed

        if self.fronts is not None:
            renew_allowed(self.fronts.fronts, config.listen, self.fronts.resolver)
        elif self.host is not None:
            fronts = [s.front for s in self.host.listeners if s.front is not None]
            renew_allowed(fronts, config.listen, self.host.resolver)

    def _not_reloaded(self, error: UserError) -> dict[str, Any]:
        problems = error.problems if isinstance(error, ConfigError) else [str(error)]
        reason = problems[0]
        if len(problems) > 1:
            reason += f" (and {len(problems) - 1} more: hikd check-config lists them)"
        # A problem line may quote a value; one that is a secret must not leave hikd.
        line = redact(f"configuration not reloaded, hikd runs on as before: {reason}")
        log.error(line)
        self.publish(health(HIKD, "reload", ok=False, summary=line))
        return {"ok": False, "line": line}

    def _reload_in_background(self, _signum: int, _frame: Any) -> None:
        """SIGHUP: reload on a thread of its own (the signal handler must return)."""
        threading.Thread(target=self.reload, name="hikd-reload", daemon=True).start()

    # -- run ---------------------------------------------------------------------------
    def status_line(self) -> str:
        if self.supervisor is not None:
            devices = [d for host in self.supervisor.hosts() for d in host.devices]
            online = sum(1 for d in devices if d.state == "online")
            armed = sum(1 for d in devices if d.armed)
            total = len(devices)
        else:
            statuses = self.host.statuses() if self.host else []
            online = sum(1 for d in statuses if d.state == "online")
            armed = sum(1 for d in statuses if d.armed)
            total = len(statuses)
        return f"{online}/{total} devices online, {armed} armed"

    def run_forever(self) -> None:
        def on_signal(signum: int, _frame: Any) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, self._reload_in_background)
        self.notifier.ready(self.status_line())
        watchdog = watchdog_interval_s()
        tick = min(watchdog or 5.0, 5.0, 1.0 if self.supervisor else 5.0)
        last_status = ""
        while not self.stopping.wait(tick):
            if watchdog is not None and self._healthy():
                self.notifier.watchdog()
            status = self.status_line()
            if status != last_status:
                self.notifier.status(status)
                last_status = status

    def _healthy(self) -> bool:
        if self.supervisor is not None:
            # A crashed host is the supervisor's to restart; a listen front whose thread
            # ended leaves devices that push unheard: let systemd's watchdog restart hikd.
            fronts = self.fronts is None or self.fronts.alive()
            return self.supervisor.healthy() and fronts
        return self.host is not None and self.host.healthy()

    # -- stop --------------------------------------------------------------------------
    def stop(self) -> None:
        deadline = time.monotonic() + self.config.sdk.shutdown_timeout_s
        self.notifier.stopping()
        jobs_done = True
        self.commands.stop(timeout=max(0.1, min(2.0, deadline - time.monotonic() - 2)))
        if self.fronts is not None:
            self.fronts.stop()
        if self.supervisor is not None:
            self.supervisor.stop(deadline - 0.5)
        if self.host is not None:
            jobs_done = self.host.stop(deadline)
        self.observation.stop()
        if self.bus is not None:
            self.bus.stop(timeout=max(0.5, deadline - time.monotonic()))
        if self.outbox is not None:
            self.outbox.close()
        if self.host is not None:
            self.host.close(deadline, jobs_done)
        log.info("stopped")

    def publish(self, event: Event) -> None:
        """Every event of this process goes through here into the outbox."""
        if self.bus is not None:
            self.bus.publish(event)


def run(config_path: Path | None) -> int:
    config = load_config(config_path)
    setup_logging(config.logging.level, config.logging.format)
    # The vendor library runs in the device hosts, which route their own stderr; here fd 2
    # stays the real one, shared with them.
    daemon = Daemon(config, hosts="processes", config_path=config_path)
    try:
        daemon.start()
        daemon.run_forever()
    finally:
        daemon.stop()
    return 0


def _check_sinks_and_jobs(new: Config) -> None:
    """What `hikd check-config` checks beyond the model: the sink sections, the jobs against
    the devices (the jobs follow a reload, so the new ones are the ones that run)."""
    from hikd.jobs.config import validate_jobs
    from hikd.sinks.registry import validate_sinks

    validate_sinks(new.sinks)
    validate_jobs(new.jobs, [device.name for device in new.devices])
