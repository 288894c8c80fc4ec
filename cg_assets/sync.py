"""Sync one day of one endpoint from a CustomerGauge client into the Parquet lake.

Plain functions, no Dagster: the asset calls them, tests and benchmarks call them too.

- `plan_day` decides what a run does with a day. The day file's footer is the truth about
  the file (it is published atomically with the data); the materialization is the index.
  A settled file is final: skipped if its materialization says so, adopted (recorded
  without a fetch) if a crash came between publish and record. Otherwise: catch up from
  the file's cursor, or fetch the whole day (first sync, settle, full refresh, or a file
  written under other settings).
- `adopt_day` records an existing file as it is, without a request.
- `sync_day` carries the plan out: pages stream from the API (the next page is fetched
  while the current one is decoded and written), are decoded into Arrow with the
  declared schema, checked against the day, and written as the day's new file, published
  atomically. Memory is bounded by a day's new rows for a catch-up and by a row group
  for a full fetch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import queue
import threading
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from cg_assets.customergauge.client import ClientStats, Cursor, CustomerGaugeClient, Period
from cg_assets.customergauge.endpoints import Endpoint
from cg_assets.customergauge.errors import ApiContractError
from cg_assets.lake import parquet_lake as lake_files
from cg_assets.lake.columns import key_column
from cg_assets.lake.cursor_codec import encode_cursor
from cg_assets.lake.drift import DayDrift, SchemaFrozenError
from cg_assets.lake.parquet_lake import DayFileState, ParquetLake
from cg_assets.lake.schema import SCHEMA_VERSION, RecordDecoder, in_day_mask
from cg_assets.privacy.policy import NO_PRIVACY, LakePrivacy, file_pii_state
from cg_assets.privacy.store import day_footer

Mode = Literal["catch-up", "settle", "revisit", "close", "full-refresh", "skip", "adopt"]
# open: answers may still come and the day is fetched again; settled: fetched whole past the
# settle lag, still open for answers; closed: fetched whole after the answer window, final.
Stage = Literal["open", "settled", "closed"]
T = TypeVar("T")

PREVIEW_ROWS = 5
OUT_OF_DAY_SAMPLE = 20
PREFETCH_PAGES = 2
# An empty page is the vendor's "done", and one served by mistake mid-day would make a
# whole fetch replace the day with half of it (issue 21). Where the end is doubtful
# (run_full), the page is asked for again; this many times at most.
MAX_END_RECHECKS = 3
# An open day is fetched whole again once its last whole fetch is this old: with hourly
# ticks and a run's own time, an answer is in the lake within 24 hours of its arrival.
REVISIT_AFTER = dt.timedelta(hours=20)
# The longest wait between whole fetches of an open day that keeps the 24-hour promise.
PROMISED_GAP = dt.timedelta(hours=24)


@dataclass(frozen=True)
class SyncOptions:
    date_field: str
    timezone: str
    settle_after_hours: int
    # Days after the day ends that it stays open for answers (CG_ANSWER_WINDOW_DAYS).
    answer_window_days: int = 30
    # False where the cursor may not follow the order records change in (responses may be
    # ordered by the invitation's CGID): an open day is then always fetched whole.
    catch_up_by_cursor: bool = True
    schema_version: str = SCHEMA_VERSION


@dataclass(frozen=True)
class StoredState:
    """What the day's latest materialization recorded."""

    cursor: Cursor | None
    date_field: str | None = None
    timezone: str | None = None
    settled: bool = False
    closed: bool = False


@dataclass(frozen=True)
class DayPlan:
    mode: Mode
    cursor: Cursor | None  # None: fetch the whole day and replace the file
    settled: bool  # a full fetch that started at least the settle lag after the day ended
    reason: str
    closes: bool = False  # a full fetch that started after the answer window: final
    started_at: dt.datetime | None = None  # when the plan was made (UTC)
    # When the newest whole fetch already in the day's file began (kept by a catch-up).
    whole_fetch_at: dt.datetime | None = None
    # The longest wait between whole fetches after the settle, before this plan (hours).
    longest_gap_hours: float | None = None

    @property
    def fetches(self) -> bool:
        """False for a day recorded from its file as it is (skip, adopt)."""
        return self.mode not in ("skip", "adopt")

    @property
    def full_fetch(self) -> bool:
        return self.fetches and self.cursor is None

    @property
    def final(self) -> bool:
        """The day is closed once this plan is carried out: no answer changes it any more."""
        return self.closes and (self.full_fetch or not self.fetches)

    @property
    def settled_after(self) -> bool:
        """The day's file is settled once this plan is carried out."""
        return self.settled and (self.full_fetch or not self.fetches)

    @property
    def stage(self) -> Stage:
        return "closed" if self.final else "settled" if self.settled_after else "open"

    @property
    def last_whole_fetch(self) -> dt.datetime | None:
        """When the newest whole fetch in the file written by this plan began."""
        return self.started_at if self.full_fetch else self.whole_fetch_at

    @property
    def gap_hours(self) -> float | None:
        """The longest wait between whole fetches of the settled day, this one included."""
        gap = self.longest_gap_hours
        if self.full_fetch and self.started_at and self.whole_fetch_at and self.settled:
            hours = (self.started_at - self.whole_fetch_at).total_seconds() / 3600
            gap = max(gap or 0.0, round(hours, 2))
        return gap


@dataclass
class DayResult:
    day: dt.date
    plan: DayPlan
    cursor: Cursor | None
    row_count: int
    rows_added: int
    rows_removed: int
    status_changed: int
    out_of_day: int
    out_of_day_keys: list[int]
    duplicates_dropped: int
    status_counts: dict[str, int]
    path: str
    bytes_written: int
    rewritten: bool
    preview: list[dict[str, Any]]
    stats: ClientStats
    seconds: float
    extra_fields_rows: int = 0
    notes: list[str] = field(default_factory=list)
    pii: str = "clear"  # what the day file's personal columns hold: clear | hashed | dropped
    suppressed_rows: int = 0  # rows of erased contacts not written (the suppression list)
    end_rechecks: int = 0  # empty pages asked for again, their end being doubtful (run_full)
    false_ends: int = 0  # of which the API then sent more records: a glitch survived
    # Rows the file held that the API no longer sends, in a table where rows never leave
    # (Endpoint.rows_leave), confirmed by a second whole fetch: published, and flagged.
    unexplained_removals: int = 0
    # Schema drift (lake/drift.py), for a day fetched: None when the file was not rebuilt
    # from a fetch (adopted, skipped).
    extra_field_paths: dict[str, int] | None = None
    null_columns: list[str] | None = None


def day_end(day: dt.date, timezone: str) -> dt.datetime:
    """The instant the day ends in its time zone (aware; 23 or 25 h after it began on DST days)."""
    return dt.datetime.combine(
        day + dt.timedelta(days=1), dt.time(0), tzinfo=zoneinfo.ZoneInfo(timezone)
    )


def settle_due_at(day: dt.date, timezone: str, settle_after_hours: int) -> dt.datetime:
    """When the day may be settled, in UTC: elapsed hours, not wall-clock hours (Python's
    arithmetic on aware datetimes of one zone is wall-clock, off by an hour across DST)."""
    ends = day_end(day, timezone).astimezone(dt.timezone.utc)
    return ends + dt.timedelta(hours=settle_after_hours)


def closes_at(day: dt.date, options: SyncOptions) -> dt.datetime:
    """When the day's answer window ends (UTC, elapsed days): never before the settle."""
    ends = day_end(day, options.timezone).astimezone(dt.timezone.utc)
    return max(
        ends + dt.timedelta(days=options.answer_window_days),
        settle_due_at(day, options.timezone, options.settle_after_hours),
    )


def is_settle_due(day: dt.date, now: dt.datetime, options: SyncOptions) -> bool:
    return now.astimezone(dt.timezone.utc) >= settle_due_at(
        day, options.timezone, options.settle_after_hours
    )


def is_close_due(day: dt.date, now: dt.datetime, options: SyncOptions) -> bool:
    return now.astimezone(dt.timezone.utc) >= closes_at(day, options)


def revisit_due(whole_fetch_at: dt.datetime | None, now: dt.datetime) -> bool:
    """An open day whose last whole fetch is REVISIT_AFTER old (or unknown) is fetched again."""
    return whole_fetch_at is None or now.astimezone(dt.timezone.utc) - whole_fetch_at >= (
        REVISIT_AFTER
    )


def plan_day(
    day: dt.date,
    *,
    now: dt.datetime,
    options: SyncOptions,
    full_refresh: bool,
    stored: StoredState | None,
    file_state: DayFileState | None,
) -> DayPlan:
    now = now.astimezone(dt.timezone.utc)
    settle_due = is_settle_due(day, now, options)
    close_due = is_close_due(day, now, options)
    whole_at = file_state.whole_fetch_at if file_state is not None else None
    gap = file_state.longest_gap_hours if file_state is not None else None

    def plan(mode: Mode, cursor: Cursor | None, reason: str) -> DayPlan:
        return DayPlan(mode, cursor, settle_due, reason, close_due, now, whole_at, gap)

    if full_refresh:
        return plan("full-refresh", None, "full_refresh was requested in the run config")
    mismatches = _settings_mismatches(file_state, options) if file_state is not None else []
    usable = file_state is not None and not mismatches
    if usable and file_state is not None and (file_state.closed or file_state.settled):
        as_is = dataclasses.replace(
            plan("skip", file_state.cursor, ""),
            settled=True,
            closes=file_state.closed,
        )
        recorded = (
            stored is not None
            and stored.cursor == file_state.cursor
            and stored.settled
            and stored.closed == file_state.closed
        )
        if file_state.closed or not (close_due or revisit_due(whole_at, now)):
            if recorded:
                what = "closed" if file_state.closed else "settled, and revisited recently"
                return dataclasses.replace(
                    as_is,
                    reason=f"{what}; the file matches its materialization: nothing to fetch "
                    "(full_refresh: true fetches it again)",
                )
            return dataclasses.replace(
                as_is,
                mode="adopt",
                reason="the file was published but its materialization was not recorded (a "
                "crash between publish and record, or another instance wrote it): adopted "
                "without a fetch",
            )
    if close_due:
        return plan(
            "close",
            None,
            f"the answer window (CG_ANSWER_WINDOW_DAYS={options.answer_window_days}) is over: "
            "fetch the day whole, final",
        )
    if usable and file_state is not None and file_state.settled:
        return plan("revisit", None, _revisit_reason(day, options, whole_at))
    if settle_due:
        return plan(
            "settle",
            None,
            f"the day ended at least {options.settle_after_hours} h ago: fetch it whole; open "
            f"for answers until {_window_end(day, options)}",
        )
    if file_state is None:
        reason = (
            "no file for this day yet: fetch it whole"
            if stored is None
            else "the day's Parquet file is missing: fetch the day whole"
        )
        return plan("catch-up", None, reason)
    if mismatches:
        return plan("catch-up", None, "fetching the day whole because " + "; ".join(mismatches))
    if not options.catch_up_by_cursor:
        return plan(
            "catch-up",
            None,
            "this table's cursor may not follow the order records arrive in (responses can be "
            "ordered by the invitation's CGID): an open day is fetched whole",
        )
    if revisit_due(whole_at, now):
        return plan("revisit", None, _revisit_reason(day, options, whole_at))
    if file_state.cursor is None:
        return plan("catch-up", None, "the file holds no cursor yet: fetch it whole")
    if stored is None or stored.cursor != file_state.cursor:
        return plan(
            "catch-up",
            file_state.cursor,
            f"the file is complete up to cursor {file_state.cursor!r} but its materialization "
            f"recorded {None if stored is None else stored.cursor!r} (a crash between publish "
            "and record): adopting the file and fetching records after its cursor",
        )
    return plan("catch-up", file_state.cursor, f"fetching records after cursor {stored.cursor!r}")


def _window_end(day: dt.date, options: SyncOptions) -> str:
    return (
        closes_at(day, options)
        .astimezone(zoneinfo.ZoneInfo(options.timezone))
        .isoformat(timespec="minutes")
    )


def _revisit_reason(day: dt.date, options: SyncOptions, whole_at: dt.datetime | None) -> str:
    last = "never" if whole_at is None else whole_at.isoformat(timespec="minutes")
    return (
        f"open for answers until {_window_end(day, options)} and last fetched whole {last}: "
        "fetch it whole again (records change below the cursor: answers, bounces)"
    )


def _settings_mismatches(file_state: DayFileState, options: SyncOptions) -> list[str]:
    """Why the file cannot be caught up (it was written under other settings)."""
    mismatches = []
    for what, in_file, current in (
        ("date field", file_state.date_field, options.date_field),
        ("time zone", file_state.timezone, options.timezone),
        ("schema version", file_state.schema_version, options.schema_version),
    ):
        if in_file != current:
            mismatches.append(f"{what}: the file has {in_file!r}, the setting is {current!r}")
    return mismatches


def skipped_day(day: dt.date, plan: DayPlan) -> DayResult:
    """A day left as it is: nothing read, nothing recorded (its materialization stands)."""
    return DayResult(
        day=day,
        plan=plan,
        cursor=plan.cursor,
        row_count=0,
        rows_added=0,
        rows_removed=0,
        status_changed=0,
        out_of_day=0,
        out_of_day_keys=[],
        duplicates_dropped=0,
        status_counts={},
        path="",
        bytes_written=0,
        rewritten=False,
        preview=[],
        stats=ClientStats(),
        seconds=0.0,
    )


def adopt_day(lake: ParquetLake, endpoint: Endpoint, day: dt.date, plan: DayPlan) -> DayResult:
    """The day's file as it is, recorded without a fetch (adopt)."""
    started = time.perf_counter()
    state = lake.day_state(endpoint.name, day)
    if state is None:
        raise FileNotFoundError(f"{endpoint.name} {day}: the file to adopt has gone")
    out = _Output(endpoint)
    existing = lake.read_day(
        endpoint.name, day, columns=[c for c in out.columns if c in state.schema.names]
    )
    if existing is not None:
        out.observe_table(existing)
    return dataclasses.replace(
        skipped_day(day, plan),
        cursor=state.cursor,
        row_count=state.rows,
        status_counts=dict(sorted(out.status_counts.items())),
        path=lake.display_path(endpoint.name, day),
        preview=out.preview,
        seconds=time.perf_counter() - started,
        pii=file_pii_state(day_footer(lake, endpoint.name, day)),
    )


def sync_day(
    client: CustomerGaugeClient,
    lake: ParquetLake,
    endpoint: Endpoint,
    day: dt.date,
    plan: DayPlan,
    options: SyncOptions,
    privacy: LakePrivacy | None = None,
    frozen_paths: frozenset[str] | None = None,
) -> DayResult:
    """`frozen_paths`: CG_SCHEMA_CONTRACT=freeze's known extra-field paths; a day carrying
    any other fails before its file is published (SchemaFrozenError)."""
    started = time.perf_counter()
    # The day's own stream: its stats count this day's requests only, even while other
    # days sync side by side on the same client (token, rate gate and totals are shared).
    with client.stream() as day_client:
        decoder = endpoint.decoder()
        day_sync = _DaySync(day_client, lake, endpoint, decoder, day, plan, options, privacy)
        day_sync.frozen_paths = frozen_paths
        result = day_sync.run_full() if plan.full_fetch else day_sync.run_catch_up()
        result.stats = day_client.stats.snapshot()
    result.seconds = time.perf_counter() - started
    return result


class _DaySync:
    def __init__(
        self,
        client: CustomerGaugeClient,
        lake: ParquetLake,
        endpoint: Endpoint,
        decoder: RecordDecoder,
        day: dt.date,
        plan: DayPlan,
        options: SyncOptions,
        privacy: LakePrivacy | None = None,
    ) -> None:
        self.client, self.lake, self.endpoint, self.decoder = client, lake, endpoint, decoder
        self.day, self.plan, self.options = day, plan, options
        # Personal data policy and suppression list, applied to every batch before it is written.
        self.privacy = (privacy or NO_PRIVACY).for_day(endpoint, day, options.timezone)
        self.key = endpoint.key
        self.cursor: Cursor | None = plan.cursor
        self.out_of_day = 0
        self.out_of_day_keys: list[int] = []
        self.extra_fields_rows = 0
        self.page_was_short = False  # the batch just yielded came from a short page
        self.data_pages = 0  # pages with records, and the sizes of the largest and the last
        self.largest_page = 0
        self.last_page = 0
        self.end_rechecks = self.false_ends = self.unexplained_removals = 0
        personal = {name for name, _ in self.privacy.columns.personal}
        self.drift = DayDrift(
            [c.name for c in decoder.columns], personal if self.privacy.treatment == "drop" else ()
        )
        self.frozen_paths: frozenset[str] | None = None

    # -- fetching -------------------------------------------------------------------

    def _batches(self, start: Cursor | None) -> Iterator[pa.RecordBatch]:
        """In-day batches of the pages after `start`; out-of-day records are counted and dropped."""
        period = Period(self.options.date_field, self.day, self.day)
        # The decoder reads each body once, on the fetch thread (Arrow, GIL released):
        # records and cursor come from that one parse on the happy path.
        pages = self.client.iter_pages(
            self.endpoint.path,
            period=period,
            cursor=start,
            expand=self.endpoint.expand,
            reader=self.decoder.read_page,
        )
        for page in prefetch(pages, PREFETCH_PAGES):
            if page.count:
                # A page shorter than the day's pages so far is most likely the last with
                # data (the API still sends an empty one to close the day): see run_full.
                self.page_was_short = page.count < self.largest_page
                self.largest_page = max(self.largest_page, page.count)
                self.last_page = page.count
                self.data_pages += 1
                where = (
                    f"{self.endpoint.path} day {self.day.isoformat()} page {page.number} "
                    f"(cursor {page.sent_cursor if page.sent_cursor is not None else 'none'})"
                )
                synced_at = dt.datetime.now(dt.timezone.utc)
                batch = self.decoder.decode(page.records, synced_at, where, body=page.body)
                yield self._keep_in_day(batch)
            self.cursor = page.cursor

    def _whole_day_batches(self, would_lose_rows: Callable[[], bool]) -> Iterator[pa.RecordBatch]:
        """The day's batches from the plan's cursor to its end; an end that may be a glitch
        is asked for again from its cursor, and paging goes on if records come after all."""
        start = self.plan.cursor
        while True:
            pages_before = self.data_pages
            yield from self._batches(start)
            if self.end_rechecks:
                if self.data_pages == pages_before:
                    return  # asked again, the API agrees: the day ends here
                self.false_ends += 1
            if self.end_rechecks >= MAX_END_RECHECKS or not self._end_is_doubtful(would_lose_rows):
                return
            self.end_rechecks += 1
            start = self.cursor

    def _confirm_gone(self, gone: list[int]) -> None:
        """Rows of the file are missing from this fetch in a table whose rows never leave.
        Fetch the day's keys once more: if any missing row is there, one of the two answers
        was wrong, and the day fails with its old file in place (the next run tries again)."""
        period = Period(self.options.date_field, self.day, self.day)
        missing = set(gone)
        path = key_column(self.endpoint.columns).source
        back = 0
        for page in self.client.iter_pages(
            self.endpoint.path, period=period, cursor=self.plan.cursor, expand=self.endpoint.expand
        ):
            for record in page.records:
                value: Any = record
                for part in path:
                    value = value.get(part) if isinstance(value, dict) else None
                if isinstance(value, str) and value.isdigit():
                    value = int(value)
                back += isinstance(value, int) and value in missing
        if back:
            raise ApiContractError(
                f"{self.endpoint.path} day {self.day.isoformat()}: {len(gone)} row(s) of the "
                f"day's file were missing from one whole fetch, and {back} of them came back "
                "in a second: the API's answers disagree, so nothing was published and the "
                "previous file stays. The next run fetches the day again."
            )

    def _end_is_doubtful(self, would_lose_rows: Callable[[], bool]) -> bool:
        """A real end mostly comes after a short page. Doubtful: the end of a day without
        any record, or right after a page as large as the day's largest, or one that would
        drop rows the day's file holds (the file is replaced: what is cut is lost for good)."""
        if self.data_pages == 0:
            return True
        if self.last_page >= self.client.settings.per_page or (
            self.data_pages > 1 and self.last_page >= self.largest_page
        ):
            return True
        return would_lose_rows()

    def _keep_in_day(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        in_day = in_day_mask(batch.column(self.options.date_field), self.day)
        kept = batch.filter(in_day)
        dropped = batch.num_rows - kept.num_rows
        if dropped:
            self.out_of_day += dropped
            room = OUT_OF_DAY_SAMPLE - len(self.out_of_day_keys)
            if room > 0:
                keys = batch.filter(pc.invert(in_day)).column(self.key).to_pylist()
                self.out_of_day_keys.extend(keys[:room])
        self.extra_fields_rows += kept.num_rows - kept.column("extra_fields").null_count
        return kept

    # -- full fetch: stream into a new file ----------------------------------------

    def run_full(self) -> DayResult:
        status = self.endpoint.status_column
        try:
            previous = self.lake.read_day(
                self.endpoint.name, self.day, columns=[self.key, *([status] if status else [])]
            )
        except (OSError, pa.ArrowException):
            previous = None  # damaged outside the sync (day_state calls it missing): replace it
        old_status: dict[int, str | None] = (
            dict(
                zip(
                    previous.column(self.key).to_pylist(),
                    previous.column(status).to_pylist() if status else [None] * previous.num_rows,
                    strict=True,
                )
            )
            if previous is not None
            else {}
        )
        seen: set[int] = set()
        added = changed = duplicates = 0
        out = _Output(self.endpoint)

        def would_lose_rows() -> bool:
            return any(k not in seen for k in old_status)

        with self.lake.day_writer(self.endpoint.name, self.day, self.decoder.schema) as writer:
            for batch in self._whole_day_batches(would_lose_rows):
                keys = batch.column(self.key).to_pylist()
                statuses = batch.column(status).to_pylist() if status else [None] * batch.num_rows
                keep = []
                for k, new_status in zip(keys, statuses, strict=True):
                    fresh = k not in seen
                    keep.append(fresh)
                    if not fresh:
                        duplicates += 1  # the API repeated a record: keep its first copy
                        continue
                    seen.add(k)
                    if k not in old_status:
                        added += 1
                    elif old_status[k] != new_status:
                        changed += 1
                if not all(keep):
                    batch = batch.filter(pa.array(keep))
                self.drift.observe(batch)  # what arrived, before personal values are treated
                batch = self.privacy.apply(batch)
                writer.write(batch)
                out.observe(batch)
                if self.page_was_short:
                    # Encode the day's row group while the closing empty page is on its
                    # way, instead of after it (commit). The file holds the same rows;
                    # only a short page that is not the last adds a row-group boundary.
                    writer.flush()
            gone = [k for k in old_status if k not in seen]
            if gone and not self.endpoint.rows_leave:
                self._confirm_gone(gone)
                self.unexplained_removals = len(gone)
            self._keep_contract()
            writer.commit(self._kv_metadata())
        removed = sum(1 for k in old_status if k not in seen)
        return self._result(out, writer.bytes_written, True, added, removed, changed, duplicates)

    # -- catch-up: merge new rows into the day's file ------------------------------

    def run_catch_up(self) -> DayResult:
        # A false end here only delays: the cursor stays at the last page that came, and
        # the next catch-up goes on from it.
        new_batches = list(self._batches(self.plan.cursor))
        new = pa.Table.from_batches(new_batches, schema=self.decoder.schema)
        new, duplicates = _dedupe_keep_last(new, self.key)
        self.drift.observe(new)
        self._keep_contract()  # only new records can bring a new field
        new = self.privacy.apply(new)
        out = _Output(self.endpoint)
        if new.num_rows == 0 and self.cursor == self.plan.cursor:
            # Nothing new: leave the file alone; its footer already names this cursor.
            state = self.lake.day_state(self.endpoint.name, self.day)
            existing = self.lake.read_day(self.endpoint.name, self.day, columns=out.columns)
            if existing is not None:
                out.observe_table(existing)
            result = self._result(
                out, 0, False, 0, 0, 0, duplicates, rows=state.rows if state else 0
            )
            # The file is unchanged, so is its drift: the Dagster layer keeps what it recorded
            # (reading every column again would double this hourly no-op's cost).
            result.extra_field_paths = result.null_columns = None
            return result
        new_keys = new.column(self.key)
        replaced_rows = changed = 0
        parquet_file = self.lake.open_day(self.endpoint.name, self.day)
        with self.lake.day_writer(self.endpoint.name, self.day, self.decoder.schema) as writer:
            if parquet_file is not None:
                with parquet_file:
                    for old in lake_files.iter_table_batches(parquet_file):
                        replaced = pc.is_in(old.column(self.key), value_set=new_keys)
                        if pc.any(replaced).as_py():
                            replaced_rows += pc.sum(replaced).as_py()
                            changed += _status_changes(
                                old.filter(replaced), new, self.key, self.endpoint.status_column
                            )
                            old = old.filter(pc.invert(replaced))
                        old = self.privacy.apply(old)
                        writer.write(old)
                        out.observe(old)
                        self.drift.observe(old)
            added = new.num_rows - replaced_rows
            writer.write(new)
            out.observe_table(new)
            writer.commit(self._kv_metadata())
        return self._result(out, writer.bytes_written, True, added, 0, changed, duplicates)

    # -- shared ---------------------------------------------------------------------

    def _keep_contract(self) -> None:
        if self.frozen_paths is None:
            return
        new = self.drift.new_paths(self.frozen_paths)
        if new:
            raise SchemaFrozenError(
                f"CG_SCHEMA_CONTRACT=freeze: {self.endpoint.name} {self.day.isoformat()} "
                f"carries {len(new)} field(s) not seen in the previous synced day: "
                + ", ".join(new[:20])
                + (" …" if len(new) > 20 else "")
                + ". Nothing was written. Set CG_SCHEMA_CONTRACT=evolve to accept them."
            )

    def _kv_metadata(self) -> dict[str, str]:
        return {
            lake_files.KV_CURSOR: encode_cursor(self.cursor),
            lake_files.KV_DATE_FIELD: self.options.date_field,
            lake_files.KV_TIMEZONE: self.options.timezone,
            lake_files.KV_DAY: self.day.isoformat(),
            lake_files.KV_SCHEMA_VERSION: self.options.schema_version,
            lake_files.KV_SETTLED: "true" if self.plan.settled_after else "false",
            lake_files.KV_CLOSED: "true" if self.plan.final else "false",
            **_moment(lake_files.KV_WHOLE_FETCH_AT, self.plan.last_whole_fetch),
            **(
                {lake_files.KV_LONGEST_GAP_HOURS: str(self.plan.gap_hours)}
                if self.plan.gap_hours is not None
                else {}
            ),
            lake_files.KV_SYNCED_AT: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **self.privacy.footer(),
        }

    def _result(
        self,
        out: _Output,
        bytes_written: int,
        rewritten: bool,
        added: int,
        removed: int,
        changed: int,
        duplicates: int,
        rows: int | None = None,
    ) -> DayResult:
        return DayResult(
            day=self.day,
            plan=self.plan,
            cursor=self.cursor,
            row_count=out.rows if rows is None else rows,
            rows_added=added,
            rows_removed=removed,
            status_changed=changed,
            out_of_day=self.out_of_day,
            out_of_day_keys=self.out_of_day_keys,
            duplicates_dropped=duplicates,
            status_counts=dict(sorted(out.status_counts.items())),
            path=self.lake.display_path(self.endpoint.name, self.day),
            bytes_written=bytes_written,
            rewritten=rewritten,
            preview=out.preview,
            stats=ClientStats(),
            seconds=0.0,
            extra_fields_rows=self.extra_fields_rows,
            pii=self.privacy.state
            if rewritten
            else file_pii_state(day_footer(self.lake, self.endpoint.name, self.day)),
            suppressed_rows=self.privacy.suppressed_rows,
            end_rechecks=self.end_rechecks,
            false_ends=self.false_ends,
            unexplained_removals=self.unexplained_removals,
            extra_field_paths=self.drift.extra_field_paths,
            null_columns=self.drift.null_columns,
        )


class _Output:
    """Running totals over what goes into the day's file: rows, status counts, a preview.

    The status counts come from the endpoint's status column (none if it has none); the
    preview shows the key and the endpoint's preview columns, which hold no personal data.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.rows = 0
        self.status_counts: Counter[str] = Counter()
        self.preview: list[dict[str, Any]] = []
        self._status = endpoint.status_column
        preview = [endpoint.key, *endpoint.preview_columns]
        self.columns = list(dict.fromkeys([*preview, *([self._status] if self._status else [])]))
        self._preview = list(dict.fromkeys(preview))

    def observe(self, batch: pa.RecordBatch) -> None:
        self.observe_table(pa.Table.from_batches([batch]))

    def observe_table(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        if self._status:
            for item in pc.value_counts(table.column(self._status)).to_pylist():
                self.status_counts[item["values"] or "(null)"] += item["counts"]
        room = PREVIEW_ROWS - len(self.preview)
        if room > 0:
            # Only columns that carry no personal data reach Dagster's metadata.
            safe = [c for c in self._preview if c in table.column_names]
            self.preview.extend(table.select(safe).slice(0, room).to_pylist())


def _moment(key: str, moment: dt.datetime | None) -> dict[str, str]:
    return {key: moment.isoformat(timespec="seconds")} if moment is not None else {}


def _dedupe_keep_last(table: pa.Table, key: str) -> tuple[pa.Table, int]:
    """Within one catch-up the last copy of a record is the newest."""
    if table.num_rows == 0:
        return table, 0
    indexed = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    last = indexed.group_by(key, use_threads=False).aggregate([("__row", "max")])
    keep = pc.sort_indices(last.column("__row_max"))
    rows = pc.take(last.column("__row_max"), keep)
    deduped = table.take(rows)
    return deduped, table.num_rows - deduped.num_rows


def _status_changes(
    old: pa.Table | pa.RecordBatch, new: pa.Table, key: str, status: str | None
) -> int:
    if status is None:
        return 0
    new_status = dict(zip(new.column(key).to_pylist(), new.column(status).to_pylist(), strict=True))
    return sum(
        1
        for k, s in zip(old.column(key).to_pylist(), old.column(status).to_pylist(), strict=True)
        if new_status.get(k) != s
    )


def prefetch(iterator: Iterator[T], depth: int) -> Iterator[T]:
    """Run `iterator` in a thread, `depth` items ahead, so fetching overlaps the consumer's work."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone

    def produce() -> None:
        try:
            for item in iterator:
                if not put("item", item):
                    return
            put("done", None)
        except BaseException as exc:
            put("error", exc)

    worker = threading.Thread(target=produce, name="cg-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join(timeout=5)
