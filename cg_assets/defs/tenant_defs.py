"""One CustomerGauge tenant's definitions: assets, checks, jobs, schedules, sensors, resources.

What `CustomerGaugeComponent` builds, from typed settings and resources: the project's own
tenant (cg_assets/defs/customergauge/defs.yaml) and any number of others in one code
location. Everything is named after the tenant (tenant.py), so two tenants' definitions
merge without a clash.
"""

from __future__ import annotations

from dagster import Definitions, EnvVar

from cg_assets.customergauge.endpoints import ENDPOINTS, Endpoint
from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.defs.alerts import AlertScope, build_alert_sensor
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.automation import build_sync_job
from cg_assets.defs.checks import build_lake_checks
from cg_assets.defs.day_freshness import build_day_freshness_checks, build_day_freshness_sensor
from cg_assets.defs.funnel import build_funnel_asset, build_funnel_sensor
from cg_assets.defs.io_managers import LakeFrameIOManager
from cg_assets.defs.partitions import daily_partitions
from cg_assets.defs.privacy_erasure import build_erasure_job
from cg_assets.defs.privacy_retention import (
    build_retention_check,
    build_retention_job,
    build_retention_schedule,
)
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.schedules import build_catch_up_schedule
from cg_assets.defs.sensors import build_settle_sensor
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.settings import LoadSettings


def _retention_set(lake: LakeResource) -> bool:
    return lake.privacy is not None and lake.privacy.retention_days is not None


def build_tenant_definitions(
    settings: LoadSettings,
    client: CustomerGaugeResource,
    lake: LakeResource,
    io_manager: LakeFrameIOManager,
    tenant: Tenant = DEFAULT_TENANT,
    endpoints: tuple[Endpoint, ...] = ENDPOINTS,
    alert_webhook_url: EnvVar | None = None,
) -> Definitions:
    keys = [asset_key_for(e, tenant) for e in endpoints]
    job = build_sync_job(keys, daily_partitions(settings), tenant)
    retention_job = build_retention_job(endpoints, settings, tenant)
    sync_assets = [build_sync_asset(e, settings, tenant) for e in endpoints]
    assets = list(sync_assets)
    sensors = [
        build_settle_sensor(keys, settings, tenant),
        build_day_freshness_sensor(keys, settings, tenant),
    ]
    if alert_webhook_url is not None:
        # Its own webhook, about its own tables only: two tenants of a code location each
        # hear of their own failures.
        sensors.append(
            build_alert_sensor(AlertScope.of(sync_assets), settings, alert_webhook_url, tenant)
        )
    # The funnel joins the same day of both tables: only a tenant that syncs both has one.
    if {e.name for e in endpoints} >= {e.name for e in ENDPOINTS}:
        assets.append(build_funnel_asset(settings, tenant))
        sensors.append(build_funnel_sensor(settings, tenant))
    return Definitions(
        assets=assets,
        asset_checks=[
            *(build_retention_check(e, settings, tenant) for e in endpoints),
            # Judged by the settle sensor from its scan; these are the definitions it reports.
            build_lake_checks(keys, settings, tenant),
            build_day_freshness_checks(keys, settings, tenant),
        ],
        jobs=[job, retention_job, build_erasure_job(endpoints, tenant)],
        schedules=[
            build_catch_up_schedule(job, keys, settings, tenant),
            # A retention that is set is meant to run, even with automation off.
            build_retention_schedule(retention_job, settings, tenant, _retention_set(lake)),
        ],
        sensors=sensors,
        resources={
            tenant.client_resource_key: client,
            tenant.lake_resource_key: lake,
            # Downstream assets (the funnel, a user's own) read and write the lake as frames.
            tenant.io_manager_key: io_manager,
        },
    )
