"""A paced load of alarms over many devices, for tests, benchmarks and `hikd sim scenario`.

Bounded in count (rate x duration events) and in time (the duration plus a short grace
when the receivers push back). Events go round-robin over the devices; each device cycles
through the types and its channels.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hikd.sim.alerts import AlertFormat, SimAlert
from hikd.sim.config import PushTarget

if TYPE_CHECKING:
    from hikd.sim.device import SimDevice

BACKLOG_LIMIT = 1 << 20
"""Bytes queued on one stream before the scenario waits for the reader (TCP push-back)."""
MAX_CONCURRENT_PUSHES = 32
GRACE_S = 2.0


@dataclass(slots=True)
class ScenarioResult:
    planned: int
    sent: int = 0
    stream_writes: int = 0
    """Sum over events of the streams each was written to."""
    pushed: int = 0
    """POSTs that reached the push target."""
    push_failed: int = 0
    elapsed_s: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)
    by_device: dict[str, int] = field(default_factory=dict)
    first_seq: dict[str, int] = field(default_factory=dict)
    """Per device, the hikdSimSeq of its first scenario event (they are consecutive)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "sent": self.sent,
            "stream_writes": self.stream_writes,
            "pushed": self.pushed,
            "push_failed": self.push_failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "by_type": self.by_type,
            "by_device": self.by_device,
            "first_seq": self.first_seq,
        }


async def run_scenario(
    devices: Sequence[SimDevice],
    rate: float,
    types: Sequence[str],
    duration: float,
    *,
    push_to: PushTarget | None = None,
    pictures: int = 0,
    fmt: AlertFormat = "xml",
    state: Literal["active", "inactive"] = "active",
) -> ScenarioResult:
    """Send `rate` alarms per second in total for `duration` seconds. On the loop.

    Without `push_to` each alarm is written to its device's open alert streams; with it,
    each is POSTed there instead (at most 32 POSTs at a time, like 32 devices).
    """
    if rate <= 0 or duration <= 0 or not devices or not types:
        raise ValueError("a scenario needs rate > 0, duration > 0, devices and event types")
    templates = [SimAlert(type=t, pictures=pictures, fmt=fmt, state=state) for t in types]
    total = int(rate * duration)
    result = ScenarioResult(planned=total)
    by_type: Counter[str] = Counter()
    by_device: Counter[str] = Counter()
    pushes: set[asyncio.Task[None]] = set()
    gate = asyncio.Semaphore(MAX_CONCURRENT_PUSHES)
    alerts: dict[tuple[str, int], SimAlert] = {}

    async def push(device: SimDevice, alert: SimAlert, seq: int) -> None:
        assert push_to is not None
        try:
            outcome = await device.alarms.push(push_to, alert, seq)
        finally:
            gate.release()
        if outcome.delivered:
            result.pushed += 1
        else:
            result.push_failed += 1

    start = time.monotonic()
    deadline = start + duration + GRACE_S
    n_dev = len(devices)
    i = 0
    while i < total:
        now = time.monotonic()
        if now >= deadline:
            break
        due = min(total, int((now - start) * rate) + 1)
        while i < due and (i % 256 or time.monotonic() < deadline):
            device = devices[i % n_dev]
            turn = i // n_dev
            base = templates[turn % len(templates)]
            channels = max(1, device.config.channel_count)
            channel = 1 + (turn // len(templates)) % channels
            alert = alerts.get((base.type, channel))
            if alert is None:
                alert = SimAlert(base.type, channel, base.state, base.pictures, base.fmt)
                alerts[(base.type, channel)] = alert
            if push_to is None:
                sent = device.alarms.send(alert, push=False)
                seq = sent.seq
                result.stream_writes += sent.streams
            else:
                # Listen mode: the event is POSTed (one connection each), not streamed.
                seq = device.alarms.next_seq()
                await gate.acquire()
                task = asyncio.get_running_loop().create_task(push(device, alert, seq))
                pushes.add(task)
                task.add_done_callback(pushes.discard)
            result.first_seq.setdefault(device.name, seq)
            by_type[alert.type] += 1
            by_device[device.name] += 1
            i += 1
            if device.alarms.backlog > BACKLOG_LIMIT:
                # The reader is behind: wait for it like a device whose TCP window is full.
                remaining = max(0.0, deadline - time.monotonic())
                try:
                    await asyncio.wait_for(device.alarms.drain(), remaining)
                except TimeoutError:
                    break
        if i < total:
            next_due = start + i / rate
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))
    result.sent = i
    if pushes:
        await asyncio.wait(list(pushes), timeout=max(1.0, deadline - time.monotonic()))
    result.elapsed_s = time.monotonic() - start
    result.by_type = dict(by_type)
    result.by_device = dict(by_device)
    return result
