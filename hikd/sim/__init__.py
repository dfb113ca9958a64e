"""hikd's simulated Hikvision devices: an ISAPI server the real vendor library logs into.

Used by `hikd sim` / `hikd demo`, by the tests and by the benchmarks::

    from hikd.sim import Simulator, SimDeviceConfig

    with Simulator([SimDeviceConfig(name="nvr", ip_channels=8)]) as sim:
        port = sim.devices[0].port
"""

from hikd.sim.config import PushTarget, SimDeviceConfig, SimDisk
from hikd.sim.device import SimDevice
from hikd.sim.simulator import Simulator

__all__ = ["PushTarget", "SimDevice", "SimDeviceConfig", "SimDisk", "Simulator"]
