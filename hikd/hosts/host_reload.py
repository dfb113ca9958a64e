"""A device host applies a reload: its new list of devices (`hikd.config.changes`).

Added devices log in and arm; removed ones are disarmed and logged out, their open alarms
closed (``ended_by: "device_removed"`` or ``"device_disabled"``) and an ``offline`` said;
changed ones (any key) are logged out and log in again with their new configuration, their
open alarms left to end as usual (hold time, or the device's own stop). Backfill follows:
added devices' gaps are read back from now on, removed ones' no more. The sessions of
untouched devices, their arming and their open alarms stay exactly as they were.

`renew_allowed` gives the listen fronts (in the supervisor, or in the one inline host) the
senders a reload allows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hikd.addresses import AddressSet, NameRefresher
from hikd.devices.closing import close_sessions
from hikd.errors import UserError
from hikd.events import health
from hikd.plain_config import device_keys

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig, ListenConfig
    from hikd.hosts.device_host import DeviceHost
    from hikd.listeners.front import ListenFront

log = structlog.get_logger("hikd.daemon")

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
    return {"added": added, "removed": sorted(removed), "changed": changed, "alarms_closed": closed}


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
