"""What the instance says of each day of the lake's tables, and the one scan over the days.

The settle sensor scans the days every tick (`scan_days`) and decides from what it read
which days to request. What the scan learns is kept in the sensor's cursor (`ScanState`):
a watermark (`closed_through`: every day up to it is closed in every table, final, never
read again), where the next tick goes on, each table's stage of every day after the
watermark, and the days whose answers reached the lake late or whose rows were lost
(final facts, kept for good). The lake checks (`every_day_settled`, `answer_window_kept`,
`no_unexplained_shrink`, checks.py) are judged from that state (`table_report`), not by
reading the days again: a tick reads at most a fixed number of days, and the checks none,
however long the history. Run by hand, the checks do the same scan once, from an empty
state and without a limit.

A "hole" is a day after the first synced day, past the settle lag, that is missing or not
settled, or past its answer window and not closed.
"""

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from cg_assets.settings import LoadSettings
from cg_assets.sync import PROMISED_GAP, SyncOptions, closes_at, settle_due_at

ONE_DAY = dt.timedelta(days=1)
# Cursors without it were written before the scan kept the checks' state: those start over
# (one pass over the history, SCAN budget days a tick), so the checks see every day again.
STATE_VERSION = 2
# A table's stage of a day: not settled, settled (open for answers), closed (final).
OPEN, SETTLED, CLOSED = "o", "s", "c"


@dataclass(frozen=True)
class TableDay:
    """One table's latest materialization of a day."""

    materialized: bool
    settled: bool = False
    closed: bool = False
    whole_fetch_at: dt.datetime | None = None
    gap_hours: float = 0.0  # the longest wait between whole fetches since the settle
    removals: int = 0  # rows the latest whole fetch found gone, in a table where none leave
    storage_id: int | None = None

    @property
    def stage(self) -> str:
        return CLOSED if self.closed else SETTLED if self.settled else OPEN


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


def table_days(
    instance: DagsterInstance, keys: Sequence[AssetKey], day: dt.date
) -> dict[AssetKey, TableDay]:
    """Each table's latest materialization of the day: one indexed query per table."""
    out: dict[AssetKey, TableDay] = {}
    for key in keys:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
        ).records
        event = records[0].asset_materialization if records else None
        if event is None:
            out[key] = TableDay(materialized=False)
            continue
        md = event.metadata
        out[key] = TableDay(
            materialized=True,
            settled=bool(_value(md, "settled")),
            closed=bool(_value(md, "closed")),
            whole_fetch_at=_moment(_value(md, "whole_fetch_at")),
            gap_hours=float(_value(md, "longest_revisit_gap_hours") or 0.0),
            removals=int(_value(md, "unexplained_removals") or 0),
            storage_id=records[0].storage_id,
        )
    return out


def combined(tables: Mapping[AssetKey, TableDay]) -> DayStatus:
    """The day as the lake has it: settled only if every table is, and so on."""
    days = list(tables.values())
    materialized = bool(days) and all(t.materialized for t in days)
    whole_at = [t.whole_fetch_at for t in days]
    return DayStatus(
        materialized=materialized,
        settled=materialized and all(t.settled for t in days),
        latest_storage_id=max((t.storage_id for t in days if t.storage_id), default=None),
        closed=materialized and all(t.closed for t in days),
        whole_fetch_at=(
            min(w for w in whole_at if w) if whole_at and None not in whole_at else None
        ),
        longest_gap_hours=max((t.gap_hours for t in days), default=0.0),
        unexplained_removals=sum(t.removals for t in days),
    )


def day_status(instance: DagsterInstance, keys: Sequence[AssetKey], day: dt.date) -> DayStatus:
    return combined(table_days(instance, keys, day))


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


def _partitions(
    instance: DagsterInstance, keys: Sequence[AssetKey]
) -> dict[AssetKey, set[dt.date]]:
    return {
        key: {dt.date.fromisoformat(p) for p in instance.get_materialized_partitions(key)}
        for key in keys
    }


def last_settle_due_day(now: dt.datetime, settings: LoadSettings) -> dt.date:
    """The newest day whose end lies at least the settle lag (elapsed hours) in the past."""
    day = now.astimezone(settings.tz).date()
    while now < settle_due_at(day, settings.timezone, settings.settle_after_hours):
        day -= ONE_DAY
    return day


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
        day -= ONE_DAY
    return day


@dataclass
class TableState:
    """What the scan knows of one table (dates as ISO text, as kept in the cursor)."""

    stages: dict[str, str] = field(default_factory=dict)  # days after the watermark
    late: dict[str, float] = field(default_factory=dict)  # whole fetches > 24 h apart
    shrunk: dict[str, int] = field(default_factory=dict)  # rows gone that never leave

    def learn(self, day: dt.date, table: TableDay) -> None:
        label = day.isoformat()
        if table.materialized:
            self.stages[label] = table.stage
        else:
            self.stages.pop(label, None)
        promised = PROMISED_GAP.total_seconds() / 3600
        if table.gap_hours > promised:
            self.late[label] = round(table.gap_hours, 1)
        else:
            self.late.pop(label, None)
        if table.removals:
            self.shrunk[label] = table.removals
        else:
            self.shrunk.pop(label, None)


@dataclass
class ScanState:
    """The settle sensor's cursor: where the scan stands and what it knows."""

    closed_through: dt.date | None = None
    scan_from: dt.date | None = None
    tables: dict[str, TableState] = field(default_factory=dict)  # by asset key
    # The sensor's: the verdict last reported per check key, and when (UTC, ISO).
    reported: dict[str, str] = field(default_factory=dict)
    reported_at: str | None = None

    def table(self, key: AssetKey) -> TableState:
        return self.tables.setdefault(key.to_user_string(), TableState())

    @classmethod
    def parse(cls, cursor: str | None) -> "ScanState":
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if data.get("v") != STATE_VERSION:
            return cls()
        return cls(
            closed_through=_date(data.get("closed_through")),
            scan_from=_date(data.get("scan_from")),
            tables={name: TableState(**table) for name, table in data.get("tables", {}).items()},
            reported=dict(data.get("reported", {})),
            reported_at=data.get("reported_at"),
        )

    def dump(self) -> str:
        data: dict[str, Any] = {"v": STATE_VERSION}
        if self.closed_through is not None:
            data["closed_through"] = self.closed_through.isoformat()
        if self.scan_from is not None:
            data["scan_from"] = self.scan_from.isoformat()
        data["tables"] = {
            name: {"stages": t.stages, "late": t.late, "shrunk": t.shrunk}
            for name, t in sorted(self.tables.items())
        }
        data["reported"] = self.reported
        if self.reported_at is not None:
            data["reported_at"] = self.reported_at
        return json.dumps(data, sort_keys=True)


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


@dataclass
class Scan:
    """One pass of the scan: what it read, and the state it leaves."""

    state: ScanState
    first: dt.date | None = None  # the first synced day (not before CG_START_DATE)
    partitions: dict[AssetKey, set[dt.date]] = field(default_factory=dict)
    # The days read this time, oldest first, up to the day before yesterday (the sensor's).
    read: dict[dt.date, DayStatus] = field(default_factory=dict)

    @property
    def synced(self) -> set[dt.date]:
        """Days every table has a materialization of."""
        sets = list(self.partitions.values())
        return set.intersection(*sets) if sets else set()


def scan_days(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
    state: ScanState,
    budget: int | None,
) -> Scan:
    """Read the days after the watermark, at most `budget` of them (None: all), going on
    where the last scan stopped and wrapping around, so a day that keeps failing neither
    holds the watermark's window still nor hides the days after it. Updates `state`.

    Instance queries: one per table for the materialized partitions, and one per table per
    day read; never one per day of history.
    """
    scan = Scan(state=state, partitions=_partitions(instance, keys))
    any_table = set().union(*scan.partitions.values())
    if not any_table:
        return scan
    first = max(min(any_table), settings.start_date)
    scan.first = first
    today = now.astimezone(settings.tz).date()
    # Today and yesterday are the hourly schedule's; every older day is the sensor's.
    scan_until = today - 2 * ONE_DAY

    def read(day: dt.date) -> DayStatus:
        tables = table_days(instance, keys, day)
        for key, table in tables.items():
            state.table(key).learn(day, table)
        return combined(tables)

    watermark = state.closed_through
    start = max(first, watermark + ONE_DAY) if watermark else first
    scan_from = state.scan_from
    position = scan_from if scan_from is not None and start <= scan_from <= scan_until else start
    new_watermark = watermark
    contiguous = position == start
    count = 0
    day = position
    while day <= scan_until and (budget is None or count < budget):
        status = None
        if day in any_table:
            status = read(day)
            scan.read[day] = status
            count += 1
        if contiguous and status is not None and status.closed:
            new_watermark = day
        else:
            contiguous = False
        day += ONE_DAY
    # Always the new position, even none: keeping an old one would stop the scan from ever
    # wrapping back to the days after the watermark.
    state.scan_from = day if day <= scan_until else None
    state.closed_through = new_watermark
    if new_watermark is not None:
        for table in state.tables.values():
            table.stages = {d: s for d, s in table.stages.items() if d > new_watermark.isoformat()}
    # With a settle lag under a day, yesterday is past it too: the checks judge it, so it
    # is read every time (one day at most, outside the budget; it asks for no run).
    day = max(scan_until + ONE_DAY, start)
    while day <= last_settle_due_day(now, settings):
        if day in any_table:
            read(day)
        day += ONE_DAY
    return scan


@dataclass(frozen=True)
class TableReport:
    """What the lake checks say of one table."""

    holes: list[dt.date]
    late: dict[dt.date, float]  # whole fetches more than PROMISED_GAP apart while open
    shrunk: dict[dt.date, int]  # rows gone from a table whose rows never leave
    # Days after the watermark the scan has not read yet (a state just begun): the
    # report is incomplete until the scan has gone round once.
    unread: int = 0


def table_report(
    scan: Scan, key: AssetKey, settings: LoadSettings, now: dt.datetime
) -> TableReport:
    """The table's holes, late days and lost rows, from the scan's state alone: no query."""
    table = scan.state.table(key)
    late = {dt.date.fromisoformat(d): h for d, h in sorted(table.late.items())}
    shrunk = {dt.date.fromisoformat(d): n for d, n in sorted(table.shrunk.items())}
    if scan.first is None:
        return TableReport([], late, shrunk)
    have = scan.partitions.get(key, set())
    last = last_settle_due_day(now, settings)
    last_closed = last_close_due_day(now, settings)
    watermark = scan.state.closed_through
    holes: list[dt.date] = []
    unread = 0
    day = scan.first
    while day <= last:  # in memory: the days' facts are in the state
        if day not in have:
            holes.append(day)
        elif watermark is None or day > watermark:
            stage = table.stages.get(day.isoformat())
            if stage is None:
                unread += 1
            elif stage == OPEN or (day <= last_closed and stage != CLOSED):
                holes.append(day)
        day += ONE_DAY
    return TableReport(holes, late, shrunk, unread)


def full_scan(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
) -> Scan:
    """Every day read once, from an empty state: the checks run by hand (and the tests)."""
    return scan_days(instance, keys, settings, now, ScanState(), None)


def unsettled_days(
    instance: DagsterInstance,
    keys: Sequence[AssetKey],
    settings: LoadSettings,
    now: dt.datetime,
) -> list[dt.date]:
    """The holes of any of the tables, from a full scan."""
    scan = full_scan(instance, keys, settings, now)
    holes: set[dt.date] = set()
    for key in keys:
        holes |= set(table_report(scan, key, settings, now).holes)
    return sorted(holes)
