"""Hourly catch-up: today and yesterday, the days that can still change cheaply.

Yesterday too, because a record sent at 23:59 can reach the API after midnight. Both in one
run (a range of two days): an hourly run worker costs seconds of Dagster start-up alone.
"""

import datetime as dt

from dagster import (
    AssetKey,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from cg_assets.defs.automation import (
    SyncJob,
    automation_tags,
    days_label,
    in_flight,
    range_request_tags,
    schedule_status,
)
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.settings import LoadSettings

SCHEDULE_SUFFIX = "hourly_catch_up"
SCHEDULE_NAME = DEFAULT_TENANT.name(SCHEDULE_SUFFIX)


def catch_up_days(now: dt.datetime, settings: LoadSettings) -> list[dt.date]:
    today = now.astimezone(settings.tz).date()
    return [d for d in (today - dt.timedelta(days=1), today) if d >= settings.start_date]


def catch_up_request(days: list[dt.date], tick: dt.datetime) -> RunRequest:
    """One run for the days the tick catches up (yesterday and today are consecutive): a
    range run of both costs one run worker, not two, every hour."""
    first, last = days[0], days[-1]
    if first == last:
        return RunRequest(
            run_key=f"catch-up:{first.isoformat()}:{tick.isoformat()}",
            partition_key=first.isoformat(),
            tags=automation_tags("hourly-catch-up", first),
        )
    return RunRequest(
        run_key=f"catch-up:{days_label(first, last)}:{tick.isoformat()}",
        tags={**automation_tags("hourly-catch-up", first, last), **range_request_tags(first, last)},
    )


def build_catch_up_schedule(
    job: SyncJob, keys: list[AssetKey], settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> ScheduleDefinition:
    @schedule(
        name=tenant.name(SCHEDULE_SUFFIX),
        job=job,
        cron_schedule=f"{settings.schedule_minute} * * * *",
        execution_timezone=settings.timezone,
        default_status=schedule_status(settings.automation),
        description="Every hour, catch today and yesterday up from their stored cursors.",
    )
    def _hourly(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
        tick = context.scheduled_execution_time or dt.datetime.now(settings.tz)
        busy = in_flight(context.instance, keys, job.name)
        days = catch_up_days(tick, settings)
        free = [day for day in days if not busy.holds(day)]
        if not free:
            return SkipReason("; ".join(busy.why(day) for day in days) or "no day to sync")
        return [catch_up_request(free, tick)]

    return _hourly
