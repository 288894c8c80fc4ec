"""Wires the endpoint table, assets, the funnel, checks, automation and resources into `Definitions`.

Loaded the dg way: `defs` is a `@definitions` function, so the code location (dg dev,
`dg check defs`, workspace.yaml, `dagster api grpc`) builds it when it loads, and it
merges whatever the defs folder holds (`load_from_defs_folder`: a module or component
added under cg_assets/defs/ that defines Dagster objects at module level joins in).
"""

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.defs.alerts import build_alert_sensor
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.automation import build_sync_job
from cg_assets.defs.day_freshness import build_day_freshness_checks, build_day_freshness_sensor
from cg_assets.defs.funnel import build_funnel_asset, build_funnel_sensor
from cg_assets.defs.io_managers import LAKE_IO_MANAGER_KEY, LakeFrameIOManager
from cg_assets.defs.partitions import daily_partitions
from cg_assets.defs.privacy_erasure import build_erasure_job
from cg_assets.defs.privacy_retention import (
    build_retention_check,
    build_retention_job,
    build_retention_schedule,
)
from cg_assets.defs.resources import default_resources
from cg_assets.defs.schedules import build_catch_up_schedule
from cg_assets.defs.sensors import build_settle_sensor
from cg_assets.settings import LoadSettings


def build_definitions(settings: LoadSettings) -> Definitions:
    keys = [asset_key_for(e) for e in ENDPOINTS]
    job = build_sync_job(keys, daily_partitions(settings))
    retention_job = build_retention_job(ENDPOINTS, settings)
    return Definitions(
        assets=[*(build_sync_asset(e, settings) for e in ENDPOINTS), build_funnel_asset(settings)],
        asset_checks=[
            *(build_retention_check(e, settings) for e in ENDPOINTS),
            build_day_freshness_checks(keys, settings),
        ],
        jobs=[job, retention_job, build_erasure_job(ENDPOINTS)],
        schedules=[
            build_catch_up_schedule(job, keys, settings),
            build_retention_schedule(retention_job, settings),
        ],
        sensors=[
            build_settle_sensor(keys, settings),
            build_funnel_sensor(settings),
            build_day_freshness_sensor(keys, settings),
            build_alert_sensor(settings),
        ],
        # Downstream assets (the funnel, a user's own) read and write the lake as polars frames.
        resources={**default_resources(), LAKE_IO_MANAGER_KEY: LakeFrameIOManager()},
    )


@definitions
def defs() -> Definitions:
    return Definitions.merge(
        load_from_defs_folder(path_within_project=Path(__file__).parent),
        build_definitions(LoadSettings.from_env()),
    )
