"""Wires the endpoint table, assets, checks, automation and resources into `Definitions`.

Loaded the dg way: `defs` is a `@definitions` function, so the code location (dg dev,
`dg check defs`, workspace.yaml, `dagster api grpc`) builds it when it loads, and it
merges whatever the defs folder holds (`load_from_defs_folder`: a module or component
added under cg_assets/defs/ that defines Dagster objects at module level joins in).
"""

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.automation import build_sync_job
from cg_assets.defs.partitions import daily_partitions
from cg_assets.defs.resources import default_resources
from cg_assets.defs.schedules import build_catch_up_schedule
from cg_assets.defs.sensors import build_settle_sensor
from cg_assets.settings import LoadSettings


def build_definitions(settings: LoadSettings) -> Definitions:
    keys = [asset_key_for(e) for e in ENDPOINTS]
    job = build_sync_job(keys, daily_partitions(settings))
    return Definitions(
        assets=[build_sync_asset(e, settings) for e in ENDPOINTS],
        jobs=[job],
        schedules=[build_catch_up_schedule(job, keys, settings)],
        sensors=[build_settle_sensor(job, keys, settings)],
        resources=default_resources(),
    )


@definitions
def defs() -> Definitions:
    return Definitions.merge(
        load_from_defs_folder(path_within_project=Path(__file__).parent),
        build_definitions(LoadSettings.from_env()),
    )
