"""A local stand-in for the CustomerGauge v7 sync API: a real HTTP server over seeded data.

Standard library only at run time (orjson is used when importable), plus the wire names of
`cg_assets.customergauge.wire`, so it answers to exactly the names the client sends. See
server.py for the wire behaviour, faults.py for injectable faults and control.py for the
control client.

It lives beside `cg_assets`, not in it: a stand-in API with a demo secret has no place in
the wheel or the image. It is a development tool, importable like `cg_assets_tests` from
the project root (pytest's `pythonpath`, `PYTHONPATH` in the subprocesses the tests and
`make run` start); `cg_assets` never imports it (import-linter, setup.cfg).
"""

from cg_simulator.control import SimulatorControl, running_simulator
from cg_simulator.server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimulatorServer

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "SimulatorControl",
    "SimulatorServer",
    "running_simulator",
]
