"""The command path (`hikd.commands`): checking, queueing, recording, never blocking.

The device side is a plain function here: these tests are about the runner's own promises
(a hung device never blocks `submit`; queues are bounded; every command is recorded), which
no device can be made to show on demand. Commands on real sessions: tests/devices/,
tests/standin/ and tests/sinks/mqtt/test_commands.py.
"""

from __future__ import annotations

import pickle
import threading

from hikd.commands import Command, CommandResult, CommandRunner, command_event
from hikd.events import DeviceRef
from tests.support import Collector, wait_for


def test_commands_and_results_cross_a_process_boundary() -> None:
    command = Command("nvr", "detection", 2, True, "motion", who="mqtt hikd/nvr/2/motion/set")
    result = CommandResult.done(DeviceRef("nvr", "SERIAL1", "192.0.2.1:80"), ("/x.jpg",))
    assert pickle.loads(pickle.dumps(command)) == command
    assert pickle.loads(pickle.dumps(result)) == result


def test_the_event_says_who_asked_what_and_how_it_ended() -> None:
    command = Command("nvr", "output", 1, on=True, who="mqtt hikd/nvr/output1/set")
    event = command_event(command, CommandResult.failed("timed out", DeviceRef("nvr", "S1")))
    assert (event.kind, event.type, event.state, event.channel) == (
        "command",
        "output",
        "pulse",
        None,
    )
    assert event.device.serial == "S1"
    assert event.attributes == {
        "command_id": command.id,
        "who": "mqtt hikd/nvr/output1/set",
        "what": "switch output 1 on",
        "target": 1,
        "outcome": "failed",
        "on": True,
        "reason": "timed out",
    }


def test_a_hung_device_blocks_neither_submit_nor_the_other_devices() -> None:
    release = threading.Event()
    hung = threading.Event()
    ran: list[str] = []

    def execute(command: Command) -> CommandResult:
        if command.device == "slow":
            hung.set()
            release.wait(10)
        ran.append(f"{command.device}{command.target}")
        return CommandResult.done()

    events = Collector()
    # Two workers: "slow" and "fast" hash to different ones (crc32 of the names).
    runner = CommandRunner(execute, events, lambda: {"slow", "fast"}, workers=2, queue_size=2)
    try:
        runner.submit(Command("slow", "snapshot", 1))
        assert hung.wait(10)
        for n in range(2, 6):  # two wait, two find the queue full
            runner.submit(Command("slow", "snapshot", n))
        runner.submit(Command("fast", "snapshot", 1))
        runner.submit(Command("fast", "snapshot", 2))
        assert wait_for(lambda: ran == ["fast1", "fast2"])
        full = [e for e in events.events if e.attributes["outcome"] == "refused"]
        assert [e.channel for e in full] == [4, 5]
        assert "too many commands waiting for slow" in full[0].attributes["reason"]
        release.set()
        assert wait_for(lambda: len(ran) == 5)
        assert ran[2:] == ["slow1", "slow2", "slow3"]  # in order
    finally:
        release.set()
        runner.stop()


def test_unknown_devices_and_malformed_commands_are_refused_at_once() -> None:
    events = Collector()
    runner = CommandRunner(lambda c: CommandResult.done(), events, lambda: {"nvr"})
    runner.submit(Command("garage", "output", 1, on=True))
    runner.submit(Command("nvr", "output", 0, on=True))
    runner.submit(Command("nvr", "detection", 1, True, "smoke"))
    runner.submit(Command("nvr", "output", 1, on=True, refused="a retained command message"))
    reasons = [(e.device.name, e.attributes["reason"]) for e in events.events]
    assert reasons == [
        ("hikd", "no device named 'garage' is configured"),
        ("nvr", "output 0: numbers start at 1"),
        ("nvr", "unknown detection 'smoke' (known: motion, line_crossing, intrusion)"),
        ("nvr", "a retained command message"),
    ]
    assert events.events[0].attributes["device"] == "garage"
    runner.stop()


def test_a_bug_in_the_device_side_is_a_failed_command_not_a_dead_worker() -> None:
    calls: list[int] = []

    def execute(command: Command) -> CommandResult:
        calls.append(command.target)
        if command.target == 1:
            raise RuntimeError("boom")
        return CommandResult.done()

    events = Collector()
    runner = CommandRunner(execute, events, lambda: {"nvr"}, workers=1)
    try:
        runner.submit(Command("nvr", "snapshot", 1))
        runner.submit(Command("nvr", "snapshot", 2))
        assert wait_for(lambda: len(events.events) == 2)
        assert [e.attributes["outcome"] for e in events.events] == ["failed", "done"]
        assert events.events[0].attributes["reason"] == "RuntimeError: boom"
    finally:
        runner.stop()


def test_after_stop_commands_are_refused() -> None:
    events = Collector()
    runner = CommandRunner(lambda c: CommandResult.done(), events, lambda: {"nvr"})
    runner.stop()
    runner.submit(Command("nvr", "snapshot", 1))
    assert [e.attributes["reason"] for e in events.events] == ["hikd is stopping"]
