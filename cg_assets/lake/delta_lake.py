"""The lake as Delta tables (CG_TABLE_FORMAT=delta): one table per endpoint, one commit per day.

Same folders as the Parquet lake, `{root}/customergauge/{table}/date=YYYY-MM-DD/...`, plus
the table's `_delta_log/`. A day's new version is one Parquet file under a new name
(`date=YYYY-MM-DD/part-<uuid>.zstd.parquet`), staged and put in place exactly like the
Parquet lake's files, and then made the day's version by one Delta commit: an overwrite of
the partition `date = 'YYYY-MM-DD'` (delta-rs derives the removes of the day's previous
files and adds the new one). A reader of the table (polars `scan_delta`, DuckDB or Spark
through the log) sees the lake before or after the commit, never a file that changes
under it: no file is ever rewritten in place.

Where the day's state lives ("the commit is the truth"):
- the commit's custom metadata (commitInfo) holds the whole key/value dict the sync hands
  the writer (cursor, settings, settled, privacy state), so history shows what each commit
  was complete up to;
- the committed file's footer holds the same dict. `day_state` reads the table's snapshot
  (the last checkpoint plus the commits after it), finds the day's live file there, and
  reads that footer: one small read, however long the log. Commit metadata alone would not
  do: checkpoints do not keep commitInfo, and log clean-up drops commits older than
  `delta.logRetentionDuration`, so a day settled a year ago would lose its cursor; the add
  action of its live file stays in every checkpoint.
A file put in place but never committed (a crash before the commit) is not in the
snapshot: readers and `day_state` never see it, and vacuum deletes it.

Every commit of a day happens under the day's writer lock (the Parquet lake's `day_lock`),
so two writers of one day never race; commits of different days race in the log only, where
delta-rs retries them against the newer versions (put-if-absent of the next log entry: a
hard-link on a local disk, a conditional PUT on S3).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cg_assets.lake.parquet_lake import DAY_FILE_NAME, DayFileState, DayWriter, ParquetLake
from cg_assets.settings import SettingsError

try:
    from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties
    from deltalake.exceptions import CommitFailedError, TableNotFoundError
    from deltalake.transaction import AddAction
except ImportError:  # pragma: no cover - the optional extra
    DeltaTable = None  # type: ignore[assignment,misc]

PARTITION_COLUMN = "date"
DELTA_LOG = "_delta_log"
KV_COMMIT_DAY = "cg_assets.day"
# A checkpoint every 100 commits keeps opening a table to one checkpoint read plus at most
# 99 small JSON commits (benchmarks/delta_log.py measures it after 20,000 commits); log
# entries older than 30 days are cleaned up when a checkpoint is written, which is also
# how far back time travel reaches (erasures cut it shorter: docs/delta.md).
TABLE_CONFIGURATION = {
    "delta.checkpointInterval": "100",
    "delta.logRetentionDuration": "interval 30 days",
    "delta.enableExpiredLogCleanup": "true",
}
# Unreferenced files younger than this are left by vacuum: they may be a live writer's file,
# put in place and about to be committed (a writer holds a day for minutes at most).
ORPHAN_HOURS = 24
# Retries of a commit that lost the race for its log version to another day's commit.
COMMIT_ATTEMPTS = 50


@dataclass(frozen=True)
class DayFile:
    """One live file of a day in the table's snapshot."""

    rel_path: str  # relative to the table folder, as in the log
    size: int
    rows: int | None


class DeltaLake(ParquetLake):
    """ParquetLake's interface over one Delta table per lake table (see the module docstring).

    Paths, the writer lock, small files and the write checks are the Parquet lake's; what a
    day is (its live file), how it is read and how it is published come from the log.
    """

    table_format = "delta"

    def __init__(self, root: str) -> None:
        if DeltaTable is None:
            raise SettingsError(
                "CG_TABLE_FORMAT=delta needs the deltalake package: pip install 'cg_assets[delta]' "
                "(or set CG_TABLE_FORMAT=parquet)."
            )
        super().__init__(root)
        self.storage_options = None if self.is_local else s3_storage_options(root)
        # One snapshot per table, shared by the threads of a run; refreshed by day_state (which
        # runs under the day's lock at the start of a day's sync) and after every commit, so a
        # day's writer always sees that day's latest commit.
        self._guard = threading.RLock()
        self._tables: dict[str, DeltaTable] = {}
        self._index: dict[str, tuple[int, dict[dt.date, list[DayFile]]]] = {}
        self._thread_tables = threading.local()  # each committing thread's own tables

    # -- the table and its snapshot -------------------------------------------------

    def table_uri(self, table: str) -> str:
        path = self.table_dir(table)
        return path if self.is_local else f"s3://{path}"

    def _open(self, table: str) -> DeltaTable | None:
        try:
            return DeltaTable(self.table_uri(table), storage_options=self.storage_options)
        except TableNotFoundError:
            self._refuse_parquet_table(table)
            return None

    def _refuse_parquet_table(self, table: str) -> None:
        """A Parquet lake's table read as Delta would look empty, and its days would all be
        fetched again and written beside the old files: say how to convert it instead."""
        selector = pafs.FileSelector(self.table_dir(table), allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if not (info.type == pafs.FileType.Directory and info.base_name.startswith("date=")):
                continue
            parquet_file = f"{info.path}/{DAY_FILE_NAME}"
            if self.fs.get_file_info(parquet_file).type == pafs.FileType.File:
                raise SettingsError(
                    f"CG_TABLE_FORMAT=delta, but {self.table_dir(table)} is a Parquet table (day "
                    "folders, no _delta_log): convert the lake first with `python -m "
                    "cg_assets.lake.convert_to_delta` (docs/delta.md), or set CG_TABLE_FORMAT=parquet."
                )

    def delta_table(self, table: str, refresh: bool = False) -> DeltaTable | None:
        with self._guard:
            current = self._tables.get(table)
            if current is None:
                current = self._open(table)
                if current is None:
                    return None
                self._tables[table] = current
            elif refresh:
                current.update_incremental()
            return current

    def day_files(self, table: str, day: dt.date, refresh: bool = False) -> list[DayFile]:
        return self._day_index(table, refresh).get(day, [])

    def _day_index(self, table: str, refresh: bool = False) -> dict[dt.date, list[DayFile]]:
        with self._guard:
            delta = self.delta_table(table, refresh)
            if delta is None:
                return {}
            version = delta.version()
            cached = self._index.get(table)
            if cached is not None and cached[0] == version:
                return cached[1]
            actions = pa.table(delta.get_add_actions(flatten=True))
            index: dict[dt.date, list[DayFile]] = {}
            for row in actions.select(
                ["path", "size_bytes", "num_records", f"partition.{PARTITION_COLUMN}"]
            ).to_pylist():
                day = row[f"partition.{PARTITION_COLUMN}"]
                if isinstance(day, str):
                    day = dt.date.fromisoformat(day)
                index.setdefault(day, []).append(
                    DayFile(unquote(row["path"]), row["size_bytes"], row["num_records"])
                )
            self._index[table] = (version, index)
            return index

    # -- reading --------------------------------------------------------------------

    def day_path(self, table: str, day: dt.date) -> str:
        """The day's live file (the first, if an outside writer left several), or where a
        first version would go when the day has none (a path that does not exist)."""
        files = self.day_files(table, day)
        name = files[0].rel_path if files else f"date={day.isoformat()}/(no file)"
        return f"{self.table_dir(table)}/{name}"

    def display_path(self, table: str, day: dt.date) -> str:
        return (
            self.day_path(table, day)
            if self.is_local
            else f"{self.root.split('://', 1)[0]}://{self.day_path(table, day)}"
        )

    def day_state(self, table: str, day: dt.date) -> DayFileState | None:
        files = self.day_files(table, day, refresh=True)
        if len(files) <= 1:
            return super().day_state(table, day)  # None, or the live file's footer
        # Several files (another engine appended to the day): no one cursor covers them all,
        # so the next sync fetches the day whole and commits it as one file again.
        first = super().day_state(table, day)
        if first is None:
            return None
        rows = sum(f.rows or 0 for f in files)
        return DayFileState(first.path, rows, None, None, None, None, False, first.schema)

    def open_day(self, table: str, day: dt.date) -> Any:
        files = self.day_files(table, day)
        if len(files) <= 1:
            return super().open_day(table, day)
        return _DayFiles(self, [f"{self.table_dir(table)}/{f.rel_path}" for f in files])

    def read_day(
        self, table: str, day: dt.date, columns: list[str] | None = None
    ) -> pa.Table | None:
        day_file = self.open_day(table, day)
        if day_file is None:
            return None
        with day_file:
            return day_file.read(columns=columns)

    def days(self, table: str) -> list[dt.date]:
        """The days with a live file in the table's latest version, oldest first."""
        return sorted(self._day_index(table, refresh=True))

    # -- writing --------------------------------------------------------------------

    def day_writer(self, table: str, day: dt.date, schema: pa.Schema) -> DeltaDayWriter:
        return DeltaDayWriter(self, table, day, schema)

    def commit_day(
        self,
        table: str,
        day: dt.date,
        rel_path: str,
        size: int,
        rows: int,
        schema: pa.Schema,
        metadata: Mapping[str, str],
    ) -> int:
        """Make `rel_path` (already in place) the day's one live file, in one commit carrying
        `metadata`; returns the table version it landed at."""
        table_schema = with_partition_column(schema)
        iso = day.isoformat()
        add = AddAction(
            rel_path,
            size,
            {PARTITION_COLUMN: iso},
            int(time.time() * 1000),
            True,
            json.dumps({"numRecords": rows}),
        )
        properties = CommitProperties(
            custom_metadata={**metadata, KV_COMMIT_DAY: iso}, max_commit_retries=COMMIT_ATTEMPTS
        )
        for attempt in range(COMMIT_ATTEMPTS):
            # A table of each thread's own: threads committing different days race in the
            # log (delta-rs retries), not on a shared object.
            delta = self._writable_table(table, table_schema)
            try:
                delta.create_write_transaction(
                    [add],
                    "overwrite",
                    table_schema,
                    partition_by=[PARTITION_COLUMN],
                    partition_filters=[(PARTITION_COLUMN, "=", iso)],
                    commit_properties=properties,
                    post_commithook_properties=PostCommitHookProperties(create_checkpoint=True),
                )
                break
            except CommitFailedError:
                # Lost to other days' commits more often than delta-rs retries: the day is
                # ours (its lock), so committing it again over the newer version is safe.
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        self.delta_table(table, refresh=True)
        return delta.version()

    def _writable_table(self, table: str, table_schema: pa.Schema) -> DeltaTable:
        """This thread's own copy of the table, brought up to the latest version: the
        overwrite's removes come from it, so it must include every earlier commit of the day
        (the day's lock is held: no later one can come)."""
        mine: dict[str, DeltaTable] = self._thread_tables.__dict__.setdefault("tables", {})
        cached = mine.get(table)
        if cached is not None:
            cached.update_incremental()
            return cached
        mine[table] = self._load_or_create(table, table_schema)
        return mine[table]

    def _load_or_create(self, table: str, table_schema: pa.Schema) -> DeltaTable:
        uri = self.table_uri(table)
        try:
            return DeltaTable(uri, storage_options=self.storage_options)
        except TableNotFoundError:
            self._refuse_parquet_table(table)
        try:
            DeltaTable.create(
                uri,
                schema=table_schema,
                partition_by=[PARTITION_COLUMN],
                mode="ignore",
                configuration=TABLE_CONFIGURATION,
                storage_options=self.storage_options,
            )
        except Exception:
            # Another writer created it first (its first commit won the put-if-absent).
            if not DeltaTable.is_deltatable(uri, storage_options=self.storage_options):
                raise
        return DeltaTable(uri, storage_options=self.storage_options)

    def new_file_rel_path(self, day: dt.date) -> str:
        return f"date={day.isoformat()}/part-00000-{uuid.uuid4()}.c000.zstd.parquet"

    # -- clean-up -------------------------------------------------------------------

    def vacuum(self, table: str) -> list[str]:
        """Delete the files no longer in the table's latest version: every file a commit
        removed (replaced, or rewritten by an erasure or a retention pass), at once; and
        files no version references (a writer that died between putting its file in place
        and committing it, or a removal whose record left the log) once they are
        ORPHAN_HOURS old, which no live writer's file can be. Readers of older versions,
        and time travel to them, end here."""
        delta = self.delta_table(table, refresh=True)
        if delta is None:
            return []
        deleted = delta.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        deleted += delta.vacuum(
            retention_hours=ORPHAN_HOURS,
            enforce_retention_duration=False,
            dry_run=False,
            full=True,
        )
        self.delta_table(table, refresh=True)
        return list(deleted)


class DeltaDayWriter(DayWriter):
    """The Parquet lake's DayWriter (stage, then put in place under a new name), followed by
    the day's commit, which carries the footer's key/value dict as its metadata."""

    def __init__(self, lake: DeltaLake, table: str, day: dt.date, schema: pa.Schema) -> None:
        super().__init__(lake, table, day, schema)
        self._delta_lake = lake
        self._rel_path = lake.new_file_rel_path(day)
        self._final = f"{lake.table_dir(table)}/{self._rel_path}"
        self._metadata: dict[str, str] = {}
        self.version: int | None = None

    def commit(self, metadata: Mapping[str, str]) -> None:
        self._metadata = dict(metadata)
        super().commit(metadata)

    def _publish(self) -> None:
        lake = self._delta_lake
        lease = lake._leases.get((self._table, self._day))
        if lease is not None:
            # Each write is a new, uniquely named part file: its upload only needs "no such
            # object yet". The day itself is fenced by the lease check and the log commit.
            lease.day_version = None
        super()._publish()  # the file is in place, under a name no version references yet
        try:
            if lease is not None:
                lease.check()  # never commit a day another writer may own by now
            self.version = lake.commit_day(
                self._table,
                self._day,
                self._rel_path,
                self.bytes_written,
                self.rows,
                self.schema,
                self._metadata,
            )
        except BaseException:
            # Not committed: no version references the file; delete it now (vacuum would).
            try:
                lake.fs.delete_file(self._final)
            except OSError:
                pass
            raise


class _DayFiles:
    """A day made of several files (written by another engine), read as one: the subset of
    pyarrow.parquet.ParquetFile that the sync, erasure and retention use."""

    def __init__(self, lake: DeltaLake, paths: list[str]) -> None:
        self._dataset = pads.dataset(paths, filesystem=lake.fs, format="parquet")
        first = pq.ParquetFile(lake.fs.open_input_file(paths[0]))
        self.schema_arrow = self._dataset.schema
        self.metadata = _Metadata(
            sum(pq.ParquetFile(lake.fs.open_input_file(p)).metadata.num_rows for p in paths),
            first.metadata.metadata,
        )
        first.close()

    def read(self, columns: list[str] | None = None) -> pa.Table:
        return self._dataset.to_table(columns=columns)

    def iter_batches(self, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        yield from self._dataset.to_batches(batch_size=batch_size)

    def close(self) -> None:
        pass

    def __enter__(self) -> _DayFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Metadata:
    num_rows: int
    metadata: dict[bytes, bytes] | None


def with_partition_column(schema: pa.Schema) -> pa.Schema:
    """A day file's schema plus the table's `date` partition column (not stored in files)."""
    base = schema.remove_metadata()
    if PARTITION_COLUMN in base.names:
        return base
    return base.append(pa.field(PARTITION_COLUMN, pa.date32()))


def s3_storage_options(root: str) -> dict[str, str]:
    """delta-rs (object_store) options for an s3:// root, from the same places the Parquet
    lake reads them: the URI's query (endpoint_override, scheme, region), else the usual
    AWS variables. Commits use conditional PUTs (`If-None-Match`), so no lock service
    (DynamoDB) is needed; AWS S3 and MinIO support them."""
    query = dict(parse_qsl(urlsplit(root).query))
    options: dict[str, str] = {"conditional_put": "etag"}
    endpoint = None
    if "endpoint_override" in query:
        endpoint = f"{query.get('scheme', 'https')}://{query['endpoint_override']}"
    else:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    region = query.get("region") or os.environ.get("AWS_REGION")
    if region:
        options["AWS_REGION"] = region
    return options
