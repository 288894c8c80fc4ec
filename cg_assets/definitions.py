"""Wires the project's own CustomerGauge tenant into `Definitions`.

Loaded the dg way: `defs` is a `@definitions` function, so the code location (dg dev,
`dg check defs`, workspace.yaml, `dagster api grpc`) builds it when it loads, and it
merges whatever the defs folder holds (`load_from_defs_folder`: a module or component
added under cg_assets/defs/ that defines Dagster objects at module level joins in).

The tenant is configured from CG_* variables and built by the same function as
`cg_assets.CustomerGaugeComponent` (cg_assets/defs/tenant_defs.py, docs/component.md).
"""

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

from cg_assets.defs.io_managers import LakeFrameIOManager
from cg_assets.defs.resources import default_resources
from cg_assets.defs.tenant_defs import build_tenant_definitions
from cg_assets.settings import LoadSettings


def build_definitions(settings: LoadSettings) -> Definitions:
    resources = default_resources()
    return build_tenant_definitions(
        settings,
        client=resources["customergauge"],
        lake=resources["lake"],
        io_manager=LakeFrameIOManager(),
    )


@definitions
def defs() -> Definitions:
    return Definitions.merge(
        load_from_defs_folder(path_within_project=Path(__file__).parent),
        build_definitions(LoadSettings.from_env()),
    )
