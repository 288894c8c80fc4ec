"""The settle sensor: make each day final once CustomerGauge has had time to change it, and
heal every day that was never synced.

CustomerGauge changes records after the fact (non-responses become responses or
failures; the vendor advises waiting 48 hours), so a day whose latest materialization
is not `settled` is synced again in full once it is CG_SETTLE_AFTER_HOURS old (elapsed
hours, so DST changes neither shorten nor stretch the wait).

No silent holes: once a first day has been synced, every later day up to yesterday that
has no materialization is requested ("heal"), whatever its age: an outage longer than
any window, a stopped daemon or revoked credentials leave holes that close once the API
answers again. Days before the first synced day are the user's initial load.

Cost per tick: holes come from one query per table (the materialized partitions); the
settled flag needs one query per day, so the cursor keeps a watermark (every day up to it
is closed, so never looked at again) and a scan position. Each tick looks at most
SCAN_DAYS_PER_TICK days after the watermark, continuing where the last tick stopped and
wrapping around, so a day that keeps failing neither holds the watermark's window still
nor hides the days after it (day_status.scan_days).

The same scan judges the lake checks (every_day_settled, answer_window_kept,
no_unexplained_shrink: checks.py): the sensor reports their results from what its cursor
knows, when a verdict changes and at least every REPORT_EVERY, so no sync run reads the
days a second time and the checks cost nothing more as the history grows.

A day with a run queued or in progress is not asked for again. Whether a run is in
progress is Dagster's run status alone (automation.in_flight): a run whose worker died is
marked failed by Dagster's run monitoring, and its days come back.

A tick asks for at most CG_SETTLE_MAX_PER_TICK runs, oldest day first. A day whose last
attempt failed waits before the next one (10 min, doubling, at most 6 h, counted from when
the attempt was requested) and is retried forever: the run key carries the attempt number, counted without limit, because Dagster
never runs a run key twice. The tick log names each failing day and its last error.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    DagsterEventType,
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

from cg_assets import clock
from cg_assets.defs.automation import (
    SETTLE_OF_TAG,
    SYNC_JOB_SUFFIX,
    automation_tags,
    in_flight,
    range_request_tags,
    sensor_status,
)
from cg_assets.defs.checks import lake_verdicts
from cg_assets.defs.day_status import (
    DayStatus,
    Scan,
    ScanState,
    scan_days,
    table_report,
    window_options,
)
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.settings import LoadSettings
from cg_assets.sync import is_close_due, is_settle_due, revisit_due

SENSOR_SUFFIX = "settle_sensor"
SENSOR_NAME = DEFAULT_TENANT.name(SENSOR_SUFFIX)
SCAN_DAYS_PER_TICK = 62
# A revisit run fetches at most this many consecutive days (a month of open days is one run).
REVISIT_RANGE_DAYS = 31
RETRY_BACKOFF_FIRST = dt.timedelta(minutes=10)
RETRY_BACKOFF_MAX = dt.timedelta(hours=6)
ERROR_EXCERPT = 300
# When the sensor asked for an attempt: the back-off counts from there (the run's own
# end time is wall-clock, which simulated-time tests cannot move).
REQUESTED_AT_TAG = "cg_assets/requested_at"
ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
# The lake checks are reported again at least this often, unchanged or not: their latest
# result then always says the sensor is judging them (a stopped sensor shows as an old
# result), and a check shown as skipped by a run that selected it is soon replaced.
REPORT_EVERY = dt.timedelta(hours=1)


@dataclass
class SettleTick:
    run_requests: list[RunRequest] = field(default_factory=list)
    cursor: str | None = None
    notes: list[str] = field(default_factory=list)
    # The lake checks' results to record (the daemon records a sensor's asset events).
    evaluations: list[AssetCheckEvaluation] = field(default_factory=list)


def now_in(settings: LoadSettings) -> dt.datetime:
    return clock.utc_now().astimezone(settings.tz)


@dataclass(frozen=True)
class _Attempts:
    count: int
    last_end: dt.datetime | None
    going: bool
    last_run_id: str | None
    last_failed: bool


def _previous_attempts(instance: DagsterInstance, settle_of: str) -> _Attempts:
    """The settle/heal runs made so far for this (day, superseded materialization)."""
    filters = RunsFilter(tags={SETTLE_OF_TAG: settle_of})
    count = instance.get_runs_count(filters=filters)
    if not count:
        return _Attempts(0, None, False, None, False)
    last = instance.get_run_records(filters=filters, limit=1)[0]
    status = last.dagster_run.status
    going = status not in ENDED
    requested_at = last.dagster_run.tags.get(REQUESTED_AT_TAG)
    last_end = None
    if not going and requested_at:
        last_end = dt.datetime.fromisoformat(requested_at)
    elif not going and last.end_time is not None:
        last_end = dt.datetime.fromtimestamp(last.end_time, dt.timezone.utc)
    return _Attempts(
        count, last_end, going, last.dagster_run.run_id, status == DagsterRunStatus.FAILURE
    )


def _last_error(instance: DagsterInstance, run_id: str) -> str:
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        data = event.step_failure_data if event is not None else None
        if data is not None and data.error is not None:
            message = " ".join(data.error.message.split())
            return message[:ERROR_EXCERPT] + ("…" if len(message) > ERROR_EXCERPT else "")
    return "the run failed (see its logs)"


def evaluate_settle_tick(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
    cursor: str | None,
    tenant: Tenant = DEFAULT_TENANT,
) -> SettleTick:
    tick = SettleTick(cursor=cursor)
    state = ScanState.parse(cursor)
    scan = scan_days(instance, keys, settings, now, state, SCAN_DAYS_PER_TICK)
    if scan.first is None:
        tick.notes.append(
            "no day has been synced yet: the initial load is yours (docs/getting-started.md)"
        )
        return tick
    today = now.astimezone(settings.tz).date()
    options = window_options(settings)
    synced = scan.synced
    one_day = dt.timedelta(days=1)

    wanted: dict[dt.date, tuple[str, DayStatus | None]] = {}
    # Holes, at any age: a set difference, no per-day query.
    day = scan.first
    while day < today:
        if day not in synced:
            wanted[day] = ("heal", None)
        day += one_day

    # The days the scan read: settle, close or revisit those that are due.
    revisits: dict[dt.date, str] = {}
    for day, status in scan.read.items():
        if day not in synced:
            continue  # healed above, whole
        if not status.settled and is_settle_due(day, now, options):
            wanted[day] = ("settle", status)
        elif not status.closed and is_close_due(day, now, options):
            revisits[day] = "close"
        elif not status.closed and revisit_due(status.whole_fetch_at, now):
            revisits[day] = "revisit"
    tick.evaluations = _due_evaluations(scan, keys, settings, now)
    tick.cursor = scan.state.dump()

    busy = in_flight(instance, keys, tenant.name(SYNC_JOB_SUFFIX))
    # Days never tried first, then retries, each oldest first: days that keep failing never
    # take every run of every tick from days that were not tried yet.
    retries: list[tuple[dt.date, RunRequest]] = []
    for day in sorted(wanted):
        kind, status = wanted[day]
        if busy.holds(day):
            tick.notes.append(busy.why(day))
            continue
        if len(tick.run_requests) >= settings.settle_max_per_tick:
            tick.notes.append(f"{day}: {kind} waits for a later tick (CG_SETTLE_MAX_PER_TICK)")
            continue
        request = _request(instance, kind, day, status, now, tick.notes, tenant)
        if request is None:
            continue
        if request.run_key.endswith(":attempt-1"):
            tick.run_requests.append(request)
        else:
            retries.append((day, request))
    room = settings.settle_max_per_tick - len(tick.run_requests)
    tick.run_requests.extend(request for _, request in retries[:room])
    for day, _ in retries[room:]:
        tick.notes.append(f"{day}: its retry waits for a later tick (CG_SETTLE_MAX_PER_TICK)")
    for day in sorted(d for d in revisits if busy.holds(d)):
        tick.notes.append(busy.why(day))
    tick.run_requests.extend(
        _revisit_requests(
            {d: k for d, k in revisits.items() if not busy.holds(d)},
            now,
            settings.settle_max_per_tick,
            tick.notes,
        )
    )
    return tick


def _due_evaluations(
    scan: Scan, keys: Sequence[AssetKey], settings: LoadSettings, now: dt.datetime
) -> list[AssetCheckEvaluation]:
    """The lake checks' results whose verdict changed since the last report, or all of them
    once REPORT_EVERY has passed. A table whose days the scan has not all read yet (a
    cursor just begun, a long history) is not judged until it has: a verdict from part of
    the days would pass days not looked at yet."""
    state = scan.state
    last = dt.datetime.fromisoformat(state.reported_at) if state.reported_at else None
    stale = last is None or now - last >= REPORT_EVERY
    out: list[AssetCheckEvaluation] = []
    for key in keys:
        report = table_report(scan, key, settings, now)
        if report.unread:
            continue
        for verdict in lake_verdicts(key, report, state.closed_through):
            name = verdict.check_key.to_user_string()
            if stale or state.reported.get(name) != verdict.signature:
                out.append(verdict.as_evaluation())
                state.reported[name] = verdict.signature
    if stale and out:
        state.reported_at = now.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    return out


def _revisit_requests(
    days: dict[dt.date, str],
    now: dt.datetime,
    most: int,
    notes: list[str],
) -> list[RunRequest]:
    """Open days due a whole fetch, as range runs of consecutive days (one run fetches many
    days, CG_CONCURRENCY at a time): at most `most` runs of REVISIT_RANGE_DAYS days a tick.
    A failed range is asked for again at the next hour's tick (the run key carries the hour:
    Dagster never runs a run key twice)."""
    ranges: list[list[dt.date]] = []
    for day in sorted(days):
        if (
            ranges
            and day - ranges[-1][-1] == dt.timedelta(days=1)
            and (len(ranges[-1]) < REVISIT_RANGE_DAYS)
        ):
            ranges[-1].append(day)
        else:
            ranges.append([day])
    hour = now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H")
    requests = []
    for run_days in ranges[:most]:
        first, last = run_days[0], run_days[-1]
        kinds = sorted({days[d] for d in run_days})
        notes.append(f"{first}..{last}: {' and '.join(kinds)} ({len(run_days)} day(s))")
        requests.append(
            RunRequest(
                run_key=f"revisit:{first.isoformat()}:{last.isoformat()}:{hour}",
                tags={
                    **automation_tags("revisit", first, last),
                    **range_request_tags(first, last),
                    REQUESTED_AT_TAG: now.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
                },
            )
        )
    for run_days in ranges[most:]:
        notes.append(f"{run_days[0]}..{run_days[-1]}: waits for a later tick")
    return requests


def _request(
    instance: DagsterInstance,
    kind: str,
    day: dt.date,
    status: DayStatus | None,
    now: dt.datetime,
    notes: list[str],
    tenant: Tenant = DEFAULT_TENANT,
) -> RunRequest | None:
    superseded = status.latest_storage_id if status is not None else None
    settle_of = f"{day.isoformat()}:{superseded or 'none'}"
    if not tenant.is_default:
        # The attempts are counted by this tag across the instance: another tenant's heal
        # of the same day (superseding nothing) must not count as this tenant's.
        settle_of = f"{tenant.prefix}:{settle_of}"
    attempts = _previous_attempts(instance, settle_of)
    if attempts.going:
        notes.append(f"{day}: its {kind} run is still going")
        return None
    if attempts.count and attempts.last_end is not None:
        wait = min(RETRY_BACKOFF_MAX, RETRY_BACKOFF_FIRST * 2 ** min(attempts.count - 1, 16))
        error = (
            _last_error(instance, attempts.last_run_id)
            if attempts.last_failed and attempts.last_run_id
            else "the last run did not settle it"
        )
        if now < attempts.last_end + wait:
            notes.append(
                f"{day}: {kind} failed {attempts.count} time(s), last error: {error}; next "
                f"attempt after {(attempts.last_end + wait).isoformat(timespec='minutes')}"
            )
            return None
        notes.append(f"{day}: {kind} attempt {attempts.count + 1} (last error: {error})")
    return RunRequest(
        run_key=f"{kind}:{settle_of}:attempt-{attempts.count + 1}",
        partition_key=day.isoformat(),
        tags={
            **automation_tags(kind, day),
            SETTLE_OF_TAG: settle_of,
            REQUESTED_AT_TAG: now.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        },
    )


def build_settle_sensor(
    keys: Sequence[AssetKey], settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> SensorDefinition:
    @sensor(
        name=tenant.name(SENSOR_SUFFIX),
        job_name=tenant.name(SYNC_JOB_SUFFIX),
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=sensor_status(settings.automation),
        description=(
            f"Re-syncs each day in full once it is {settings.settle_after_hours} h old "
            "(CG_SETTLE_AFTER_HOURS), and syncs every day after the first synced one that was "
            "never synced, at any age; at most CG_SETTLE_MAX_PER_TICK runs a tick, oldest first. "
            "Reports the lake checks (every_day_settled, answer_window_kept, "
            "no_unexplained_shrink) from the same scan."
        ),
    )
    def _settle(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        tick = evaluate_settle_tick(
            context.instance, keys, settings, now_in(settings), context.cursor, tenant
        )
        for note in tick.notes:
            context.log.info(note)
        skip = None if tick.run_requests else "; ".join(tick.notes) or "every day is settled"
        if not tick.run_requests and not tick.evaluations:
            context.update_cursor(tick.cursor)
            return SkipReason(skip)
        return SensorResult(
            run_requests=tick.run_requests,
            skip_reason=skip,
            cursor=tick.cursor,
            # The lake checks' results, from this tick's scan (checks.py).
            asset_events=tick.evaluations,
        )

    return _settle
