"""Retention of personal data: a daily job that hashes (or nulls) the personal columns of
days older than CG_PII_RETENTION_DAYS, and the check that fails while such a day still
holds clear values.

The job is separate from the sync automation (its own schedule) and writes like a sync
run: in the lake's pool (queued with every run that writes the lake), and each file
rewritten under its table day's writer lock. After its pass it records the
`pii_retention` check of every table, which can also be run on its own from the UI.
"""

import datetime as dt

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    asset_check,
    job,
    op,
)

from cg_assets import clock
from cg_assets.customergauge.endpoints import Endpoint
from cg_assets.defs.assets import asset_key_for
from cg_assets.defs.automation import schedule_status
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.retention_status import NOT_SET, RETENTION_CHECK
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.policy import LakePrivacy
from cg_assets.privacy.retention import findings, retention_pass
from cg_assets.settings import LoadSettings

RETENTION_JOB_SUFFIX = "pii_retention"
RETENTION_SCHEDULE_SUFFIX = "pii_retention_daily"
RETENTION_JOB = DEFAULT_TENANT.name(RETENTION_JOB_SUFFIX)
RETENTION_SCHEDULE = DEFAULT_TENANT.name(RETENTION_SCHEDULE_SUFFIX)
SAMPLE = 10


def _evaluate(
    key: AssetKey, endpoint: Endpoint, lake: ParquetLake, privacy: LakePrivacy, today: dt.date
) -> tuple[bool, str, dict]:
    days = privacy.settings.retention_days
    past, clear = findings(lake, endpoint, privacy, today)
    if days is None:
        description = NOT_SET
    elif clear:
        description = (
            f"{len(clear)} of {past} day(s) older than {days} day(s) still hold clear "
            f"personal values: {', '.join(d.isoformat() for d in clear[:SAMPLE])}. The daily "
            f"{RETENTION_JOB} job hashes them; run it now."
        )
    else:
        description = (
            f"No day older than {days} day(s) holds clear personal values ({past} checked)."
        )
    metadata = {
        "retention_days": MetadataValue.int(days if days is not None else -1),
        "days_past_retention": MetadataValue.int(past),
        "days_with_clear_values": MetadataValue.json([d.isoformat() for d in clear[:SAMPLE]]),
    }
    return not clear, description, metadata


def build_retention_check(
    endpoint: Endpoint, settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> AssetsDefinition:
    key = asset_key_for(endpoint, tenant)

    @asset_check(
        asset=key,
        name=RETENTION_CHECK,
        description="No day older than CG_PII_RETENTION_DAYS holds clear personal values.",
        required_resource_keys={tenant.lake_resource_key},
    )
    def _retention(context: AssetCheckExecutionContext) -> AssetCheckResult:
        lake: LakeResource = getattr(context.resources, tenant.lake_resource_key)
        parquet_lake = lake.get_lake()
        today = clock.utc_now().astimezone(settings.tz).date()
        passed, description, metadata = _evaluate(
            key, endpoint, parquet_lake, lake.get_privacy(parquet_lake), today
        )
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.ERROR,
            description=description,
            metadata=metadata,
        )

    return _retention


def build_retention_job(
    endpoints: tuple[Endpoint, ...], settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> JobDefinition:
    @op(
        name=tenant.op_name("apply_pii_retention"),
        pool=tenant.pool,
        required_resource_keys={tenant.lake_resource_key},
        description="Hash (drop in drop mode) personal columns of days older than CG_PII_RETENTION_DAYS.",
    )
    def apply_pii_retention(context: OpExecutionContext) -> None:
        lake: LakeResource = getattr(context.resources, tenant.lake_resource_key)
        parquet_lake = lake.get_lake()
        privacy = lake.get_privacy(parquet_lake)
        today = clock.utc_now().astimezone(settings.tz).date()

        def observed(table: str, day: dt.date, state: str) -> None:
            endpoint = next(e for e in endpoints if e.name == table)
            context.log_event(
                AssetObservation(
                    asset_key=asset_key_for(endpoint, tenant),
                    partition=day.isoformat(),
                    metadata={"pii": state, "pii_changed_by": "retention"},
                )
            )

        report = retention_pass(
            parquet_lake, endpoints, privacy, today, f"run {context.run_id} retention", observed
        )
        rewritten = sum(len(days) for days in report.rewritten.values())
        context.log.info(
            f"Retention {report.retention_days if report.retention_days is not None else 'unset'}"
            f" day(s): {report.days_checked} day file(s) past it, {rewritten} rewritten"
            + (
                f"; {len(report.busy)} held by another writer, left to that writer and the "
                f"next pass: {', '.join(report.busy[:SAMPLE])}."
                if report.busy
                else "."
            )
        )
        for endpoint in endpoints:
            key = asset_key_for(endpoint, tenant)
            passed, description, metadata = _evaluate(key, endpoint, parquet_lake, privacy, today)
            context.log_event(
                AssetCheckEvaluation(
                    asset_key=key,
                    check_name=RETENTION_CHECK,
                    passed=passed,
                    severity=AssetCheckSeverity.ERROR,
                    description=description,
                    metadata=metadata,
                )
            )

    @job(
        name=tenant.name(RETENTION_JOB_SUFFIX),
        description="Personal data retention over every table of the lake (CG_PII_RETENTION_DAYS).",
    )
    def _retention_job() -> None:
        apply_pii_retention()

    return _retention_job


def build_retention_schedule(
    job_def: JobDefinition,
    settings: LoadSettings,
    tenant: Tenant = DEFAULT_TENANT,
    retention_set: bool = False,
) -> ScheduleDefinition:
    """`retention_set`: a retention is configured, so the schedule runs even with automation off."""
    return ScheduleDefinition(
        name=tenant.name(RETENTION_SCHEDULE_SUFFIX),
        job=job_def,
        cron_schedule="30 3 * * *",
        execution_timezone=settings.timezone,
        default_status=schedule_status(settings.automation or retention_set),
        description="Every night, apply CG_PII_RETENTION_DAYS to days that passed it.",
    )
