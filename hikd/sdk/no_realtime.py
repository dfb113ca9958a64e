"""Keep the vendor library's threads out of real-time scheduling, as the systemd unit does.

The library calls ``sched_setscheduler(SCHED_FIFO, 1)`` for each thread it starts (README
"Vendor-library notes": 128 of a device host's ~200 threads under 32 armed devices) and
carries on when that is refused, as it is for any unprivileged user and under the unit's
``RestrictRealtime=yes``. Run as root outside that unit, it got its way: its threads then
took a core from everything else whenever they were runnable, and with the C alarm callback
(which never waits for Python's lock) the device host's own decoder fell behind them on a
busy machine. A device host refuses the scheduling calls to itself before it starts any
thread, so every process of hikd runs its threads as the unit would, however started.
"""

from __future__ import annotations

import errno

from hikd.sdk import seccomp_bpf as bpf

_REFUSED = (
    142,  # sched_setparam
    144,  # sched_setscheduler
    314,  # sched_setattr
)

_PROGRAM = bpf.on_x86_64(
    [
        bpf.instruction(bpf.LD_W_ABS, 0, 0, bpf.NR),
        *(
            bpf.instruction(bpf.JEQ_K, len(_REFUSED) - i, 0, number)
            for i, number in enumerate(_REFUSED)
        ),
        bpf.instruction(bpf.RET_K, 0, 0, bpf.ALLOW),
        bpf.instruction(bpf.RET_K, 0, 0, bpf.ERRNO | errno.EPERM),
    ]
)


def refuse_realtime() -> bool:
    """Refuse the scheduling calls (EPERM) to the calling thread and every thread it creates
    from now on; call it before any other thread starts. False where that is not possible."""
    return bpf.install_here(_PROGRAM)
