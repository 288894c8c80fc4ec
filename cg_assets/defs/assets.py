"""One daily-partitioned asset per endpoint row: sync each day of the run into the lake.

A range backfill is a single run. Each day is recorded (its own materialization, with its
cursor) the moment its file is published, so a run killed on day 650 of 700 keeps the
649 days it finished, and re-running the range fetches only what is left: a settled day
whose file matches its materialization is skipped, a file published but never recorded is
adopted. Any exception in a day fails that day alone; the run then fails naming the
failed days and their errors. Every rewrite of a day holds that day's writer lock in the
lake (lake/locks.py), so no two writers, however launched, ever merge into one day.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations.
import datetime as dt
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    DagsterInstance,
    Failure,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)
from pydantic import Field

from cg_assets import clock
from cg_assets.customergauge.endpoints import Endpoint
from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.day_runner import run_days
from cg_assets.defs import checks, retention_status, run_guards, schema_drift
from cg_assets.defs.dagster_warnings import quiet_dagster_warnings
from cg_assets.defs.freshness import freshness_policy
from cg_assets.defs.partitions import daily_partitions
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.lake.cursor_codec import decode_cursor, encode_cursor
from cg_assets.lake.schema import RecordDecoder
from cg_assets.settings import LoadSettings, SettingsError
from cg_assets.sync import (
    DayResult,
    StoredState,
    SyncOptions,
    adopt_day,
    closes_at,
    plan_day,
    skipped_day,
    sync_day,
)

quiet_dagster_warnings()  # for code that imports the assets without definitions.py

ASSET_PREFIX = DEFAULT_TENANT.prefix
GROUP = DEFAULT_TENANT.group
# Runs that write a table should not overlap: the pool is the one thing that queues them
# (with a pool limit in the instance, as .dagster_home/dagster.yaml sets), however they
# were launched. The lake's day lock (lake/locks.py) is the guard where the data lives: it
# keeps two writers out of one day even where no limit queues them.
LAKE_POOL = DEFAULT_TENANT.pool
# When a day was recorded, by the sync's clock (cg_assets.clock): day_freshness.py reads it.
SYNCED_AT_KEY = "synced_at"


def asset_key_for(endpoint: Endpoint, tenant: Tenant = DEFAULT_TENANT) -> AssetKey:
    return tenant.key(endpoint.name)


class SyncRunConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description="Fetch each day of the run whole and replace its file, instead of catching "
        "up from the stored cursor. A day younger than CG_SETTLE_AFTER_HOURS stays unsettled.",
    )


def stored_state(instance: DagsterInstance, key: AssetKey, partition: str) -> StoredState | None:
    """The cursor and settings the partition's latest materialization recorded."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return None
    md = materialization.metadata

    def value(name: str) -> Any:
        entry = md.get(name)
        return entry.value if entry is not None else None

    return StoredState(
        cursor=decode_cursor(value("cursor")),
        date_field=value("date_field"),
        timezone=value("timezone"),
        settled=bool(value("settled")),
        closed=bool(value("closed")),
    )


def sync_options(endpoint: Endpoint, settings: LoadSettings) -> SyncOptions:
    """How this endpoint's days are planned and written, from its table row and the settings."""
    return SyncOptions(
        date_field=endpoint.date_field(settings),  # each endpoint has its own setting
        timezone=settings.timezone,
        settle_after_hours=settings.settle_after_hours,
        answer_window_days=settings.answer_window_days,
        catch_up_by_cursor=endpoint.catch_up_by_cursor,
        schema_version=endpoint.schema_version,
    )


def result_metadata(result: DayResult, options: SyncOptions) -> dict[str, Any]:
    """Per-partition metadata. Keys, statuses, dates and counts only: no personal data."""
    stats = result.stats
    cursor = result.cursor
    md: dict[str, Any] = {
        "cursor": MetadataValue.text(encode_cursor(cursor)),
        "dagster/row_count": MetadataValue.int(result.row_count),
        "rows_added": MetadataValue.int(result.rows_added),
        "rows_removed": MetadataValue.int(result.rows_removed),
        "status_changed": MetadataValue.int(result.status_changed),
        "settled": MetadataValue.bool(result.plan.settled_after),
        "closed": MetadataValue.bool(result.plan.final),
        # open (answers still come), settled (past the settle lag, still open), closed (final)
        "stage": MetadataValue.text(result.plan.stage),
        "open_until": MetadataValue.text(
            closes_at(result.day, options).isoformat(timespec="minutes")
        ),
        # When the newest whole fetch in the file began: revisits are planned from it.
        "whole_fetch_at": MetadataValue.text(_iso(result.plan.last_whole_fetch)),
        # The longest wait between whole fetches since the settle (the window's promise).
        "longest_revisit_gap_hours": MetadataValue.float(result.plan.gap_hours or 0.0),
        "mode": MetadataValue.text(result.plan.mode),
        "fetch": MetadataValue.text(
            "none"
            if not result.plan.fetches
            else "full"
            if result.plan.full_fetch
            else "incremental"
        ),
        "reason": MetadataValue.text(result.plan.reason),
        "path": MetadataValue.path(result.path),
        "api_requests": MetadataValue.int(stats.requests),
        "retries": MetadataValue.int(sum(stats.retries.values())),
        "retries_by_cause": MetadataValue.json(dict(stats.retries)),
        "token_refreshes": MetadataValue.int(stats.token_requests),
        "status_counts": MetadataValue.json(result.status_counts),
        "out_of_day": MetadataValue.int(result.out_of_day),
        "out_of_day_keys": MetadataValue.json(result.out_of_day_keys),
        "duplicates_dropped": MetadataValue.int(result.duplicates_dropped),
        # A whole fetch asks again for an empty page that may be a glitch (sync.py).
        "end_rechecks": MetadataValue.int(result.end_rechecks),
        "false_ends": MetadataValue.int(result.false_ends),
        "unexplained_removals": MetadataValue.int(result.unexplained_removals),
        "extra_fields_rows": MetadataValue.int(result.extra_fields_rows),
        "bytes_written": MetadataValue.int(result.bytes_written),
        "file_rewritten": MetadataValue.bool(result.rewritten),
        "sync_seconds": MetadataValue.float(round(result.seconds, 3)),
        "date_field": MetadataValue.text(options.date_field),
        "timezone": MetadataValue.text(options.timezone),
        "preview": MetadataValue.md(_preview_markdown(result.preview)),
        "pii": MetadataValue.text(result.pii),
        "suppressed_rows": MetadataValue.int(result.suppressed_rows),
    }
    return md


def _iso(moment: dt.datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""


def _preview_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no rows_"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append(
            "| " + " | ".join("" if row[c] is None else str(row[c]) for c in columns) + " |"
        )
    return "\n".join(lines)


def column_schema(endpoint: Endpoint) -> TableSchema:
    schema = RecordDecoder(endpoint.columns).schema
    return TableSchema(
        columns=[
            TableColumn(
                f.name,
                str(f.type),
                description=(f.metadata or {}).get(b"description", b"").decode(),
            )
            for f in schema
        ]
    )


def build_sync_asset(
    endpoint: Endpoint, settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> AssetsDefinition:
    key = asset_key_for(endpoint, tenant)
    options = sync_options(endpoint, settings)
    date_field = options.date_field

    @asset(
        key=key,
        group_name=tenant.group,
        description=endpoint.description,
        partitions_def=daily_partitions(settings),
        backfill_policy=BackfillPolicy.single_run(),
        freshness_policy=freshness_policy(settings),
        kinds={"customergauge", "parquet"},
        pool=tenant.pool,
        # Resource keys are the tenant's: two tenants in one code location bind their own.
        required_resource_keys={tenant.client_resource_key, tenant.lake_resource_key},
        # Days are recorded one by one as AssetMaterialization events the moment they are
        # published (see module docstring), never as one output at the end of the run.
        output_required=False,
        check_specs=[
            *checks.inline_check_specs(key, endpoint),
            schema_drift.drift_check_spec(key),
        ],
        # Downstream assets get a day or a range of days as a polars LazyFrame.
        io_manager_key=tenant.io_manager_key,
        metadata={
            "dagster/column_schema": column_schema(endpoint),
            "date_field": date_field,
            "timezone": settings.timezone,
            "settle_after_hours": settings.settle_after_hours,
            "answer_window_days": settings.answer_window_days,
            "layout": f"{{{tenant.lake_root_name}}}/customergauge/{endpoint.name}/date=YYYY-MM-DD/data.parquet",
            "extra_fields": "Record fields unknown to this version are kept as JSON in extra_fields.",
        },
    )
    def _sync(context: AssetExecutionContext, config: SyncRunConfig) -> Iterator[AssetCheckResult]:
        customergauge: CustomerGaugeResource = getattr(
            context.resources, tenant.client_resource_key
        )
        lake: LakeResource = getattr(context.resources, tenant.lake_resource_key)
        try:
            customergauge.validate()
            api = run_guards.check_run_start(context, customergauge, lake)
            parquet_lake = lake.get_lake()
            privacy = lake.get_privacy(parquet_lake)
        except SettingsError as exc:
            # A Failure is reported as its message, not wrapped in Dagster's step error with
            # the message again as its cause: a setting's error is read once, on top.
            raise Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from None
        # The lake learns its API only when this run's first day file is about to be published.
        parquet_lake.before_publish = lambda: api.record_in_lake(parquet_lake)
        holder = f"run {context.run_id} ({endpoint.name})"
        days = [dt.date.fromisoformat(p) for p in context.partition_keys]
        failed: dict[str, str] = {}
        recorded: list[str] = []
        written: list[dt.date] = []
        api_out_of_day: dict[dt.date, int] = {}
        with customergauge.get_client() as client:
            # The instance is read here, in the run's own thread: the days then sync in
            # worker threads (CG_CONCURRENCY) and are recorded back in this thread.
            stored = {day: stored_state(context.instance, key, day.isoformat()) for day in days}
            frozen = (
                schema_drift.frozen_paths(context.instance, key, days)
                if settings.schema_contract == "freeze"
                else {}
            )

            def sync_one(day: dt.date) -> DayResult:
                # Plan under the lock: the footer it reads is the one this writer replaces.
                with parquet_lake.day_lock(endpoint.name, day, holder):
                    plan = plan_day(
                        day,
                        now=clock.utc_now(),
                        options=options,
                        full_refresh=config.full_refresh,
                        stored=stored[day],
                        file_state=parquet_lake.day_state(endpoint.name, day),
                    )
                    if plan.mode == "skip":
                        return skipped_day(day, plan)
                    if not plan.fetches:
                        return adopt_day(parquet_lake, endpoint, day, plan)
                    return sync_day(
                        client,
                        parquet_lake,
                        endpoint,
                        day,
                        plan,
                        options,
                        privacy=privacy,
                        frozen_paths=frozen.get(day),
                    )

            def record(day: dt.date, result: DayResult | None, error: BaseException | None) -> None:
                partition = day.isoformat()
                if error is not None or result is None:
                    message = client.redact(f"{type(error).__name__}: {error}")
                    failed[partition] = message
                    context.log.error(
                        f"{partition}: failed, its previous file is unchanged: {message}"
                    )
                    return
                plan = result.plan
                if plan.mode == "skip":
                    context.log.info(f"{partition}: skipped — {plan.reason}")
                    return
                api.record_in_lake(parquet_lake)  # an adopted day was published before
                # Recorded now, not at the end of the run: a crash later keeps this day.
                context.log_event(
                    AssetMaterialization(
                        asset_key=key,
                        partition=partition,
                        metadata={
                            **result_metadata(result, options),
                            # which API the day came from (run_guards.instance_fingerprint)
                            run_guards.FINGERPRINT_KEY: MetadataValue.text(api.fingerprint),
                            # when, by the sync's clock: the per-day freshness check's input
                            SYNCED_AT_KEY: MetadataValue.text(_iso(clock.utc_now())),
                            **schema_drift.drift_metadata(result, context.instance, key, partition),
                        },
                    )
                )
                recorded.append(partition)
                if not plan.fetches:
                    context.log.info(f"{partition}: {plan.mode} — {plan.reason}")
                    return
                written.append(day)
                api_out_of_day[day] = result.out_of_day
                context.log.info(
                    f"{partition}: {plan.mode} — {plan.reason}. {result.row_count} rows "
                    f"({result.rows_added} added, {result.rows_removed} removed, "
                    f"{result.status_changed} changed status) in {result.stats.requests} "
                    f"requests, {result.seconds:.2f} s; cursor {result.cursor!r}"
                )
                if result.unexplained_removals:
                    context.log.warning(
                        f"{partition}: {result.unexplained_removals} row(s) are gone from the "
                        f"API, in a table whose rows never leave; a second whole fetch agreed, "
                        "so the day was published without them (check no_unexplained_shrink)."
                    )
                if result.false_ends:
                    context.log.warning(
                        f'{partition}: the API sent an empty page ("done") before the '
                        f"day's end {result.false_ends} time(s); asked again, it sent the "
                        "rest, so nothing was cut."
                    )
                if result.out_of_day:
                    context.log.warning(
                        f"{partition}: the API returned {result.out_of_day} record(s) whose "
                        f"{options.date_field} is not on this day; they were not written."
                    )

            concurrency = client.settings.concurrency
            if len(days) > 1:
                context.log.info(
                    f"{len(days)} days, {min(concurrency, len(days))} at a time (CG_CONCURRENCY)"
                )
            run_days(days, sync_one, concurrency, record)
        adopted = api.adopted_warning() if recorded else None
        if adopted:
            context.log.warning(adopted)
        yield from checks.run_inline_checks(
            key, endpoint, parquet_lake, written, date_field, api_out_of_day
        )
        unset = retention_status.nothing_to_judge(key, privacy.settings)
        if unset is not None:
            context.log_event(unset)  # else the nightly retention job judges the check
        yield schema_drift.drift_check_result(context.instance, key, written)
        if failed:
            raise Failure(
                description=_failure_description(failed, len(days)),
                metadata={
                    "failed_days": MetadataValue.json(sorted(failed)),
                    # each day's error (secrets redacted): the alert sensor posts one a day
                    "errors_by_day": MetadataValue.json(dict(sorted(failed.items()))),
                    "recorded_days": MetadataValue.json(recorded),
                },
            )

    return _sync


FAILURES_SHOWN = 10  # a failed backfill of a year must not write a 700 KB event


def _failure_description(failed: dict[str, str], days: int) -> str:
    shown = sorted(failed.items())[:FAILURES_SHOWN]
    text = f"{len(failed)} of {days} day(s) failed: " + "; ".join(f"{p}: {m}" for p, m in shown)
    if len(failed) > FAILURES_SHOWN:
        text += f"; and {len(failed) - FAILURES_SHOWN} more (each day's error is in the run's log)"
    return text
