"""Small seccomp filters for the vendor library's threads, in classic BPF (linux/filter.h).

A filter installed with ``prctl(PR_SET_SECCOMP)`` binds the calling thread and the threads
it creates from then on; hikd's other threads are not bound. x86-64 Linux only (the vendor
library is built for nothing else); elsewhere nothing is installed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import struct

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_AUDIT_ARCH_X86_64 = 0xC000003E
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
"""SECCOMP_RET_ERRNO: or'ed with the errno the call returns."""

# Classic BPF opcodes.
LD_W_ABS = 0x20
JEQ_K = 0x15
RET_K = 0x06

# struct seccomp_data: int nr @0, __u32 arch @4, __u64 instruction_pointer @8, args @16.
NR = 0
ARCH = 4
ARG0 = 16


def instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def on_x86_64(body: list[bytes]) -> bytes:
    """`body` for x86-64 system calls; any other ABI's calls are allowed."""
    return b"".join(
        [
            instruction(LD_W_ABS, 0, 0, ARCH),
            instruction(JEQ_K, 0, len(body), _AUDIT_ARCH_X86_64),
            *body,
            instruction(RET_K, 0, 0, ALLOW),
        ]
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_char_p))


def install_here(program: bytes) -> bool:
    """Bind the calling thread, and the threads it creates from now on, to `program`. False
    where that is not possible (not x86-64 Linux, seccomp off)."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_char_p))
    # A filter may only be installed without CAP_SYS_ADMIN once no_new_privs is set; it is
    # per thread as well, and nothing here or in the library executes a set-uid program.
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return bool(libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0)
