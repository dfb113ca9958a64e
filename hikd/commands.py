"""Commands: the one flow from a sink back to a device (architecture.md, "Processes").

A sink (MQTT, with ``[sinks.mqtt] commands = true``) turns what a user sends into a
`Command` and hands it to the daemon's `CommandRunner.submit`, which never blocks: it
checks the command, queues it (bounded, in order per device) and returns. Worker threads
have it carried out on the device's session (`hikd.devices.commands`), so a slow or dead
device never stalls the sink's network loop, and alarms never wait for a command.

Every command, whether carried out, failed or refused, becomes an event of kind
``command``: who sent it (the sink and topic) and what it asked, never a secret.

`Command` and `CommandResult` are plain, picklable dataclasses: a command crosses from
the delivery process to the process that owns the device's session.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from hikd.events import DeviceRef, Event, new_event_id

log = structlog.get_logger("hikd.commands")

OUTPUT = "output"
SNAPSHOT = "snapshot"
DETECTION = "detection"
ACTIONS = (OUTPUT, SNAPSHOT, DETECTION)
"""Switch an alarm output, take a snapshot of a channel, switch a detection on or off."""

DETECTIONS = ("motion", "line_crossing", "intrusion")
"""The detections a command can switch, by hikd's alarm type names."""

HIKD = DeviceRef("hikd")
"""Where a command for a device hikd does not know is recorded: hikd's own pseudo-device
(the one of its own health events), so a stray topic never creates a device."""

Outcome = Literal["done", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class Command:
    """One thing a user asked a device to do."""

    device: str
    """The device's configured name."""
    action: str
    """One of `ACTIONS`."""
    target: int
    """The alarm output's number (from 1, as the device's ISAPI ids) or the channel
    (hikd's numbering, README "Channel numbers")."""
    on: bool | None = None
    """Switch on or off (outputs and detections)."""
    detection: str = ""
    """For `DETECTION`: one of `DETECTIONS`."""
    who: str = ""
    """Where the command came from, e.g. ``mqtt hikd/nvr/output1/set``."""
    refused: str = ""
    """Why the sink that received it refuses it already (e.g. a retained MQTT message)."""
    id: str = field(default_factory=new_event_id)

    @property
    def channel(self) -> int | None:
        return None if self.action == OUTPUT else self.target

    def describe(self) -> str:
        """What it asks, in words: ``switch output 1 on``."""
        state = {True: " on", False: " off", None: ""}[self.on]
        if self.action == OUTPUT:
            return f"switch output {self.target}{state}"
        if self.action == SNAPSHOT:
            return f"take a snapshot of channel {self.target}"
        if self.action == DETECTION:
            words = self.detection.replace("_", " ")
            return f"switch {words} detection on channel {self.target}{state}"
        return self.action

    def problem(self) -> str:
        """Why this command cannot be carried out by any device ("" when it can be tried)."""
        if self.refused:
            return self.refused
        if self.action not in ACTIONS:
            return f"unknown action {self.action!r} (known: {', '.join(ACTIONS)})"
        if self.target < 1:
            what = "output" if self.action == OUTPUT else "channel"
            return f"{what} {self.target}: numbers start at 1"
        if self.action in (OUTPUT, DETECTION) and self.on is None:
            return "say ON or OFF"
        if self.action == DETECTION and self.detection not in DETECTIONS:
            return f"unknown detection {self.detection!r} (known: {', '.join(DETECTIONS)})"
        return ""


@dataclass(frozen=True, slots=True)
class CommandResult:
    outcome: Outcome
    reason: str = ""
    """Why it was refused or failed; empty when done."""
    device: DeviceRef | None = None
    """The device as its session knows it (serial, address), when known."""
    files: tuple[str, ...] = ()
    """What the command wrote (a snapshot's JPEG)."""

    @classmethod
    def done(cls, device: DeviceRef | None = None, files: tuple[str, ...] = ()) -> CommandResult:
        return cls("done", "", device, files)

    @classmethod
    def refused(cls, reason: str, device: DeviceRef | None = None) -> CommandResult:
        return cls("refused", reason, device)

    @classmethod
    def failed(cls, reason: str, device: DeviceRef | None = None) -> CommandResult:
        return cls("failed", reason, device)


def command_event(command: Command, result: CommandResult, known: bool = True) -> Event:
    """The event that records one command and how it ended. A command for a device hikd
    does not know (``known`` False) is recorded on hikd's own pseudo-device."""
    attributes: dict[str, Any] = {
        "command_id": command.id,
        "who": command.who,
        "what": command.describe(),
        "target": command.target,
        "outcome": result.outcome,
    }
    if command.on is not None:
        attributes["on"] = command.on
    if command.detection:
        attributes["detection"] = command.detection
    if result.reason:
        attributes["reason"] = result.reason
    if result.files:
        # Named, not attached: the file event that follows carries the picture itself
        # (a sink publishing every event's pictures would send it twice).
        attributes["files"] = list(result.files)
    if known:
        device = result.device or DeviceRef(command.device)
    else:
        device = HIKD
        attributes["device"] = command.device
    return Event(
        kind="command",
        type=command.action if command.action in ACTIONS else "unknown",
        state="pulse",
        device=device,
        channel=command.channel if known else None,
        attributes=attributes,
    )


Execute = Callable[[Command], CommandResult]
"""Carries out one checked command on its device's session and says how it went."""

SubmitCommand = Callable[[Command], None]
"""What a sink calls with a command; it returns at once (the seam sinks see)."""


class CommandRunner:
    """Checks, queues and carries out commands; records each as an event.

    Commands of one device run in order on one worker; devices are spread over a few
    workers by a stable hash of their name, so a device that hangs holds up only the
    commands that share its worker. Each worker's queue is bounded: a command that finds
    it full is refused at once ("too many commands waiting").
    """

    def __init__(
        self,
        execute: Execute,
        publish: Callable[[Event], None],
        devices: Callable[[], Collection[str]],
        workers: int = 4,
        queue_size: int = 16,
    ) -> None:
        self.execute = execute
        """Replaceable: today the daemon's sessions, later the process owning the device."""
        self._publish = publish
        self._devices = devices
        self._queues: list[queue.Queue[Command | None]] = [
            queue.Queue(maxsize=queue_size) for _ in range(max(1, workers))
        ]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = False

    def submit(self, command: Command) -> None:
        """Check and queue `command`; never blocks. Thread-safe."""
        problem = command.problem()
        known = command.device in self._devices()
        if not known:
            problem = problem or f"no device named {command.device!r} is configured"
        if problem:
            self.record(command, CommandResult.refused(problem), known=known)
            return
        if not self._start():
            self.record(command, CommandResult.refused("hikd is stopping"))
            return
        shard = self._queues[zlib.crc32(command.device.encode()) % len(self._queues)]
        try:
            shard.put_nowait(command)
        except queue.Full:
            self.record(
                command,
                CommandResult.refused(
                    f"too many commands waiting for {command.device} or devices sharing its "
                    "worker; try again when they are done"
                ),
            )

    def record(self, command: Command, result: CommandResult, known: bool = True) -> None:
        """Log and publish how `command` ended."""
        fields = {
            "device": command.device,
            "what": command.describe(),
            "who": command.who,
            "command_id": command.id,
        }
        if result.outcome == "done":
            log.info("command carried out", **fields)
        else:
            log.warning(f"command {result.outcome}", reason=result.reason, **fields)
        self._publish(command_event(command, result, known))

    def _start(self) -> bool:
        """Start the workers on first use (most installations never send a command)."""
        with self._lock:
            if self._stopped:
                return False
            if not self._threads:
                for index, shard in enumerate(self._queues):
                    thread = threading.Thread(
                        target=self._work, args=(shard,), name=f"commands-{index}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
            return True

    def _work(self, shard: queue.Queue[Command | None]) -> None:
        while True:
            command = shard.get()
            if command is None:
                return
            try:
                result = self.execute(command)
            except Exception as error:
                # A bug, not the device: say so, and keep the worker alive.
                log.exception("command failed unexpectedly", command_id=command.id)
                result = CommandResult.failed(f"{type(error).__name__}: {error}")
            try:
                self.record(command, result)
            except Exception:
                log.exception("cannot record a command", command_id=command.id)

    def stop(self, timeout: float = 2.0) -> None:
        """Let the workers finish what they run; commands still queued are dropped (a
        user's click from before a restart should not fire after it)."""
        with self._lock:
            self._stopped = True
            threads, self._threads = self._threads, []
        for shard in self._queues:
            while True:
                try:
                    command = shard.get_nowait()
                except queue.Empty:
                    break
                if command is not None:
                    self.record(command, CommandResult.refused("hikd stopped before it ran"))
            with contextlib.suppress(queue.Full):
                shard.put_nowait(None)
        for thread in threads:
            thread.join(timeout)
