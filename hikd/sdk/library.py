"""Finding, loading and initialising the vendor library (seed 3.1, 5.1, 5.2).

The library is process-wide: one `Library` per process, initialised once. Discovery order:

1. the configured ``sdk.library_dir``;
2. the environment variable ``HIKD_SDK_DIR``;
3. the ``hcnetsdk-python`` wheel's bundled Linux directory (located without importing the
   package: importing it runs its wrapper, which loads the library itself);
4. the system loader path (``libhcnetsdk.so`` from ``ld.so``'s search path).

Before ``NET_DVR_Init`` the library is told where its components (``HCNetSDKCom/``) and
its own OpenSSL live (``NET_DVR_SetSDKInitCfg``); without that it looks next to the
executable, which is the Python interpreter.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hikd.errors import UserError
from hikd.sdk.errors import SdkError, error_for
from hikd.sdk.ffi import ffi
from hikd.sdk.no_netlink import call_without_netlink

LIBRARY_NAME = "libhcnetsdk.so"

# NET_SDK_INIT_CFG_TYPE (HCNetSDK.h): where the components and OpenSSL live.
_INIT_CFG_SDK_PATH = 2
_INIT_CFG_LIBEAY_PATH = 3
_INIT_CFG_SSLEAY_PATH = 4

ExceptionHandler = Callable[[int, int, int], None]
"""(dwType, lUserID, lHandle), called on the SDK's thread: must only enqueue."""


class LibraryNotFound(UserError):
    exit_code = 2


@dataclass(frozen=True, slots=True)
class SdkSettings:
    """The process-wide knobs of seed 5.2 (a subset of the `[sdk]` config section)."""

    connect_timeout_ms: int = 3000
    connect_tries: int = 1
    recv_timeout_ms: int = 5000
    reconnect_interval_ms: int = 5000
    log_dir: Path | None = None
    log_level: int = 3


def wheel_library_dir() -> Path | None:
    """The Linux directory of the ``hcnetsdk-python`` wheel, if it is installed."""
    try:
        spec = importlib.util.find_spec("HCNetSDK")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "Libs" / "linux"
        if (candidate / LIBRARY_NAME).is_file():
            return candidate
    return None


def find_library_dir(configured: Path | None, env: dict[str, str] | None = None) -> Path | None:
    """The first directory holding ``libhcnetsdk.so``, in discovery order; None = try ld.so."""
    environ = os.environ if env is None else env
    candidates: list[tuple[str, Path | None]] = [
        ("sdk.library_dir", configured),
        ("HIKD_SDK_DIR", Path(environ["HIKD_SDK_DIR"]) if environ.get("HIKD_SDK_DIR") else None),
    ]
    for origin, directory in candidates:
        if directory is None:
            continue
        if not (directory / LIBRARY_NAME).is_file():
            raise LibraryNotFound(
                f"{origin} points at {directory}, which has no {LIBRARY_NAME}: "
                "fix the path, or unset it to use the bundled library"
            )
        return directory
    return wheel_library_dir()


_NOT_FOUND = (
    f"the Hikvision SDK ({LIBRARY_NAME}) was not found: install it with "
    "\"pip install 'hikd[sdk]'\" or set HIKD_SDK_DIR to the directory that holds it"
)


class Library:
    """The loaded and initialised vendor library. Use `Library.open()`."""

    _instance: Library | None = None
    _instance_lock = threading.Lock()

    def __init__(self, lib: Any, directory: Path | None) -> None:
        self.lib = lib
        self.directory = directory
        self._exception_handlers: list[ExceptionHandler] = []
        # cffi callbacks must stay alive as long as the SDK may call them.
        self._exception_cb = ffi.callback(
            "void(unsigned int, int, int, void *)", self._on_exception
        )
        self._initialised = False
        self._cleaned_up = False
        self.search_lock = threading.Lock()
        """Held around `NET_DVR_FindFile_V40`: over ISAPI the library reads every page of a
        search in that call, and two at once (two devices, or two jobs) now and then give an
        entry with its name but all-zero times (README, vendor-library notes)."""

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def open(cls, library_dir: Path | None = None, settings: SdkSettings | None = None) -> Library:
        """Load and initialise the library once per process; later calls return it."""
        with cls._instance_lock:
            if cls._instance is not None and not cls._instance._cleaned_up:
                return cls._instance
            directory = find_library_dir(library_dir)
            lib = cls._dlopen(directory)
            instance = cls(lib, directory)
            instance._init(settings or SdkSettings())
            cls._instance = instance
            # A process that exits while the library's threads run can crash in the
            # interpreter's teardown (seen: SIGSEGV after the last line of a script).
            atexit.register(instance.cleanup)
            return instance

    @staticmethod
    def _dlopen(directory: Path | None) -> Any:
        target = str(directory / LIBRARY_NAME) if directory else LIBRARY_NAME
        try:
            return ffi.dlopen(target)
        except OSError as exc:
            if directory is None:
                raise LibraryNotFound(_NOT_FOUND) from None
            raise LibraryNotFound(f"cannot load {target}: {exc}") from None

    def _init(self, settings: SdkSettings) -> None:
        lib = self.lib
        if self.directory is not None:
            path = ffi.new("NET_DVR_LOCAL_SDK_PATH *")
            path.sPath = (str(self.directory) + "/").encode()
            lib.NET_DVR_SetSDKInitCfg(_INIT_CFG_SDK_PATH, path)
            # The bundled OpenSSL 1.1: without these the library dlopens the system's.
            for cfg_type, name in (
                (_INIT_CFG_LIBEAY_PATH, "libcrypto.so.1.1"),
                (_INIT_CFG_SSLEAY_PATH, "libssl.so.1.1"),
            ):
                candidate = self.directory / name
                if candidate.is_file():
                    lib.NET_DVR_SetSDKInitCfg(cfg_type, ffi.new("char[]", str(candidate).encode()))
        # On a thread without netlink sockets: 0.1 s instead of 3.2 s (see no_netlink). The
        # error is read on that thread too: the library may keep it per thread.
        call_without_netlink(lambda: self.check(lib.NET_DVR_Init()))
        self._initialised = True
        lib.NET_DVR_SetConnectTime(settings.connect_timeout_ms, settings.connect_tries)
        lib.NET_DVR_SetRecvTimeOut(settings.recv_timeout_ms)
        lib.NET_DVR_SetReconnect(settings.reconnect_interval_ms, 1)
        if settings.log_dir is not None:
            settings.log_dir.mkdir(parents=True, exist_ok=True)
            log_dir = ffi.new("char[]", (str(settings.log_dir) + "/").encode())
            lib.NET_DVR_SetLogToFile(settings.log_level, log_dir, 1)
        else:
            lib.NET_DVR_SetLogToFile(0, ffi.NULL, 0)
        lib.NET_DVR_SetExceptionCallBack_V30(0, ffi.NULL, self._exception_cb, ffi.NULL)

    # -- errors ------------------------------------------------------------------------
    def last_error(self) -> SdkError:
        """The error of the call that just failed. Only meaningful right after a failure:
        NET_DVR_GetLastError is not cleared by a success (sdk-over-isapi.md, part 2 §g)."""
        code = int(self.lib.NET_DVR_GetLastError())
        vendor = ""
        try:
            number = ffi.new("int *")
            text = self.lib.NET_DVR_GetErrorMsg(number)
            if text != ffi.NULL and int(number[0]) == code:
                vendor = ffi.string(text).decode("utf-8", "replace")
        except Exception:  # the vendor text is optional decoration
            vendor = ""
        return error_for(code, vendor)

    def check(self, ok: int) -> None:
        """Raise the last error when a BOOL call returned FALSE."""
        if not ok:
            raise self.last_error()

    # -- facts -------------------------------------------------------------------------
    def version(self) -> str:
        v = int(self.lib.NET_DVR_GetSDKBuildVersion())
        return f"{(v >> 24) & 0xFF}.{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}"

    # -- exceptions --------------------------------------------------------------------
    def add_exception_handler(self, handler: ExceptionHandler) -> None:
        self._exception_handlers.append(handler)

    def remove_exception_handler(self, handler: ExceptionHandler) -> None:
        if handler in self._exception_handlers:
            self._exception_handlers.remove(handler)

    def _on_exception(self, kind: int, user_id: int, handle: int, _user: Any) -> None:
        # SDK thread: hand the three integers on and return; handlers only enqueue.
        for handler in tuple(self._exception_handlers):
            with contextlib.suppress(Exception):  # never let an exception unwind into C
                handler(int(kind), int(user_id), int(handle))

    # -- teardown ----------------------------------------------------------------------
    def cleanup(self) -> None:
        """NET_DVR_Cleanup; also logs out any session still open. Idempotent."""
        with self._instance_lock:
            if self._initialised and not self._cleaned_up:
                self._cleaned_up = True
                self.lib.NET_DVR_Cleanup()
            if Library._instance is self:
                Library._instance = None
