"""What the instance says about each day of the lake's tables: synced, settled, holes.

Shared by the settle sensor (what to request) and the hole check (what to report). The
check's "hole" is a day after the first synced day, past the settle lag, that is not
settled (`unsettled_days`); the sensor requests each of those, and also heals a day never
synced before it is past the lag (today and yesterday are the schedule's).
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from cg_assets.settings import LoadSettings
from cg_assets.sync import PROMISED_GAP, SyncOptions, closes_at, settle_due_at


@dataclass(frozen=True)
class DayStatus:
    materialized: bool  # every table has a materialization of the day
    settled: bool  # and every table's latest one is settled
    latest_storage_id: int | None  # the newest of those materializations
    closed: bool = False  # every table's latest one is closed (final)
    # The oldest of the tables' last whole fetches (None if any is unknown): revisits
    # are planned from it.
    whole_fetch_at: dt.datetime | None = None
    longest_gap_hours: float = 0.0  # the longest wait between whole fetches, any table
    # Rows the latest whole fetch found gone from a table whose rows never leave (sync.py).
    unexplained_removals: int = 0


def day_status(instance: DagsterInstance, keys: Sequence[AssetKey], day: dt.date) -> DayStatus:
    materialized, settled, closed, newest = True, True, True, None
    whole_at: list[dt.datetime | None] = []
    gap = 0.0
    removals = 0
    for key in keys:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
        ).records
        if not records:
            materialized = settled = closed = False
            whole_at.append(None)
            continue
        event = records[0].asset_materialization
        md = event.metadata if event is not None else {}
        settled = settled and bool(_value(md, "settled"))
        closed = closed and bool(_value(md, "closed"))
        whole_at.append(_moment(_value(md, "whole_fetch_at")))
        gap = max(gap, float(_value(md, "longest_revisit_gap_hours") or 0.0))
        removals += int(_value(md, "unexplained_removals") or 0)
        newest = max(newest or 0, records[0].storage_id)
    oldest = None if not whole_at or None in whole_at else min(w for w in whole_at if w)
    return DayStatus(materialized, settled, newest, closed, oldest, gap, removals)


def _value(metadata: Mapping[str, Any], name: str) -> Any:
    entry = metadata.get(name)
    return entry.value if entry is not None else None


def _moment(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


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


@dataclass(frozen=True)
class LakeDays:
    holes: list[dt.date]  # past the settle lag and not settled, or past the window, not closed
    # Days whose whole fetches were more than PROMISED_GAP apart after the settle (an outage,
    # a stopped daemon): an answer then took longer than promised to reach the lake.
    late_revisits: dict[dt.date, float]
    # Days whose latest whole fetch dropped rows that never leave the API (two fetches agreed).
    shrunk: dict[dt.date, int] = field(default_factory=dict)


def lake_days(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
) -> LakeDays:
    """One pass over the days after the first synced day that are past the settle lag."""
    report = LakeDays([], {})
    first = first_synced_day(instance, keys)
    if first is None:
        return report
    first = max(first, settings.start_date)
    last = last_settle_due_day(now, settings)
    last_closed = last_close_due_day(now, settings)
    synced = materialized_days(instance, keys)
    promised = PROMISED_GAP.total_seconds() / 3600
    day = first
    while day <= last:
        if day not in synced:
            report.holes.append(day)
        else:
            status = day_status(instance, keys, day)
            if not status.settled or (day <= last_closed and not status.closed):
                report.holes.append(day)
            if status.longest_gap_hours > promised:
                report.late_revisits[day] = status.longest_gap_hours
            if status.unexplained_removals:
                report.shrunk[day] = status.unexplained_removals
        day += dt.timedelta(days=1)
    return report


def unsettled_days(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
) -> list[dt.date]:
    """Holes: days after the first synced day, past the settle lag, not settled, or past
    their answer window and not closed."""
    return lake_days(instance, keys, settings, now).holes


def window_options(settings: LoadSettings) -> SyncOptions:
    """The settings that date a day's settle and window (no table's own fields)."""
    return SyncOptions(
        date_field="",
        timezone=settings.timezone,
        settle_after_hours=settings.settle_after_hours,
        answer_window_days=settings.answer_window_days,
    )


def last_close_due_day(now: dt.datetime, settings: LoadSettings) -> dt.date:
    """The newest day whose answer window is over."""
    options = window_options(settings)
    day = now.astimezone(settings.tz).date()
    while now < closes_at(day, options):
        day -= dt.timedelta(days=1)
    return day
