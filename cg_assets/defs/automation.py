"""What the schedule and the sensor share: the sync job, the tags of the runs they ask
for, and which days a run queued or in progress will write.

Which runs are in flight is Dagster's run status, nothing else: a run whose worker died (a
SIGKILL, an OOM, a lost pod) is marked failed by Dagster's run monitoring (the shipped
instance configs enable it, and every run asked for here carries a maximum runtime), and
its days are then free to be asked for again.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from dagster import (
    MAX_RUNTIME_SECONDS_TAG,
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

from cg_assets.defs.checks import LAKE_CHECK_NAMES
from cg_assets.defs.retention_status import RETENTION_CHECK
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant

# What define_asset_job returns. Its class is not part of Dagster's public API, so it is
# named here instead of imported from dagster's internals.
SyncJob: TypeAlias = Any

SYNC_JOB_SUFFIX = "sync_job"
SYNC_JOB_NAME = DEFAULT_TENANT.name(SYNC_JOB_SUFFIX)
AUTOMATION_TAG = "cg_assets/automation"
SETTLE_OF_TAG = "cg_assets/settle_of"
# The days a run asked for by the schedule or the sensor writes, in our own words
# ("2026-10-21", or "2026-10-01..2026-10-31" for a range): Dagster's own partition tags are
# internal names, so the in-flight check reads this one instead.
DAYS_TAG = "cg_assets/days"
DAYS_SEPARATOR = ".."
# A run of the schedule or the sensor writes one day, or at most a month of days in a
# revisit range; a day takes seconds to minutes (BENCHMARKS.md). Past this, run monitoring
# ends the run and marks it failed: that is what frees the days and the lake's pool slot of
# a run whose worker died without a word (Dagster's default run launcher cannot see that).
# A run cut short keeps every day it recorded, and the next tick asks for the rest. It also
# ends a run that is still working, and a whole fetch that is cut starts over: so the limit
# is far above any real day (a slow tenant under a request ceiling, 5,000 pages, retries),
# at the price of a dead worker holding its days and the pool for that long.
AUTOMATION_MAX_RUNTIME = dt.timedelta(hours=6)
# Every status of a run that has not finished: it may still write its days. A canceling
# run's worker may still be writing until it stops (run monitoring's cancel timeout ends
# that wait); a suspended run resumes.
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
    DagsterRunStatus.SUSPENDED,
]


def build_sync_job(
    keys: Sequence[AssetKey],
    partitions_def: PartitionsDefinition,
    tenant: Tenant = DEFAULT_TENANT,
) -> SyncJob:
    # No tags: the assets' pool (tenant.pool) is what queues the runs that write the lake.
    return define_asset_job(
        tenant.name(SYNC_JOB_SUFFIX),
        # The retention check is evaluated by the retention job, the lake checks by the
        # settle sensor: in a sync run they would only show as skipped (a sync records its
        # days as events and yields no output).
        selection=AssetSelection.assets(*keys)
        - AssetSelection.checks(
            *(
                AssetCheckKey(key, name)
                for key in keys
                for name in (RETENTION_CHECK, *LAKE_CHECK_NAMES)
            )
        ),
        partitions_def=partitions_def,
        description="Sync CustomerGauge days into the lake (launched by the hourly schedule and the settle sensor).",
    )


def schedule_status(automation: bool) -> DefaultScheduleStatus:
    return DefaultScheduleStatus.RUNNING if automation else DefaultScheduleStatus.STOPPED


def sensor_status(automation: bool) -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if automation else DefaultSensorStatus.STOPPED


def days_label(first: dt.date, last: dt.date | None = None) -> str:
    """A DAYS_TAG value: one day, or a range of days."""
    if last is None or last == first:
        return first.isoformat()
    return f"{first.isoformat()}{DAYS_SEPARATOR}{last.isoformat()}"


def days_of(label: str) -> set[dt.date]:
    first, _, last = label.partition(DAYS_SEPARATOR)
    day = dt.date.fromisoformat(first)
    end = dt.date.fromisoformat(last) if last else day
    days = set()
    while day <= end:
        days.add(day)
        day += dt.timedelta(days=1)
    return days


def automation_tags(kind: str, first: dt.date, last: dt.date | None = None) -> dict[str, str]:
    """The tags of every run the schedule and the sensor ask for."""
    return {
        AUTOMATION_TAG: kind,
        DAYS_TAG: days_label(first, last),
        # Dagster's public name for the per-run limit that run monitoring enforces.
        MAX_RUNTIME_SECONDS_TAG: str(int(AUTOMATION_MAX_RUNTIME.total_seconds())),
    }


def range_request_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """What makes a run request one run over a range of partitions.

    Dagster has no public RunRequest argument for a partition range: its documented way is
    these two tags of its own (the only Dagster tag names this project writes; it never
    reads them).
    """
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


@dataclass(frozen=True)
class InFlight:
    """What the runs queued or in progress will write."""

    days: frozenset[dt.date]
    # Runs of these assets whose days we cannot tell (launched from the UI, the CLI or a
    # backfill: only Dagster's internal tags name their partitions).
    elsewhere: tuple[str, ...] = ()

    def holds(self, day: dt.date) -> bool:
        # A run of unknown days could be writing any of them; the pool would queue a new run
        # behind it anyway, so waiting for it costs nothing and asks for no run twice.
        return bool(self.elsewhere) or day in self.days

    def why(self, day: dt.date) -> str:
        if day in self.days:
            return f"{day}: a run is already queued or in progress"
        return (
            f"{day}: waits for run(s) {', '.join(self.elsewhere[:3])} of these tables, "
            "launched outside the automation (their days are not known here)"
        )


def in_flight(
    instance: DagsterInstance, keys: Iterable[AssetKey], job_name: str = SYNC_JOB_NAME
) -> InFlight:
    """The days that queued or running runs of these assets will write, from run status
    alone: one query for the runs that have not finished, whatever the history."""
    wanted = set(keys)
    days: set[dt.date] = set()
    elsewhere: list[str] = []
    for record in instance.get_run_records(filters=RunsFilter(statuses=IN_FLIGHT)):
        run = record.dagster_run
        ours = run.job_name == job_name
        if run.asset_selection is None:
            writes = ours  # another job without an asset selection writes none of ours
        else:
            writes = bool(set(run.asset_selection) & wanted)
        if not writes:
            continue
        label = run.tags.get(DAYS_TAG) if ours else None
        if label:
            days |= days_of(label)
        else:
            elsewhere.append(run.run_id)
    return InFlight(frozenset(days), tuple(elsewhere))
