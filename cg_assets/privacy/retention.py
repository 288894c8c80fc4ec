"""Retention: personal columns of days older than CG_PII_RETENTION_DAYS are hashed (nulled
in drop mode) in place.

A day is past retention when it ended more than N days ago ((today - day) > N, days in
CG_TIMEZONE). The pass reads each day file's footer (`cg_assets.pii`) and rewrites only
the files that still hold clearer values than the retention allows, atomically and under
the table day's writer lock. The same footers tell the check (`findings`) which days past
retention still hold clear values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cg_assets.lake import formats as lake_formats
from cg_assets.lake.locks import DayLockBusyError
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy import store
from cg_assets.privacy.policy import (
    PROTECTION,
    STATE_OF,
    DayPrivacy,
    EndpointLike,
    LakePrivacy,
    PersonalColumns,
    file_pii_state,
)
from cg_assets.privacy.rewrite import rewrite_day, waiting_day_lock


@dataclass
class RetentionReport:
    retention_days: int | None
    cutoff: str | None  # days before or on this one are past retention
    rewritten: dict[str, list[str]] = field(default_factory=dict)  # table -> days
    days_checked: int = 0
    busy: list[str] = field(default_factory=list)  # "table day" held by another writer


def cutoff_day(privacy: LakePrivacy, today: dt.date) -> dt.date | None:
    days = privacy.settings.retention_days
    return None if days is None else today - dt.timedelta(days=days + 1)


def findings(
    lake: ParquetLake, endpoint: EndpointLike, privacy: LakePrivacy, today: dt.date
) -> tuple[int, list[dt.date]]:
    """(days past retention, those whose file still holds clear personal values)."""
    cutoff = cutoff_day(privacy, today)
    if cutoff is None:
        return 0, []
    past = [d for d in lake.days(endpoint.name) if d <= cutoff]
    clear = [d for d in past if file_pii_state(store.day_footer(lake, endpoint.name, d)) == "clear"]
    return len(past), clear


def retention_pass(
    lake: ParquetLake,
    endpoints: Sequence[EndpointLike],
    privacy: LakePrivacy,
    today: dt.date,
    holder: str,
    on_day: Callable[[str, dt.date, str], None] | None = None,
) -> RetentionReport:
    cutoff = cutoff_day(privacy, today)
    report = RetentionReport(privacy.settings.retention_days, cutoff and cutoff.isoformat())
    if cutoff is None:
        return report
    treatment = privacy.retention_treatment()
    target = STATE_OF[treatment]
    for endpoint in endpoints:
        columns = PersonalColumns.of(endpoint)
        for day in lake.days(endpoint.name):
            if day > cutoff:
                continue
            report.days_checked += 1
            if _protected(lake, endpoint.name, day, target):
                continue
            try:
                lock = waiting_day_lock(lake, endpoint.name, day, holder)
            except DayLockBusyError:
                # A sync is writing the day right now, and it applies the retention itself
                # (policy.LakePrivacy.treatment_for); otherwise the next pass takes it.
                report.busy.append(f"{endpoint.name} {day.isoformat()}")
                continue
            with lock:
                if _protected(lake, endpoint.name, day, target):
                    continue  # a sync rewrote it meanwhile
                # No suppression here: erasures remove their rows themselves.
                policy = DayPrivacy(
                    treatment,
                    privacy.keyring.current,
                    columns,
                    None,
                    privacy.settings.clear_segments,
                )
                rewrite_day(lake, endpoint.name, day, policy.apply, policy.footer())
            report.rewritten.setdefault(endpoint.name, []).append(day.isoformat())
            if on_day is not None:
                on_day(endpoint.name, day, target)
        if report.rewritten.get(endpoint.name):
            # A Delta table keeps the replaced files for older versions: delete them now.
            lake_formats.vacuum(lake, endpoint.name)
    return report


def _protected(lake: ParquetLake, table: str, day: dt.date, target: str) -> bool:
    footer = store.day_footer(lake, table, day)
    return footer is None or PROTECTION[file_pii_state(footer)] >= PROTECTION[target]
