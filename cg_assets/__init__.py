"""cg_assets: CustomerGauge survey data into a Parquet (or Delta) lake, with Dagster.

`cg_assets.CustomerGaugeComponent` is the Dagster Component (docs/component.md). It is
imported on first use, so the Dagster-free core (customergauge, lake, privacy, sync) and
the simulator beside the package (cg_simulator, which imports the wire names) do not import
Dagster through this package.
"""

from typing import Any

_LAZY = {"CustomerGaugeComponent": "cg_assets.components.customergauge"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cg_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    # dg's registry lists a module's components by dir(): the lazy name must show.
    return sorted([*globals(), *_LAZY])
