"""Schema drift in the Dagster layer: each fetched day's materialization records the field
paths that arrived untyped (with counts) and the typed columns it never filled
(lake/drift.py); the `no_new_fields` check (WARN) names any path not seen in the previous
synced day; CG_SCHEMA_CONTRACT=freeze fails such a day instead, before anything is written.

"The previous synced day" is the nearest earlier day whose latest materialization recorded
its paths (a day adopted or skipped records none). A day with no such day before it is the
baseline: nothing is new. Paths and counts only, never values.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
)

from cg_assets.sync import DayResult

EXTRA_PATHS_KEY = "extra_field_paths"
NULL_COLUMNS_KEY = "null_columns"
CHECK_NAME = "no_new_fields"
# How many earlier synced days are looked at for one that recorded its paths.
LOOK_BACK = 10
SAMPLE = 10


def drift_metadata(
    result: DayResult, instance: DagsterInstance, key: AssetKey, partition: str
) -> dict[str, Any]:
    """The day's drift entries; a day whose file a fetch left unchanged keeps its last ones."""
    if result.extra_field_paths is None:
        if not result.plan.fetches:
            return {}  # adopted or skipped: not a synced day's view of its fields
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        previous = records[0].asset_materialization if records else None
        if previous is None:
            return {}
        names = (EXTRA_PATHS_KEY, NULL_COLUMNS_KEY)
        return {n: previous.metadata[n] for n in names if n in previous.metadata}
    return {
        EXTRA_PATHS_KEY: MetadataValue.json(result.extra_field_paths),
        NULL_COLUMNS_KEY: MetadataValue.json(result.null_columns or []),
    }


def recorded_paths(instance: DagsterInstance, key: AssetKey, day: dt.date) -> set[str] | None:
    """The paths the day's latest materialization recorded; None if it recorded none."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    entry = materialization.metadata.get(EXTRA_PATHS_KEY) if materialization else None
    if entry is None or not isinstance(entry.value, dict):
        return None
    return set(entry.value)


def previous_paths(
    instance: DagsterInstance, key: AssetKey, day: dt.date, synced: Iterable[str]
) -> tuple[dt.date, set[str]] | None:
    """The previous synced day (see module docstring) and its paths, or None."""
    earlier = sorted((p for p in synced if p < day.isoformat()), reverse=True)
    for partition in earlier[:LOOK_BACK]:
        other = dt.date.fromisoformat(partition)
        paths = recorded_paths(instance, key, other)
        if paths is not None:
            return other, paths
    return None


def frozen_paths(
    instance: DagsterInstance, key: AssetKey, days: Sequence[dt.date]
) -> dict[dt.date, frozenset[str]]:
    """For CG_SCHEMA_CONTRACT=freeze, per day: the paths it may carry (the previous synced
    day's and its own last recorded ones). A day with neither is not frozen (the baseline)."""
    synced = instance.get_materialized_partitions(key)
    out: dict[dt.date, frozenset[str]] = {}
    for day in days:
        previous = previous_paths(instance, key, day, synced)
        own = recorded_paths(instance, key, day)
        if previous is None and own is None:
            continue
        out[day] = frozenset((previous[1] if previous else set()) | (own or set()))
    return out


def drift_check_spec(key: AssetKey) -> AssetCheckSpec:
    return AssetCheckSpec(
        CHECK_NAME,
        asset=key,
        description="Every field path that arrived untyped (in extra_fields) on a day written "
        "by the run was seen on the previous synced day too. A new path is named, never its "
        "values; the day's materialization lists all paths with counts (extra_field_paths) "
        "and the typed columns null in every row (null_columns).",
    )


def drift_check_result(
    instance: DagsterInstance, key: AssetKey, days: Sequence[dt.date]
) -> AssetCheckResult:
    synced = instance.get_materialized_partitions(key)
    new: dict[str, list[str]] = {}
    for day in sorted(days):
        paths = recorded_paths(instance, key, day)
        previous = previous_paths(instance, key, day, synced)
        if paths is None or previous is None:
            continue
        added = sorted(paths - previous[1])
        if added:
            new[day.isoformat()] = added[:100]
    named = sorted({p for paths in new.values() for p in paths})
    return AssetCheckResult(
        asset_key=key,
        check_name=CHECK_NAME,
        passed=not new,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{len(named)} field path(s) not seen on the previous synced day arrived untyped "
            "(kept in extra_fields): "
            + ", ".join(named[:SAMPLE])
            + (" …" if len(named) > SAMPLE else "")
            + f" (on {', '.join(sorted(new))}). Type them, or set CG_SCHEMA_CONTRACT=freeze to "
            "fail such days."
            if new
            else f"No new untyped field path on the {len(days)} day(s) written."
        ),
        metadata={"new_fields_by_day": new, "days_checked": len(days)},
    )
