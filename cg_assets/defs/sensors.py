"""The settle sensor: make each day final once CustomerGauge has had time to change it.

CustomerGauge changes records after the fact (non-responses become responses or
failures; the vendor advises waiting 48 hours), so a day whose latest materialization
is not `settled` is synced again in full once it is CG_SETTLE_AFTER_HOURS old. The
sensor also heals gaps: a day inside the look-back window with no materialization at all.

Cheap per tick: the sensor cursor keeps a watermark, the last day up to which every day
is settled (or older than the look-back window and never synced: the initial load, which
the user backfills). A tick looks only at days after it, at most SCAN_DAYS_PER_TICK.
Run keys carry the day, the materialization the run supersedes and an attempt number,
because Dagster never runs a run key twice: a settle run that failed is asked for again,
after a back-off, under the next attempt number.
"""

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cg_assets.defs.assets import LAKE_WRITER_TAG
from cg_assets.defs.automation import (
    AUTOMATION_TAG,
    SETTLE_OF_TAG,
    SyncJob,
    in_flight_days,
    sensor_status,
)
from cg_assets.settings import LoadSettings
from cg_assets.sync import day_end

SENSOR_NAME = "customergauge_settle_sensor"
SCAN_DAYS_PER_TICK = 62
RETRY_BACKOFF_FIRST = dt.timedelta(minutes=10)
RETRY_BACKOFF_MAX = dt.timedelta(hours=6)


@dataclass
class SettleTick:
    run_requests: list[RunRequest] = field(default_factory=list)
    cursor: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _DayStatus:
    materialized: bool
    settled: bool
    latest_storage_id: int | None


def now_in(settings: LoadSettings) -> dt.datetime:
    return dt.datetime.now(settings.tz)


def last_settle_due_day(now: dt.datetime, settings: LoadSettings) -> dt.date:
    """The newest day whose end lies at least the settle lag in the past."""
    lag = dt.timedelta(hours=settings.settle_after_hours)
    day = (now - lag).astimezone(settings.tz).date()
    while now < day_end(day, settings.timezone) + lag:
        day -= dt.timedelta(days=1)
    return day


def _day_status(instance: DagsterInstance, keys: Sequence[AssetKey], day: dt.date) -> _DayStatus:
    materialized, settled, newest = True, True, None
    for key in keys:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
        ).records
        if not records:
            materialized = settled = False
            continue
        entry = (
            records[0].asset_materialization.metadata.get("settled")
            if records[0].asset_materialization
            else None
        )
        settled = settled and bool(entry is not None and entry.value)
        newest = max(newest or 0, records[0].storage_id)
    return _DayStatus(materialized, settled, newest)


def _previous_attempts(
    instance: DagsterInstance, settle_of: str
) -> tuple[int, dt.datetime | None, bool]:
    """How many settle runs were made for this (day, superseded materialization), when the
    last one ended, and whether one is still going."""
    runs = instance.get_run_records(filters=RunsFilter(tags={SETTLE_OF_TAG: settle_of}), limit=50)
    last_end = None
    going = False
    for record in runs:
        if record.dagster_run.status in (
            DagsterRunStatus.SUCCESS,
            DagsterRunStatus.FAILURE,
            DagsterRunStatus.CANCELED,
        ):
            ended = record.end_time
            if ended is not None:
                when = dt.datetime.fromtimestamp(ended, dt.timezone.utc)
                last_end = max(last_end, when) if last_end else when
        else:
            going = True
    return len(runs), last_end, going


def evaluate_settle_tick(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
    cursor: str | None,
) -> SettleTick:
    tick = SettleTick()
    watermark = dt.date.fromisoformat(json.loads(cursor)["settled_through"]) if cursor else None
    first = (
        max(settings.start_date, watermark + dt.timedelta(days=1))
        if watermark
        else settings.start_date
    )
    today = now.astimezone(settings.tz).date()
    due_until = last_settle_due_day(now, settings)
    heal_from = today - dt.timedelta(days=settings.heal_lookback_days)
    busy = in_flight_days(instance, keys)
    last = min(today, first + dt.timedelta(days=SCAN_DAYS_PER_TICK - 1))
    new_watermark = watermark
    contiguous = True
    day = first
    while day <= last:
        status = _day_status(instance, keys, day)
        done = status.settled or (not status.materialized and day < heal_from)
        if contiguous and done and day <= due_until:
            new_watermark = day
        else:
            contiguous = False
        wanted = None
        if status.materialized and not status.settled and day <= due_until:
            wanted = "settle"
        elif not status.materialized and day >= heal_from:
            wanted = "heal"
        if wanted and day in busy:
            tick.notes.append(f"{day}: a run is already queued or in progress")
        elif wanted and len(tick.run_requests) < settings.settle_max_per_tick:
            request = _request(instance, wanted, day, status, now)
            if request is None:
                tick.notes.append(f"{day}: the last {wanted} run failed recently; backing off")
            else:
                tick.run_requests.append(request)
        elif wanted:
            tick.notes.append(f"{day}: {wanted} waits for a later tick (CG_SETTLE_MAX_PER_TICK)")
        day += dt.timedelta(days=1)
    if new_watermark is not None:
        tick.cursor = json.dumps({"settled_through": new_watermark.isoformat()})
    else:
        tick.cursor = cursor
    return tick


def _request(
    instance: DagsterInstance, kind: str, day: dt.date, status: _DayStatus, now: dt.datetime
) -> RunRequest | None:
    settle_of = f"{day.isoformat()}:{status.latest_storage_id or 'none'}"
    attempts, last_end, going = _previous_attempts(instance, settle_of)
    if going:
        return None
    if attempts and last_end is not None:
        wait = min(RETRY_BACKOFF_MAX, RETRY_BACKOFF_FIRST * 2 ** (attempts - 1))
        if now < last_end + wait:
            return None
    return RunRequest(
        run_key=f"{kind}:{settle_of}:attempt-{attempts + 1}",
        partition_key=day.isoformat(),
        tags={AUTOMATION_TAG: kind, SETTLE_OF_TAG: settle_of, LAKE_WRITER_TAG: "customergauge"},
    )


def build_settle_sensor(
    job: SyncJob, keys: Sequence[AssetKey], settings: LoadSettings
) -> SensorDefinition:
    @sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=sensor_status(settings.automation),
        description=(
            f"Re-syncs each day in full once it is {settings.settle_after_hours} h old "
            f"(CG_SETTLE_AFTER_HOURS), and heals days of the last {settings.heal_lookback_days} "
            "never synced; at most CG_SETTLE_MAX_PER_TICK runs a tick, oldest first."
        ),
    )
    def _settle(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        tick = evaluate_settle_tick(
            context.instance, keys, settings, now_in(settings), context.cursor
        )
        for note in tick.notes:
            context.log.info(note)
        if not tick.run_requests:
            context.update_cursor(tick.cursor)
            return SkipReason("; ".join(tick.notes) or "every day old enough is settled")
        return SensorResult(run_requests=tick.run_requests, cursor=tick.cursor)

    return _settle
