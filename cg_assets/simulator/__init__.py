"""A local stand-in for the CustomerGauge v7 sync API: a real HTTP server over seeded data.

Standard library only at run time (orjson is used when importable). See server.py for the
wire behaviour, faults.py for injectable faults and control.py for the control client.
"""

from cg_assets.simulator.control import SimulatorControl, running_simulator
from cg_assets.simulator.server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimulatorServer

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "SimulatorControl",
    "SimulatorServer",
    "running_simulator",
]
