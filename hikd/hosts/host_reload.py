"""A device host applies a reload: its new list of devices (`hikd.config.changes`).

Added devices log in and arm; removed ones are disarmed and logged out, their open alarms
closed (``ended_by: "device_removed"`` or ``"device_disabled"``) and an ``offline`` said;
changed ones (any key) are logged out and log in again with their new configuration, their
open alarms left to end as usual (hold time, or the device's own stop). Backfill follows:
added devices' gaps are read back from now on, removed ones' no more. The sessions of
untouched devices, their arming and their open alarms stay exactly as they were.

``[alarms]`` and ``[arming]`` apply too (`reload_settings`): hold times and one-shot types
to the alarms that start from now on (an open alarm keeps the hold it started with); new
arming options to every device armed from now on, and the devices armed already are armed
again with them (one alarm channel closed and opened: the library reconnects the same way,
sdk-over-isapi.md part 1 §3). Retry and heartbeat settings take effect at once.

Jobs are rescheduled last (`hikd.jobs.scheduler.JobScheduler.reschedule`): each on the
devices of this host it names now; a run in progress finishes.

`renew_allowed` gives the listen fronts (in the supervisor, or in the one inline host) the
senders a reload allows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hikd.addresses import AddressSet, NameRefresher
from hikd.devices.closing import close_sessions
from hikd.errors import UserError
from hikd.events import health
from hikd.listeners.arming import arming_options
from hikd.listeners.decode.types import ONE_SHOT_TYPES
from hikd.plain_config import device_keys

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig, ListenConfig
    from hikd.devices.session import DeviceSession
    from hikd.hosts.device_host import DeviceHost
    from hikd.listeners.front import ListenFront

log = structlog.get_logger("hikd.daemon")

REARM_THREADS = 8
"""Devices armed again at once when a reload changes ``[arming]``."""
DECODER_WAIT_S = 10.0
"""How long the reload waits for the decoder to end a removed device's alarms."""


def reload_devices(
    host: DeviceHost, config: Config, devices: Sequence[DeviceConfig]
) -> dict[str, Any]:
    """Make `host` run `devices` (the enabled ones it owns under `config`); what it did."""
    old = {d.name: d for d in host.devices}
    new = {d.name: d for d in devices}
    listed = {d.name for d in config.devices}
    removed = {
        n: "device_disabled" if n in listed else "device_removed" for n in old if n not in new
    }
    changed = [n for n, d in new.items() if n in old and device_keys(old[n], d)]
    added = [n for n in new if n not in old]
    going = [s for s in host.sessions if s.name in removed or s.name in changed]
    staying = [s for s in host.sessions if s not in going]
    if going:
        close_sessions(going, config.sdk.shutdown_timeout_s, reason="configuration reloaded")
        gone = {s.name for s in going}
        host.sessions = [s for s in host.sessions if s.name not in gone]
    closed = _end_alarms(host, removed)
    for session in going:
        if session.name in removed:
            why = "disabled in the configuration"
            if removed[session.name] == "device_removed":
                why = "removed from the configuration"
            host.publish(health(session.device, "offline", reason=why))
    rearm = reload_settings(host, config)
    host.config = config
    host.devices = list(devices)
    if host.backfill is not None:  # before the added devices log in: their gaps count
        host.backfill.devices_changed(host.devices)
    else:  # the first device of this host to read back its gaps
        host._start_backfill(Path(config.daemon.state_dir))
    starting = [host.new_session(new[name]) for name in [*changed, *added]]
    host.sessions = [*host.sessions, *starting]
    if host.resolver is not None:  # pushes are matched by address: resolve the new names
        host.resolver.watch(host.directory.address_sets())
    for session in starting:
        session.start()
    rearmed = rearm(staying)
    jobs = _reload_jobs(host)
    if removed or changed or added:
        # Stored before the answer: the supervisor's `reload` event, which makes `hikd
        # status` forget the removed devices, must come after their last events.
        try:
            host.publishing.stored()
        except UserError as exc:  # a full disk: they are stored later; the reload is done
            log.warning("the removed devices' last events are not stored yet", error=str(exc))
        log.info(
            "devices reloaded",
            added=added,
            removed=sorted(removed),
            changed=changed,
            alarms_closed=closed,
        )
    if rearmed:
        log.info("devices armed again with the new [arming]", devices=rearmed)
    return {
        "added": added,
        "removed": sorted(removed),
        "changed": changed,
        "alarms_closed": closed,
        "rearmed": rearmed,
        "jobs": jobs,
    }


def reload_settings(
    host: DeviceHost, config: Config
) -> Callable[[Sequence[DeviceSession]], list[str]]:
    """Apply ``[alarms]`` and ``[arming]`` of `config` where they differ from the host's; the
    options go to the devices armed from now on. What to call with the sessions that stay:
    it arms those armed already again if the options changed, and names them."""
    old, pipeline, arming = host.config, host.pipeline, host.arming
    if old.alarms != config.alarms and pipeline is not None:
        # Types the decoders know to be one-shot stay so, as at start (`DeviceHost.start`).
        pulses = set(config.alarms.pulse_types) | set(ONE_SHOT_TYPES)
        pipeline.tracker.retune(dict(config.alarms.hold_s), pulses)
    if old.arming == config.arming or arming is None:
        return lambda _sessions: []
    arming.retry_s = config.arming.retry_s
    if host.stream_watch is not None:
        host.stream_watch.set_misses(config.arming.heartbeat_misses)
    options = arming_options(config.arming)
    if options == arming.options:
        return lambda _sessions: []
    arming.options = options

    def rearm(sessions: Sequence[DeviceSession]) -> list[str]:
        armed = [s for s in sessions if arming.is_armed(s.name)]

        def again(part: Sequence[DeviceSession]) -> None:
            for session in part:
                arming.disarm(session)
                arming.arm(session)

        # A few at a time: one after the other, 128 devices took 11 s of the reload's answer.
        threads = [
            threading.Thread(target=again, args=(armed[i::REARM_THREADS],), name="hikd-rearm")
            for i in range(min(REARM_THREADS, len(armed)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [s.name for s in armed]

    return rearm


def _reload_jobs(host: DeviceHost) -> dict[str, list[str]]:
    """The host's jobs as its configuration says now: added, removed, changed by name."""
    if host.scheduler is not None:
        return host.scheduler.reschedule(host.jobs())
    if not host.config.jobs:
        return {}
    host._start_jobs(Path(host.config.daemon.state_dir))  # the first jobs of this host
    assert host.scheduler is not None
    return {"added": [spec.name for spec in host.scheduler.specs]}


def _end_alarms(host: DeviceHost, removed: dict[str, str]) -> int:
    """On the decoder thread, after the messages queued so far: stop each open alarm of the
    removed devices and forget them. How many alarms were closed."""
    pipeline = host.pipeline
    if not removed or pipeline is None:
        return 0
    done = threading.Event()
    closed = 0

    def errand() -> None:
        nonlocal closed
        try:
            for name, why in removed.items():
                for stop in pipeline.tracker.end_device(name, why):
                    host.publish(stop)
                    closed += 1
                host.directory.remove(name)
        finally:
            done.set()

    pipeline.on_decoder(errand)
    if not done.wait(DECODER_WAIT_S):
        log.warning("the alarm decoder did not end the removed devices' alarms in time")
    return closed


def renew_allowed(
    fronts: Iterable[ListenFront], listens: Sequence[ListenConfig], resolver: NameRefresher | None
) -> None:
    """Each front lets in the senders its ``[[listen]]`` allows now (a reload added or removed
    a device, whose addresses the default allow-list is made of, or changed ``allowed``).
    Names are resolved before the new list takes over, so no allowed sender is refused in
    between; a connection already accepted is served to its end."""
    by_port = {listen.port: listen for listen in listens}
    for front in fronts:
        listen = by_port.get(front.port)
        if listen is None:
            continue
        allowed = AddressSet(listen.allowed, where=f"listen port {listen.port}")
        if resolver is not None:
            resolver.watch([allowed])
        front.allowed = allowed  # one assignment: the front's loop reads it per connection
