"""Asset checks: unique keys, no record outside its day, the declared schema, and the
lake checks.

The first three run inside every materialization (over the days that run wrote), read the
files back from the lake, and name the days and records that fail. The lake checks judge
every day of a table at once: the holes (`every_day_settled`: days after the first synced
day, past the settle lag, that are not settled), days whose answers reached the lake late
(`answer_window_kept`) and rows lost that never leave (`no_unexplained_shrink`). They are
judged from the settle sensor's scan (day_status.py), which already reads the days to
decide what to request: the sensor reports them (`lake_verdicts`) whenever a verdict
changes, and at least hourly, so their cost does not grow with the history and no sync run
reads the days a second time. Run by hand they make the same scan once, in full.
Freshness is not a check here: per day it is day_freshness.py's check, evaluated by its own
sensor even when no run happens; for the asset as a whole, Dagster's freshness policy
(freshness.py).
"""

# No `from __future__ import annotations`: Dagster reads the check function's annotations.

import datetime as dt
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)

from cg_assets import clock
from cg_assets.customergauge.endpoints import Endpoint
from cg_assets.defs.check_verdict import CheckVerdict
from cg_assets.defs.day_status import TableReport, full_scan, table_report
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.lake.schema import RecordDecoder, in_day_mask
from cg_assets.settings import LoadSettings

UNIQUE_KEYS = "unique_keys"
RECORDS_IN_DAY = "records_in_day"
SCHEMA_MATCHES = "schema_matches"
NO_HOLES = "every_day_settled"
WINDOW_KEPT = "answer_window_kept"
NO_UNEXPLAINED_SHRINK = "no_unexplained_shrink"
LAKE_CHECK_NAMES = (NO_HOLES, WINDOW_KEPT, NO_UNEXPLAINED_SHRINK)
LAKE_CHECKS_SUFFIX = "lake_checks"
SAMPLE = 10


def inline_check_specs(key: AssetKey, endpoint: Endpoint) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            UNIQUE_KEYS, asset=key, description=f"Each {endpoint.key} appears once per day."
        ),
        AssetCheckSpec(
            RECORDS_IN_DAY,
            asset=key,
            description="Every record's date field falls on its partition's day, and the API "
            "returned no record outside the requested day (a sign our period assumption is off).",
        ),
        AssetCheckSpec(
            SCHEMA_MATCHES, asset=key, description="Each file has exactly the declared schema."
        ),
    ]


def lake_check_specs(keys: Sequence[AssetKey]) -> list[AssetCheckSpec]:
    by = "Judged by the settle sensor from its scan of the days; run by hand, a full scan."
    return [
        spec
        for key in keys
        for spec in (
            AssetCheckSpec(
                NO_HOLES,
                asset=key,
                description="Every day after the first synced day and older than the settle "
                "lag is settled, and every day past its answer window (CG_ANSWER_WINDOW_DAYS) "
                "is closed: none missing, none failing. The settle sensor heals what this "
                "lists. " + by,
            ),
            AssetCheckSpec(
                WINDOW_KEPT,
                asset=key,
                description="While a day was open for answers, it was fetched whole at least "
                "every 24 hours, so every answer reached the lake within a day of its "
                "arrival. A day listed here went longer (an outage, a stopped daemon); its "
                "later whole fetches, the last at its close, still brought every answer in. " + by,
            ),
            AssetCheckSpec(
                NO_UNEXPLAINED_SHRINK,
                asset=key,
                description="No day's latest whole fetch dropped rows of a table whose rows "
                "never leave the API (responses). Such a fetch is checked by a second one "
                "before it is published; a day listed here is one where both agreed the rows "
                "are gone. " + by,
            ),
        )
    ]


@dataclass(frozen=True)
class LakeVerdict(CheckVerdict):
    """One lake check's verdict on one table, as the sensor reports it or a run yields it."""

    key: AssetKey
    check_name: str
    passed: bool
    severity: AssetCheckSeverity
    description: str
    metadata: dict[str, Any]
    # What a change of verdict means: the days listed (not the wording).
    signature: str

    @property
    def check_key(self) -> AssetCheckKey:
        return AssetCheckKey(self.key, self.check_name)


def lake_verdicts(
    key: AssetKey, report: TableReport, closed_through: dt.date | None
) -> list[LakeVerdict]:
    """The three lake checks of one table, from the scan's report."""
    holes = report.holes
    labels = [d.isoformat() for d in holes]
    late = {d.isoformat(): hours for d, hours in sorted(report.late.items())}
    shrunk = {d.isoformat(): rows for d, rows in sorted(report.shrunk.items())}
    # Every day up to it is closed in every table: the scan never reads it again.
    watermark = {"closed_through": closed_through.isoformat() if closed_through else ""}
    return [
        LakeVerdict(
            key,
            NO_HOLES,
            passed=not holes,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"{len(holes)} day(s) are not settled past the settle lag or not closed past "
                "their answer window (missing or failing): "
                + ", ".join(labels[:SAMPLE])
                + (" …" if len(holes) > SAMPLE else "")
                + ". The settle sensor requests them; its tick log names each day's last error."
                if holes
                else "Every day after the first synced day is settled past the settle lag and "
                "closed past its answer window."
            ),
            metadata={
                "unsettled_days": labels[:100],
                "unsettled_count": len(holes),
                **watermark,
            },
            signature=",".join(labels),
        ),
        LakeVerdict(
            key,
            WINDOW_KEPT,
            passed=not late,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"{len(late)} day(s) went more than 24 h without a whole fetch while open for "
                "answers: " + ", ".join(list(late)[:SAMPLE]) + (" …" if len(late) > SAMPLE else "")
                if late
                else "Every open day was fetched whole at least every 24 hours."
            ),
            metadata={
                "late_days": dict(list(late.items())[:100]),
                "late_count": len(late),
                **watermark,
            },
            signature=",".join(f"{d}={h}" for d, h in late.items()),
        ),
        LakeVerdict(
            key,
            NO_UNEXPLAINED_SHRINK,
            passed=not shrunk,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"{len(shrunk)} day(s) lost rows the API should never drop (two whole fetches "
                "agreed they are gone): "
                + ", ".join(list(shrunk)[:SAMPLE])
                + (" …" if len(shrunk) > SAMPLE else "")
                + ". Ask CustomerGauge why; a full_refresh run fetches the day again."
                if shrunk
                else "No day lost rows the API should never drop."
            ),
            metadata={
                "shrunk_days": dict(list(shrunk.items())[:100]),
                "shrunk_count": len(shrunk),
                **watermark,
            },
            signature=",".join(f"{d}={n}" for d, n in shrunk.items()),
        ),
    ]


def build_lake_checks(
    keys: Sequence[AssetKey], settings: LoadSettings, tenant: Tenant = DEFAULT_TENANT
) -> AssetChecksDefinition:
    """The lake checks as a definition: the settle sensor reports their results; run by hand
    (from the UI, or with automation off, where no sensor ticks) they scan every day once."""

    @multi_asset_check(
        specs=lake_check_specs(keys),
        name=tenant.name(LAKE_CHECKS_SUFFIX),
        can_subset=True,
    )
    def _lake_checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        now = clock.utc_now()
        scan = full_scan(context.instance, keys, settings, now)
        for key in keys:
            report = table_report(scan, key, settings, now)
            for verdict in lake_verdicts(key, report, scan.state.closed_through):
                if verdict.check_key in context.selected_asset_check_keys:
                    yield verdict.as_result()

    return _lake_checks


def run_inline_checks(
    key: AssetKey,
    endpoint: Endpoint,
    lake: ParquetLake,
    days: Sequence[dt.date],
    date_field: str,
    api_out_of_day: dict[dt.date, int],
) -> list[AssetCheckResult]:
    declared = RecordDecoder(endpoint.columns).schema
    duplicate_days: dict[str, list[int]] = {}
    outside_days: dict[str, int] = {}
    schema_days: list[str] = []
    for day in days:
        state = lake.day_state(endpoint.name, day)
        table = lake.read_day(endpoint.name, day, columns=[endpoint.key, date_field])
        if state is None or table is None:
            continue
        label = day.isoformat()
        if not state.schema.equals(declared, check_metadata=False):
            schema_days.append(label)
        keys = table.column(endpoint.key)
        counts = pc.value_counts(keys)
        repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        if len(repeated):
            duplicate_days[label] = repeated.to_pylist()[:SAMPLE]
        wrong = table.num_rows - (pc.sum(in_day_mask(table.column(date_field), day)).as_py() or 0)
        total = wrong + api_out_of_day.get(day, 0)
        if total:
            outside_days[label] = total

    def result(
        name: str,
        severity: AssetCheckSeverity,
        failures: Sized,
        failed: str,
        ok: str,
        metadata: dict[str, Any],
    ) -> AssetCheckResult:
        return AssetCheckResult(
            asset_key=key,
            check_name=name,
            passed=not failures,
            severity=severity,
            description=failed if failures else ok,
            metadata={"days_checked": len(days), **metadata},
        )

    return [
        result(
            UNIQUE_KEYS,
            AssetCheckSeverity.ERROR,
            duplicate_days,
            f"Repeated {endpoint.key} on {len(duplicate_days)} day(s).",
            f"Keys unique on all {len(days)} day(s) written.",
            {"repeated_keys_by_day": duplicate_days},
        ),
        result(
            RECORDS_IN_DAY,
            AssetCheckSeverity.WARN,
            outside_days,
            f"Records outside their day on {len(outside_days)} day(s) (dropped from the file if "
            "the API sent them; see out_of_day_keys in the materialization).",
            f"Every record's {date_field} falls on its day.",
            {"out_of_day_by_day": outside_days},
        ),
        result(
            SCHEMA_MATCHES,
            AssetCheckSeverity.ERROR,
            schema_days,
            f"Schema differs from the declared one on: {', '.join(schema_days[:SAMPLE])}.",
            "Every file has the declared schema.",
            {"days_with_other_schema": schema_days[:SAMPLE]},
        ),
    ]
