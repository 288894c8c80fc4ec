"""`customergauge/survey_funnel`: one row per day, from the same day of both tables.

Computed with polars over lazy scans of the two day files, which the lake IO manager
(io_managers.py) hands in as LazyFrames; the returned DataFrame is written by the same IO
manager as `{CG_LAKE_ROOT}/customergauge/survey_funnel/date=YYYY-MM-DD/data.parquet`,
atomically. Kept up to date by declarative automation: a day is recomputed whenever
either table's same day is materialized again, at any age (a settle two days later, a
full refresh months later), once both tables have the day and neither is syncing it.
(`AutomationCondition.eager()` would only look at the latest day.)

Columns (counts of survey records whose date field falls on the day; with the default
date fields that is the day the invitation was sent, in both tables):
- `sent`: records in both tables (an invitation is either answered or not, never both);
- `responded`: records in responses; `non_responses`: records in non-responses;
- `response_rate`: responded / sent (null when nothing was sent);
- `failed`, `opened`, `clicked`: unanswered invitations (non-responses) that failed or
  bounced, were opened, were clicked, by their status and dates;
- `promoters`, `passives`, `detractors`: responses whose `nps` is 9-10, 7-8, 0-6;
- `nps`: the Net Promoter Score, % promoters - % detractors of the responses that gave
  a score (-100 to 100; null when none did).

A table whose day has not been synced yet (no materialization of that day in the instance)
is unknown, not empty: its counts, `sent` and `response_rate` are null, and the run's
materialization says which table is missing (`unknown`). A first load that fetched only one
table never shows a response rate of 0.0.

A send day changes for as long as it is open for answers (CG_ANSWER_WINDOW_DAYS): every
revisit that records the day again recomputes its row.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations.
import datetime as dt

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    BackfillPolicy,
    DagsterInstance,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from cg_assets.customergauge import wire
from cg_assets.customergauge.endpoints import NON_RESPONSES, RESPONSES
from cg_assets.defs.assets import asset_key_for
from cg_assets.defs.automation import sensor_status
from cg_assets.defs.funnel_schema import FUNNEL_COLUMNS, FUNNEL_SCHEMA, FUNNEL_TABLE
from cg_assets.defs.partitions import daily_partitions
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.settings import LoadSettings

FUNNEL_KEY: AssetKey = DEFAULT_TENANT.key(FUNNEL_TABLE)
FUNNEL_SENSOR_SUFFIX = "funnel_automation"
FUNNEL_SENSOR = DEFAULT_TENANT.name(FUNNEL_SENSOR_SUFFIX)

FUNNEL_COLUMN_SCHEMA = TableSchema(
    columns=[
        TableColumn(f.name, str(f.type), description=FUNNEL_COLUMNS[f.name]) for f in FUNNEL_SCHEMA
    ]
)
# The columns that cannot be known while a table's day has not been synced.
_SHARED = ("sent", "response_rate")
UNKNOWN_WITHOUT = {
    NON_RESPONSES.name: ("non_responses", "failed", "opened", "clicked", *_SHARED),
    RESPONSES.name: ("responded", "promoters", "passives", "detractors", "nps", *_SHARED),
}

# eager() without its "latest day only" clause: a settle re-syncs days two days back.
FUNNEL_CONDITION = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("recompute when either table's day changes")

_FUNNEL_DTYPES = pl.DataFrame(FUNNEL_SCHEMA.empty_table()).schema


def nps_category(score: pl.Expr) -> pl.Expr:
    """promoter (9-10), passive (7-8), detractor (0-6), or null for no or a bad score."""
    return (
        pl.when(score.is_between(wire.PROMOTER_MIN, 10))
        .then(pl.lit("promoter"))
        .when(score.is_between(wire.PASSIVE_MIN, wire.PROMOTER_MIN - 1))
        .then(pl.lit("passive"))
        .when(score.is_between(0, wire.PASSIVE_MIN - 1))
        .then(pl.lit("detractor"))
    )


def nps_score(promoters: pl.Expr, passives: pl.Expr, detractors: pl.Expr) -> pl.Expr:
    scored = promoters + passives + detractors
    return pl.when(scored > 0).then(100.0 * (promoters - detractors) / scored)


def funnel_of(non_responses: pl.LazyFrame, responses: pl.LazyFrame) -> pl.DataFrame:
    """The funnel row of one day's (or a range's) two tables."""
    status = pl.col(wire.STATUS)
    unanswered = non_responses.select(
        pl.len().alias("non_responses"),
        status.str.contains(wire.STATUS_FAILURE_PATTERN).fill_null(False).sum().alias("failed"),
        (pl.col(wire.DATE_OPENED).is_not_null() | status.is_in(list(wire.STATUS_OPENED)))
        .fill_null(False)
        .sum()
        .alias("opened"),
        (pl.col(wire.DATE_CLICKED).is_not_null() | status.is_in(list(wire.STATUS_CLICKED)))
        .fill_null(False)
        .sum()
        .alias("clicked"),
    )
    category = nps_category(pl.col(wire.NPS))
    if wire.NPS not in responses.collect_schema().names():
        # a file written before nps was typed (schema 1): fetched again whole by its next
        # sync; until then its scores are unknown
        responses = responses.with_columns(pl.lit(None, pl.Int64).alias(wire.NPS))
    answered = responses.select(
        pl.len().alias("responded"),
        # Int64, not polars' unsigned sums: NPS subtracts them
        (category == "promoter").fill_null(False).sum().cast(pl.Int64).alias("promoters"),
        (category == "passive").fill_null(False).sum().cast(pl.Int64).alias("passives"),
        (category == "detractor").fill_null(False).sum().cast(pl.Int64).alias("detractors"),
    )
    row = (
        pl.concat([unanswered, answered], how="horizontal")
        .with_columns(sent=pl.col("non_responses") + pl.col("responded"))
        .with_columns(
            response_rate=pl.when(pl.col("sent") > 0).then(pl.col("responded") / pl.col("sent")),
            nps=nps_score(pl.col("promoters"), pl.col("passives"), pl.col("detractors")),
            computed_at=pl.lit(dt.datetime.now(dt.timezone.utc)),
        )
        .collect()
    )
    return row.select(pl.col(name).cast(dtype) for name, dtype in _FUNNEL_DTYPES.items())


def without_unknown(row: pl.DataFrame, unsynced: list[str]) -> pl.DataFrame:
    """The row with every figure that depends on an unsynced table set to null."""
    unknown = {column for table in unsynced for column in UNKNOWN_WITHOUT[table]}
    return row.with_columns(pl.lit(None, dtype=row.schema[c]).alias(c) for c in sorted(unknown))


def unsynced_tables(
    instance: DagsterInstance, day: str, tenant: Tenant = DEFAULT_TENANT
) -> list[str]:
    """The tables whose `day` has no materialization yet: their rows are unknown."""
    return [
        endpoint.name
        for endpoint in (NON_RESPONSES, RESPONSES)
        if not instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key_for(endpoint, tenant), asset_partitions=[day]),
            limit=1,
        ).records
    ]


def row_metadata(row: pl.DataFrame, unsynced: list[str]) -> dict[str, MetadataValue]:
    """The day's figures, as the materialization shows them (null figures left out)."""
    values = row.row(0, named=True)
    metadata: dict[str, MetadataValue] = {}
    for name in ("sent", "responded", "non_responses", "failed", "opened", "clicked"):
        if values[name] is not None:
            metadata[name] = MetadataValue.int(values[name])
    for name in ("response_rate", "nps"):
        if values[name] is not None:
            metadata[name] = MetadataValue.float(round(values[name], 4))
    if unsynced:
        metadata["unknown"] = MetadataValue.text(
            f"{' and '.join(unsynced)} not synced for this day yet: their figures, sent and "
            "response_rate are null. The funnel is recomputed when the day is synced."
        )
    return metadata


def build_funnel_asset(settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT) -> AssetsDefinition:
    @asset(
        key=tenant.key(FUNNEL_TABLE),
        group_name=tenant.group,
        description=__doc__,
        partitions_def=daily_partitions(settings),
        ins={
            "non_responses": AssetIn(key=asset_key_for(NON_RESPONSES, tenant)),
            "responses": AssetIn(key=asset_key_for(RESPONSES, tenant)),
        },
        io_manager_key=tenant.io_manager_key,
        backfill_policy=BackfillPolicy.multi_run(1),  # the lake stores one day per output
        automation_condition=FUNNEL_CONDITION,
        kinds={"polars", "parquet"},
        metadata={
            "layout": f"{{{tenant.lake_root_name}}}/customergauge/{FUNNEL_TABLE}/date=YYYY-MM-DD/data.parquet",
            "dagster/column_schema": FUNNEL_COLUMN_SCHEMA,
        },
    )
    def _funnel(
        context: AssetExecutionContext, non_responses: pl.LazyFrame, responses: pl.LazyFrame
    ) -> pl.DataFrame:
        unsynced = unsynced_tables(context.instance, context.partition_key, tenant)
        row = without_unknown(funnel_of(non_responses, responses), unsynced)
        # Numbers on the materialization: the UI plots each over the days (asset → Plots).
        context.add_output_metadata(row_metadata(row, unsynced))
        context.log.info(
            f"{context.partition_key}: sent {row['sent'][0]}, responded {row['responded'][0]}, "
            f"NPS {row['nps'][0]}"
            + (f"; not synced yet: {', '.join(unsynced)}" if unsynced else "")
        )
        return row

    return _funnel


def build_funnel_sensor(
    settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> AutomationConditionSensorDefinition:
    """Evaluates the funnel's automation; on or off with the rest (CG_AUTOMATION)."""
    return AutomationConditionSensorDefinition(
        tenant.name(FUNNEL_SENSOR_SUFFIX),
        target=[tenant.key(FUNNEL_TABLE)],
        default_status=sensor_status(settings.automation),
    )
