"""The session workers (`hikd.devices.workers`): many devices' steps on a few threads, and a
hung step holds up only its own device.

The steps here are plain Python functions: the pool never calls the vendor library itself,
and a vendor call that hangs for good cannot be produced on demand (a blocked function
stands in for it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hikd.devices.workers import Steps, Workers
from tests.support import wait_for


def test_the_steps_of_many_devices_run_on_a_few_threads() -> None:
    workers = Workers(busy_limit=4)
    done: list[int] = []
    lock = threading.Lock()
    peak = 0

    def step(n: int) -> Callable[[], None]:
        def run() -> None:
            nonlocal peak
            with lock:
                done.append(n)
                peak = max(peak, workers.threads())

        return run

    devices = [Steps(workers) for _ in range(200)]
    for n, steps in enumerate(devices):
        steps.run_at(0.0, step(n))
    assert wait_for(lambda: len(done) == 200)
    assert sorted(done) == list(range(200))
    assert peak <= 4
    assert all(steps.join(5) for steps in devices)


def test_a_step_schedules_the_next_one_of_its_device() -> None:
    workers = Workers()
    steps = Steps(workers)
    seen: list[str] = []

    def check(n: int) -> None:
        seen.append(f"check {n}")
        if n < 3:
            steps.run_at(0.01, lambda: check(n + 1))

    steps.run_at(0.0, lambda: (seen.append("login"), steps.run_at(0.01, lambda: check(1))))
    assert wait_for(lambda: len(seen) == 4)
    assert steps.join(5)
    assert seen == ["login", "check 1", "check 2", "check 3"]


def test_a_hung_step_does_not_hold_up_other_devices() -> None:
    """Every worker allowed is stuck in a call that does not return: the other devices'
    steps still run, on a worker started beside the stuck ones."""
    workers = Workers(busy_limit=2, stuck_s=0.2)
    release = threading.Event()
    hung = [Steps(workers) for _ in range(2)]
    started = threading.Semaphore(0)

    def hang() -> None:
        started.release()
        release.wait(60)

    try:
        for steps in hung:
            steps.run_at(0.0, hang)
        assert started.acquire(timeout=10) and started.acquire(timeout=10)
        ran = threading.Event()
        Steps(workers).run_at(0.0, ran.set)
        assert ran.wait(15)
        assert not release.is_set()
    finally:
        release.set()
    assert all(steps.join(10) for steps in hung)


def test_wake_runs_the_waiting_step_now_and_cancel_drops_it() -> None:
    workers = Workers()
    woken, dropped = threading.Event(), threading.Event()
    first, second = Steps(workers), Steps(workers)
    first.run_at(3600.0, woken.set)
    second.run_at(3600.0, dropped.set)
    first.wake()
    assert woken.wait(15)
    second.cancel()
    assert second.join(5)
    assert first.join(5)
    assert not dropped.is_set()


def test_a_wake_while_a_step_runs_makes_the_next_step_run_at_once() -> None:
    workers = Workers()
    steps = Steps(workers)
    inside, go_on, next_ran = threading.Event(), threading.Event(), threading.Event()

    def step() -> None:
        inside.set()
        go_on.wait(10)
        steps.run_at(3600.0, next_ran.set)  # a check in an hour, unless woken meanwhile

    steps.run_at(0.0, step)
    assert inside.wait(10)
    steps.wake()
    go_on.set()
    assert next_ran.wait(15)


def test_a_failing_step_is_logged_and_the_worker_goes_on() -> None:
    workers = Workers(busy_limit=1)
    after = threading.Event()

    def fail() -> None:
        raise RuntimeError("a bug in a step")

    broken = Steps(workers)
    broken.run_at(0.0, fail)
    assert broken.join(10)
    Steps(workers).run_at(0.0, after.set)
    assert after.wait(10)
