"""Freshness per day: today's and yesterday's partitions of each sync table must each have
synced within the window (WARN_AFTER warns, FAIL_AFTER fails).

Dagster's freshness policy (freshness.py) judges the asset as a whole: any partition's
materialization counts, so the settle sensor's runs of old days keep it green while
today's catch-up fails hour after hour. Dagster's time-partition freshness checks judge
only whether the last *complete* partition exists, not how recently today was synced.
So this is a check of our own, one per table, judging the two days the hourly catch-up
keeps current, each on its own.

A day's age is the time since its latest materialization (the `synced_at` the sync
recorded), but never more than the time since the day began: a day 40 minutes old that
has not been synced yet is not late. A sensor evaluates the check every minute, whether
or not a run happens, and records a result only when the verdict changes (fresh, warn,
fail, or which days are late), so the check's history is a list of changes, not a tick
log. The check can also be run by hand from the UI.
"""

# No `from __future__ import annotations`: Dagster reads the check function's annotations.

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    multi_asset_check,
    sensor,
)

from cg_assets import clock
from cg_assets.defs.assets import SYNCED_AT_KEY
from cg_assets.defs.automation import sensor_status
from cg_assets.defs.check_verdict import CheckVerdict
from cg_assets.defs.freshness import FAIL_AFTER, WARN_AFTER
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.settings import LoadSettings

CHECK_NAME = "recent_days_fresh"
SENSOR_NAME = DEFAULT_TENANT.name("day_freshness_sensor")  # the default tenant's
TICK_SECONDS = 60


@dataclass(frozen=True)
class DayAge:
    day: dt.date
    synced_at: dt.datetime | None
    age: dt.timedelta

    @property
    def level(self) -> str:
        if self.age > FAIL_AFTER:
            return "fail"
        if self.age > WARN_AFTER:
            return "warn"
        return "fresh"


@dataclass(frozen=True)
class Verdict(CheckVerdict):
    check_name = CHECK_NAME
    key: AssetKey
    days: tuple[DayAge, ...]

    @property
    def late(self) -> tuple[DayAge, ...]:
        return tuple(d for d in self.days if d.level != "fresh")

    @property
    def passed(self) -> bool:
        return not self.late

    @property
    def severity(self) -> AssetCheckSeverity:
        failing = any(d.level == "fail" for d in self.days)
        return AssetCheckSeverity.ERROR if failing else AssetCheckSeverity.WARN

    @property
    def signature(self) -> str:
        """What a change of verdict means: the late days and how late (not the minutes)."""
        return ",".join(f"{d.day.isoformat()}={d.level}" for d in self.late) or "fresh"

    @property
    def description(self) -> str:
        if self.passed:
            return "Today and yesterday each synced within the last " + _span(WARN_AFTER) + "."
        parts = [
            f"{d.day.isoformat()} last synced "
            + (f"{_span(d.age)} ago" if d.synced_at is not None else "never")
            + f" ({d.level}: warn after {_span(WARN_AFTER)}, fail after {_span(FAIL_AFTER)})"
            for d in self.late
        ]
        return "; ".join(parts) + ". The hourly catch-up's runs name the error."

    @property
    def metadata(self) -> dict[str, object]:
        return {
            "minutes_since_sync": {
                d.day.isoformat(): round(d.age.total_seconds() / 60, 1) for d in self.days
            },
            "late_days": [d.day.isoformat() for d in self.late],
        }


def _span(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def last_synced_at(instance: DagsterInstance, key: AssetKey, day: dt.date) -> dt.datetime | None:
    """When the day's latest materialization was recorded: its `synced_at` (the sync's own
    clock), else the event's timestamp (materializations written before it was recorded)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    entry = materialization.metadata.get(SYNCED_AT_KEY) if materialization else None
    if entry is not None and isinstance(entry.value, str):
        try:
            return dt.datetime.fromisoformat(entry.value)
        except ValueError:
            pass
    return dt.datetime.fromtimestamp(records[0].timestamp, dt.timezone.utc)


def judge(
    instance: DagsterInstance, key: AssetKey, settings: LoadSettings, now: dt.datetime
) -> Verdict:
    local = now.astimezone(settings.tz)
    today = local.date()
    ages = []
    for day in (today - dt.timedelta(days=1), today):
        if day < settings.start_date:
            continue
        began = dt.datetime.combine(day, dt.time(0), tzinfo=settings.tz)
        synced = last_synced_at(instance, key, day)
        since = max(synced, began) if synced is not None else began
        ages.append(DayAge(day, synced, max(now - since, dt.timedelta(0))))
    return Verdict(key, tuple(ages))


def check_specs(keys: Sequence[AssetKey]) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            description=f"Today's and yesterday's partitions each synced within the last "
            f"{_span(WARN_AFTER)} (warn) or {_span(FAIL_AFTER)} (fail), judged per day: a "
            "sync of an older day does not count. Evaluated every minute by "
            f"{SENSOR_NAME}.",
        )
        for key in keys
    ]


def build_day_freshness_checks(
    keys: Sequence[AssetKey], settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> AssetChecksDefinition:
    @multi_asset_check(
        specs=check_specs(keys),
        name=tenant.name("day_freshness"),
        can_subset=True,
    )
    def _day_freshness(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        now = clock.utc_now()
        for key in keys:
            if AssetCheckKey(key, CHECK_NAME) in context.selected_asset_check_keys:
                yield judge(context.instance, key, settings, now).as_result()

    return _day_freshness


def evaluate_freshness_tick(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
    cursor: str | None,
) -> tuple[list[AssetCheckEvaluation], str]:
    """The evaluations whose verdict changed since the cursor's, and the new cursor."""
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    changed = []
    for key in keys:
        verdict = judge(instance, key, settings, now)
        name = key.to_user_string()
        if seen.get(name) != verdict.signature:
            changed.append(verdict.as_evaluation())
            seen[name] = verdict.signature
    return changed, json.dumps(seen, sort_keys=True)


def build_day_freshness_sensor(
    keys: Sequence[AssetKey], settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> SensorDefinition:
    @sensor(
        name=tenant.name("day_freshness_sensor"),
        minimum_interval_seconds=TICK_SECONDS,
        default_status=sensor_status(settings.automation),
        description=f"Evaluates {CHECK_NAME} on each sync table every minute, whether or not "
        "a run happens, and records a result when the verdict changes.",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        events, cursor = evaluate_freshness_tick(
            context.instance, keys, settings, clock.utc_now(), context.cursor
        )
        if not events:
            context.update_cursor(cursor)
            return SkipReason("no change in freshness")
        return SensorResult(asset_events=events, cursor=cursor)

    return _sensor
