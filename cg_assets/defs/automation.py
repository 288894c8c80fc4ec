"""What the schedule and the sensor share: the sync job, run tags, and which partitions
already have a run queued or in progress."""

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    PartitionsDefinition,
    RunsFilter,
    define_asset_job,
)

from cg_assets.defs.assets import LAKE_WRITER_TAG
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant

# What define_asset_job returns. Its class is not part of Dagster's public API, so it is
# named here instead of imported from dagster's internals.
SyncJob: TypeAlias = Any

SYNC_JOB_SUFFIX = "sync_job"
SYNC_JOB_NAME = DEFAULT_TENANT.name(SYNC_JOB_SUFFIX)
AUTOMATION_TAG = "cg_assets/automation"
SETTLE_OF_TAG = "cg_assets/settle_of"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
IN_FLIGHT_RUNS_SCANNED = 200
# A started run that has logged nothing for this long is presumed dead: a SIGKILL, an OOM
# or a lost pod leaves its run STARTED forever, and Dagster's default run launcher cannot
# check a run worker's health. Its days are then requested again rather than skipped
# forever; if the run was alive after all, the lake's day lock keeps the two writers apart
# (the newcomer fails that day at once and retries later). Real seconds, not the clock seam:
# whether a process is alive is a fact of the real world.
STALE_RUN_SECONDS = 3600


def build_sync_job(
    keys: Sequence[AssetKey],
    partitions_def: PartitionsDefinition,
    tenant: Tenant = DEFAULT_TENANT,
) -> SyncJob:
    return define_asset_job(
        tenant.name(SYNC_JOB_SUFFIX),
        # The retention check is evaluated by the retention job: in a sync run it would only
        # show as skipped (a sync records its days as events and yields no output).
        selection=AssetSelection.assets(*keys)
        - AssetSelection.checks(*(AssetCheckKey(key, "pii_retention") for key in keys)),
        partitions_def=partitions_def,
        description="Sync CustomerGauge days into the lake (launched by the hourly schedule and the settle sensor).",
        tags={LAKE_WRITER_TAG: tenant.writer_tag_value},
    )


def schedule_status(automation: bool) -> DefaultScheduleStatus:
    return DefaultScheduleStatus.RUNNING if automation else DefaultScheduleStatus.STOPPED


def sensor_status(automation: bool) -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if automation else DefaultSensorStatus.STOPPED


def in_flight_days(
    instance: DagsterInstance, keys: Iterable[AssetKey], job_name: str = SYNC_JOB_NAME
) -> set[dt.date]:
    """Days that a queued or running run of these assets will write (single days and ranges);
    a started run silent for STALE_RUN_SECONDS counts as dead."""
    wanted = set(keys)
    days: set[dt.date] = set()
    for run in instance.get_runs(
        filters=RunsFilter(statuses=IN_FLIGHT), limit=IN_FLIGHT_RUNS_SCANNED
    ):
        if run.status == DagsterRunStatus.STARTED and _silent_for(instance, run.run_id) > (
            STALE_RUN_SECONDS
        ):
            continue
        if run.asset_selection is not None and not (set(run.asset_selection) & wanted):
            continue
        if run.asset_selection is None and run.job_name != job_name:
            continue
        tags = run.tags
        if PARTITION_TAG in tags:
            days.add(dt.date.fromisoformat(tags[PARTITION_TAG]))
        elif RANGE_START_TAG in tags and RANGE_END_TAG in tags:
            day = dt.date.fromisoformat(tags[RANGE_START_TAG])
            end = dt.date.fromisoformat(tags[RANGE_END_TAG])
            while day <= end:
                days.add(day)
                day += dt.timedelta(days=1)
    return days


def _silent_for(instance: DagsterInstance, run_id: str) -> float:
    """Real seconds since the run's last event."""
    records = instance.get_records_for_run(run_id, limit=1, ascending=False).records
    if not records:
        return 0.0
    return time.time() - records[0].event_log_entry.timestamp
