"""Device hosts: the vendor library in processes of its own (architecture.md "Processes").

- `device_host`: what a host runs (library, sessions, arming, listening, decoding, alarm
  state, jobs) for the devices it owns; also used in one process (``Daemon(hosts="inline")``).
- `child`: the host process's entry point and its answers to the supervisor.
- `publisher`: the host's side of the outbox (store, then wake the supervisor).
- `messages`: the control messages between supervisor and host.
- `supervisor`: starts, watches and restarts the hosts; sends commands to a device's host.
- `fronts`: the listen fronts in the supervisor, routing requests to the owning host.
- `placement`: which host owns which device.

Importing the package imports structlog first, with asyncio deferred (`hikd.lazy_imports`):
a device host process (``python -m hikd.hosts.child``) has no use for asyncio and OpenSSL.
"""

from hikd.lazy_imports import import_structlog

import_structlog()
