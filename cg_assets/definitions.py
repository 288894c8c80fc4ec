"""The project's code location: whatever its defs folder holds.

Loaded the dg way: `defs` is a `@definitions` function, so the code location (dg dev,
`dg check defs`, workspace.yaml, `dagster api grpc`) builds it when it loads. The project's
own CustomerGauge tenant is a `cg_assets.CustomerGaugeComponent` instance in it
(cg_assets/defs/customergauge/defs.yaml, configured from the CG_* variables); a component
or module added under cg_assets/defs/ joins in.
"""

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

from cg_assets.defs.dagster_warnings import quiet_dagster_warnings


@definitions
def defs() -> Definitions:
    quiet_dagster_warnings()  # before the load: see cg_assets/defs/dagster_warnings.py
    return load_from_defs_folder(path_within_project=Path(__file__).parent)
