"""What the instance says about each day of the lake's tables: synced, settled, holes.

Shared by the settle sensor (what to request) and the hole check (what to report). The
check's "hole" is a day after the first synced day, past the settle lag, that is not
settled (`unsettled_days`); the sensor requests each of those, and also heals a day never
synced before it is past the lag (today and yesterday are the schedule's).
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from cg_assets.settings import LoadSettings
from cg_assets.sync import settle_due_at


@dataclass(frozen=True)
class DayStatus:
    materialized: bool  # every table has a materialization of the day
    settled: bool  # and every table's latest one is settled
    latest_storage_id: int | None  # the newest of those materializations


def day_status(instance: DagsterInstance, keys: Sequence[AssetKey], day: dt.date) -> DayStatus:
    materialized, settled, newest = True, True, None
    for key in keys:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
        ).records
        if not records:
            materialized = settled = False
            continue
        event = records[0].asset_materialization
        entry = event.metadata.get("settled") if event is not None else None
        settled = settled and bool(entry is not None and entry.value)
        newest = max(newest or 0, records[0].storage_id)
    return DayStatus(materialized, settled, newest)


def materialized_days(instance: DagsterInstance, keys: Sequence[AssetKey]) -> set[dt.date]:
    """Days every table has a materialization of (one indexed query per table)."""
    out: set[dt.date] | None = None
    for key in keys:
        days = {dt.date.fromisoformat(p) for p in instance.get_materialized_partitions(key)}
        out = days if out is None else out & days
    return out or set()


def first_synced_day(instance: DagsterInstance, keys: Sequence[AssetKey]) -> dt.date | None:
    """The oldest day any table has synced: days before it are the user's initial load."""
    days: set[str] = set()
    for key in keys:
        days |= instance.get_materialized_partitions(key)
    return dt.date.fromisoformat(min(days)) if days else None


def last_settle_due_day(now: dt.datetime, settings: LoadSettings) -> dt.date:
    """The newest day whose end lies at least the settle lag (elapsed hours) in the past."""
    day = now.astimezone(settings.tz).date()
    while now < settle_due_at(day, settings.timezone, settings.settle_after_hours):
        day -= dt.timedelta(days=1)
    return day


def unsettled_days(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
) -> list[dt.date]:
    """Holes: days after the first synced day, past the settle lag, not settled."""
    first = first_synced_day(instance, keys)
    if first is None:
        return []
    first = max(first, settings.start_date)
    last = last_settle_due_day(now, settings)
    synced = materialized_days(instance, keys)
    out = []
    day = first
    while day <= last:
        if day not in synced or not day_status(instance, keys, day).settled:
            out.append(day)
        day += dt.timedelta(days=1)
    return out
