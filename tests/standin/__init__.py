"""The stand-in library: a small C library with libhcnetsdk.so's function names and struct
layouts, answering like a private-protocol device.

The real library cannot be driven down its private-protocol code paths here (the private
protocol cannot be simulated, and over ISAPI it refuses those calls: sdk-over-isapi.md part
2 c, d, f). Tests of those paths (device-side backup, structured work status, JPEG capture,
configuration export, log pull on a private session) load this library through the same
`hikd.sdk` code instead, as a second `Library` object: the real one stays the process's
`Library.open()` singleton, and nothing here calls NET_DVR_Init on it.

`build(folder)` writes the C header from hikd's own cffi declarations (``hikd/sdk/_cdef.py``),
so the stand-in's struct layouts are the ones hikd uses, and compiles ``standin.c`` with
``gcc -shared -fPIC``.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hikd.sdk._cdef import CDEF, STRUCTS
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

SOURCE = Path(__file__).with_name("standin.c")

# What the stand-in serves, computed the same way as in standin.c.
JPEG_SIZE = 20000
CONFIG_SIZE = 100000
SERIAL = "DS-7608HQHI-K2STANDIN0123456789"


def expected_jpeg(channel: int, size: int = JPEG_SIZE) -> bytes:
    data = bytearray((i * 31 + channel * 7) & 0xFF for i in range(size))
    data[0:4] = b"\xff\xd8\xff\xe0"
    data[-2:] = b"\xff\xd9"
    return bytes(data)


def expected_config(version: int = 1, size: int = CONFIG_SIZE) -> bytes:
    data = bytearray((i * 13 + version) & 0xFF for i in range(size))
    head = f"STANDIN-CONFIG v{version}\n".encode()
    data[: len(head)] = head
    return bytes(data)


class BuildError(Exception):
    pass


def build(folder: Path) -> Path:
    """Compile the stand-in into ``folder``; returns the path of the shared library."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise BuildError("no C compiler (gcc) on this machine")
    folder.mkdir(parents=True, exist_ok=True)
    header = folder / "hcnetsdk_standin.h"
    header.write_text(
        "/* Generated from hikd/sdk/_cdef.py by tests/standin: do not edit. */\n"
        "#ifndef HCNETSDK_STANDIN_H\n#define HCNETSDK_STANDIN_H\n"
        f"{CDEF}\n#endif\n",
        encoding="utf-8",
    )
    sizes = folder / "standin_sizes.h"
    rows = "".join(f'    {{"{name}", sizeof({name})}},\n' for name in STRUCTS)
    sizes.write_text(
        "static const struct { const char *name; unsigned size; } struct_sizes[] = {\n"
        f"{rows}}};\n",
        encoding="utf-8",
    )
    target = folder / "libstandin.so"
    flags = ["-shared", "-fPIC", "-O1", "-std=c11", "-Wall", "-Werror", "-fvisibility=hidden"]
    command = [gcc, *flags, "-I", str(folder), "-o", str(target), str(SOURCE)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"building the stand-in failed:\n{result.stderr}")
    return target


@dataclass
class StandIn:
    """The loaded stand-in: ``sdk`` is a `Library` over it, the rest are its knobs."""

    path: Path
    sdk: Library
    control: ctypes.CDLL

    @classmethod
    def load(cls, path: Path) -> StandIn:
        # A second Library object over another shared object: no NET_DVR_Init, no atexit,
        # no effect on the real library's process-wide singleton.
        sdk = Library(ffi.dlopen(str(path)), None)
        # The knobs are not part of the SDK's declarations: ctypes on the same object
        # (dlopen returns the same handle, so both see the same globals).
        control = ctypes.CDLL(str(path))
        control.standin_set.argtypes = [ctypes.c_char_p, ctypes.c_int]
        control.standin_get.argtypes = [ctypes.c_char_p]
        control.standin_has.argtypes = [ctypes.c_char_p]
        control.standin_sizeof.argtypes = [ctypes.c_char_p]
        control.standin_sizeof.restype = ctypes.c_uint
        control.standin_push_backup_state.argtypes = [ctypes.c_uint]
        return cls(path, sdk, control)

    def set(self, **knobs: int) -> None:
        for name, value in knobs.items():
            if not self.control.standin_set(name.encode(), int(value)):
                raise KeyError(f"the stand-in has no knob {name!r}")

    def get(self, name: str) -> int:
        if not self.control.standin_has(name.encode()):
            raise KeyError(f"the stand-in has no knob {name!r}")
        return int(self.control.standin_get(name.encode()))

    def reset(self) -> None:
        self.control.standin_reset()

    def push_backup_states(self, *states: int) -> None:
        """What GetBackupProgress answers next, in order (the last one repeats)."""
        for state in states:
            self.control.standin_push_backup_state(state)

    def sizeof(self, struct: str) -> int:
        return int(self.control.standin_sizeof(struct.encode()))
