"""The one cffi FFI of hikd: the vendor SDK's declarations, without the library.

Everything that touches the SDK imports `ffi` from here; `hikd.sdk.library` dlopens the
library with it. Building it needs neither a compiler nor libhcnetsdk.so (ABI mode).

The declarations (`hikd.sdk._cdef.CDEF`) come pre-parsed, as cffi's out-of-line ABI module
`hikd.sdk._ffi_abi` (tools/gen_sdk_ffi.py): parsing them at import took 0.14-0.8 s and
pycparser's memory in every device host at every start.
"""

from __future__ import annotations

from typing import Any

from hikd.sdk._ffi_abi import ffi as _prebuilt

ffi: Any = _prebuilt
