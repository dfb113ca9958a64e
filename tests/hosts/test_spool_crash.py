"""Nothing the listen front answered ``200`` is lost when the whole daemon dies (issue 11):
the real vendor library in the host, hikd.sim pushing, the disk sink. The front keeps each
push on disk (`hikd.listeners.spool`) before it answers; the next start relays what no host
had stored."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from hikd.sim import SimDeviceConfig, Simulator
from hikd.sim.alerts import SimAlert
from hikd.sim.push import PushResult
from tests.end_to_end import SECRET, START_TIMEOUT_S, HikdProcess, disk_events
from tests.hosts.configs import pushing_device_config
from tests.hosts.test_device_hosts import host_pids
from tests.hosts.test_nothing_lost import relaying_to_a_stopped_host
from tests.support import free_port, wait_until

DEVICE = "door"
AFTER_THE_HOST = 5
"""Pushes answered while the host restarts before the daemon is killed."""


def pushed_numbers(state: Path) -> Counter[int]:
    """How often each pushed alarm's number reached the disk sink, by event id (after a
    crash of `hikd run` a sink gets its last events again: the outbox delivers at least
    once), not counting copies marked ``resent`` (a number only so marked is a key, 0)."""
    found: Counter[int] = Counter()
    seen: set[str] = set()
    for event in disk_events(state):
        number = event.get("attributes", {}).get("push_no")
        if event["kind"] == "alarm" and number is not None and event["id"] not in seen:
            seen.add(event["id"])
            found[int(number)] += 0 if event["attributes"].get("resent") else 1
    return found


def test_pushes_answered_before_the_daemon_dies_are_delivered_after_its_restart(
    tmp_path: Path,
    run_hikd: Callable[[Path, Simulator], HikdProcess],
) -> None:
    """The host is stopped with a push relayed to it, then killed; pushes go on being
    answered 200 while it restarts; then `hikd run` itself is killed (SIGKILL, with the new
    host). After the next start every push answered 200 is on disk (those that may be there
    twice marked ``resent``)."""
    sim = Simulator([SimDeviceConfig(name=DEVICE, password=SECRET)]).start()
    try:
        device, port, state = sim.devices[0], free_port(), tmp_path / "state"
        config = tmp_path / "hikd.toml"
        config.write_text(pushing_device_config(config, DEVICE, device.port, port))
        hikd = run_hikd(config, sim)

        def push(number: int) -> PushResult:
            alert = SimAlert(type="fielddetection", channel=1, extra={"push_no": number})
            return device.push_to("127.0.0.1", port, alert)

        wait_until(lambda: push(0).status == 200, "the front relaying", START_TIMEOUT_S)
        wait_until(lambda: 0 in pushed_numbers(state), "the first push on disk", 30)
        accepted: list[int] = []
        stop = threading.Event()

        def pusher() -> None:
            number = 1
            while not stop.is_set():
                result = push(number)
                if result.status == 200:
                    accepted.append(number)
                elif result.error:
                    return  # the daemon is gone
                number += 1

        pid = host_pids(hikd)[0]
        os.kill(pid, signal.SIGSTOP)
        thread = threading.Thread(target=pusher, daemon=True)
        try:
            thread.start()
            wait_until(
                lambda: relaying_to_a_stopped_host(hikd.process.pid),
                "a push relayed to the stopped host",
                30,
            )
        finally:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: len(accepted) > AFTER_THE_HOST, "pushes kept while it restarts", 30)
        hikd.kill()
        stop.set()
        with contextlib.suppress(ProcessLookupError):  # the new host, orphaned
            os.kill(host_pids(hikd)[0], signal.SIGKILL)
        thread.join(30)
        answered = set(accepted)
        missing = answered - set(pushed_numbers(state))
        assert missing, "all were stored before the kill"
        again = run_hikd(config, sim)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: answered <= set(pushed_numbers(state)), "accepted on disk", 60)
        assert sorted(answered - set(pushed_numbers(state))) == [], again.output()
        assert [n for n in answered if pushed_numbers(state)[n] > 1] == []  # unmarked copies
        # Read back, they are marked (a host may have stored them before the end): through
        # the new host's `SenderAlias.again`.
        assert any(pushed_numbers(state)[n] == 0 for n in missing), missing
        assert "pushed alarms kept from the run before" in again.log.read_text()
        assert any(e["type"] == "device_host_crashed" for e in disk_events(state))
    finally:
        sim.stop()
