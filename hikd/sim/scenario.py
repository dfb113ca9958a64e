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


class _Plan:
    """Which alarm goes where: round-robin over the devices, each cycling through the
    types and its channels; counts what was sent."""

    def __init__(self, devices: Sequence[SimDevice], templates: list[SimAlert], total: int):
        self.devices = devices
        self.templates = templates
        self.result = ScenarioResult(planned=total)
        self.by_type: Counter[str] = Counter()
        self.by_device: Counter[str] = Counter()
        self.alerts: dict[tuple[str, int], SimAlert] = {}
        self.sent = 0

    def next(self) -> tuple[SimDevice, SimAlert]:
        """The device and alarm of the next event."""
        i = self.sent
        device = self.devices[i % len(self.devices)]
        turn = i // len(self.devices)
        base = self.templates[turn % len(self.templates)]
        channels = max(1, device.config.channel_count)
        channel = 1 + (turn // len(self.templates)) % channels
        alert = self.alerts.get((base.type, channel))
        if alert is None:
            alert = SimAlert(base.type, channel, base.state, base.pictures, base.fmt)
            self.alerts[(base.type, channel)] = alert
        return device, alert

    def note(self, device: SimDevice, alert: SimAlert, seq: int) -> None:
        self.result.first_seq.setdefault(device.name, seq)
        self.by_type[alert.type] += 1
        self.by_device[device.name] += 1
        self.sent += 1

    def finish(self, start: float) -> ScenarioResult:
        self.result.sent = self.sent
        self.result.elapsed_s = time.monotonic() - start
        self.result.by_type = dict(self.by_type)
        self.result.by_device = dict(self.by_device)
        return self.result


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

    Paced by the clock: at each wake-up every alarm whose time (start + n / rate) has come
    is sent, then the loop sleeps until the next one's. An alarm is stamped
    (`hikdSimSentNs`) when it is written, so a late wake-up delays it but never falsifies
    its latency.
    """
    if rate <= 0 or duration <= 0 or not devices or not types:
        raise ValueError("a scenario needs rate > 0, duration > 0, devices and event types")
    templates = [SimAlert(type=t, pictures=pictures, fmt=fmt, state=state) for t in types]
    plan = _Plan(devices, templates, int(rate * duration))
    start = time.monotonic()
    if push_to is None:
        await _StreamSender(plan, rate, start, start + duration + GRACE_S).run()
    else:
        await _push_all(plan, rate, start, start + duration + GRACE_S, push_to)
    return plan.finish(start)


class _StreamSender:
    """Writes the plan's alarms to the alert streams from timer callbacks on the loop: a
    wake-up is one timer and one callback, not a task resumed through a future and a
    second pass of the loop (`asyncio.sleep`)."""

    def __init__(self, plan: _Plan, rate: float, start: float, deadline: float) -> None:
        self.plan, self.rate, self.start, self.deadline = plan, rate, start, deadline
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._drainer: asyncio.Task[None] | None = None

    async def run(self) -> None:
        self._tick()
        try:
            await self.done
        finally:  # cancelled (the simulator stops): no more alarms after this
            if self._timer is not None:
                self._timer.cancel()
            if self._drainer is not None:
                self._drainer.cancel()

    def _tick(self) -> None:
        if self.done.done():
            return
        try:
            finished = self._send_due()
        except Exception as error:  # the scenario's caller hears of it, not the loop's log
            self.done.set_exception(error)
            return
        if finished:
            self.done.set_result(None)

    def _send_due(self) -> bool:
        """Send what is due; True when the scenario is over."""
        plan, total = self.plan, self.plan.result.planned
        if time.monotonic() >= self.deadline:
            return True
        due = min(total, int((time.monotonic() - self.start) * self.rate) + 1)
        while plan.sent < due and (plan.sent % 256 or time.monotonic() < self.deadline):
            device, alert = plan.next()
            sent = device.alarms.send(alert, push=False)
            plan.result.stream_writes += sent.streams
            plan.note(device, alert, sent.seq)
            if device.alarms.backlog > BACKLOG_LIMIT:
                # The reader is behind: wait for it like a device whose TCP window is full.
                self._drainer = self.loop.create_task(self._drain(device))
                return False
        if plan.sent >= total:
            return True
        # The loop's clock is time.monotonic().
        self._timer = self.loop.call_at(self.start + plan.sent / self.rate, self._tick)
        return False

    async def _drain(self, device: SimDevice) -> None:
        remaining = max(0.0, self.deadline - time.monotonic())
        try:
            await asyncio.wait_for(device.alarms.drain(), remaining)
        except TimeoutError:
            if not self.done.done():
                self.done.set_result(None)
            return
        self._tick()


async def _push_all(
    plan: _Plan, rate: float, start: float, deadline: float, push_to: PushTarget
) -> None:
    """Listen mode: every alarm is POSTed (one connection each), not streamed."""
    pushes: set[asyncio.Task[None]] = set()
    gate = asyncio.Semaphore(MAX_CONCURRENT_PUSHES)
    result, total = plan.result, plan.result.planned

    async def push(device: SimDevice, alert: SimAlert, seq: int) -> None:
        try:
            outcome = await device.alarms.push(push_to, alert, seq)
        finally:
            gate.release()
        if outcome.delivered:
            result.pushed += 1
        else:
            result.push_failed += 1

    while plan.sent < total:
        now = time.monotonic()
        if now >= deadline:
            break
        due = min(total, int((now - start) * rate) + 1)
        while plan.sent < due and (plan.sent % 256 or time.monotonic() < deadline):
            device, alert = plan.next()
            seq = device.alarms.next_seq()
            await gate.acquire()
            task = asyncio.get_running_loop().create_task(push(device, alert, seq))
            pushes.add(task)
            task.add_done_callback(pushes.discard)
            plan.note(device, alert, seq)
            if device.alarms.backlog > BACKLOG_LIMIT:  # as in `_StreamSender`
                try:
                    remaining = max(0.0, deadline - time.monotonic())
                    await asyncio.wait_for(device.alarms.drain(), remaining)
                except TimeoutError:
                    break
        if plan.sent < total:
            await asyncio.sleep(max(0.0, start + plan.sent / rate - time.monotonic()))
    if pushes:
        # Pushes under way get the grace in full even when sending ran up to the deadline (a
        # loaded machine): a push cut off here is neither delivered nor failed.
        await asyncio.wait(list(pushes), timeout=max(GRACE_S, deadline - time.monotonic()))
