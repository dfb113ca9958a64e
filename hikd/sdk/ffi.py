"""The one cffi FFI of hikd: the vendor SDK's declarations, without the library.

Everything that touches the SDK imports `ffi` from here; `hikd.sdk.library` dlopens the
library with it. Building it needs neither a compiler nor libhcnetsdk.so (ABI mode).
"""

from __future__ import annotations

from typing import Any

import cffi

from hikd.sdk._cdef import CDEF

ffi: Any = cffi.FFI()
ffi.cdef(CDEF)
