"""Convert a Parquet lake to Delta tables in place: `python -m cg_assets.lake.convert_to_delta`.

Each table folder `{CG_LAKE_ROOT}/customergauge/{table}/` becomes a Delta table whose first
commits add the day files as they are (`date=YYYY-MM-DD/data.parquet`): nothing is copied or
rewritten, so every row stays, and every file keeps its footer, which is where the Delta lake
reads a day's cursor, settings and settled flag (delta_lake.py). The next sync with
CG_TABLE_FORMAT=delta therefore catches every day up from its stored cursor (one request
per day with nothing new) and skips settled days, as the Parquet lake would have.

Run it with the schedules and sensors stopped (no sync may replace a day file meanwhile),
then set CG_TABLE_FORMAT=delta. A table that already has a `_delta_log` is left alone, so
running it twice is harmless. Works on a local folder and on s3:// alike.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cg_assets.lake.delta_lake import (
    DELTA_LOG,
    PARTITION_COLUMN,
    TABLE_CONFIGURATION,
    DeltaLake,
    with_partition_column,
)
from cg_assets.lake.parquet_lake import DAY_FILE_NAME, NAMESPACE
from cg_assets.settings import SettingsError, lake_root_from_env

# Adds per commit: a few years of days in one commit each is fine; this only bounds the
# size of one log entry.
ADDS_PER_COMMIT = 1000


@dataclass(frozen=True)
class Converted:
    table: str
    days: int
    rows: int
    skipped: str | None = None  # why the table was left as it was


def tables_of(lake: DeltaLake) -> list[str]:
    """The lake's table folders (names starting with _ hold locks, staging and small files)."""
    selector = pafs.FileSelector(f"{lake.base}/{NAMESPACE}", allow_not_found=True)
    return sorted(
        info.base_name
        for info in lake.fs.get_file_info(selector)
        if info.type == pafs.FileType.Directory and not info.base_name.startswith(("_", "."))
    )


def convert_table(lake: DeltaLake, table: str) -> Converted:
    from deltalake import CommitProperties, DeltaTable
    from deltalake.transaction import AddAction

    table_dir = lake.table_dir(table)
    if lake.fs.get_file_info(f"{table_dir}/{DELTA_LOG}").type == pafs.FileType.Directory:
        return Converted(table, 0, 0, skipped="already a Delta table")
    adds: list[AddAction] = []
    schema: pa.Schema | None = None
    rows = 0
    for info in lake.fs.get_file_info(pafs.FileSelector(table_dir, allow_not_found=True)):
        name = info.base_name
        if info.type != pafs.FileType.Directory or not name.startswith("date="):
            continue
        path = f"{info.path}/{DAY_FILE_NAME}"
        file_info = lake.fs.get_file_info(path)
        if file_info.type != pafs.FileType.File:
            continue  # an empty folder: no day
        with lake.fs.open_input_file(path) as handle:
            meta = pq.read_metadata(handle)
        file_schema = meta.schema.to_arrow_schema().remove_metadata()
        if schema is None:
            schema = file_schema
        elif not file_schema.equals(schema):
            raise SettingsError(
                f"{path}: its columns differ from the table's other days (written by another "
                "version of cg_assets?); fetch the day again with CG_TABLE_FORMAT=parquet and "
                "full_refresh: true, then convert."
            )
        rows += meta.num_rows
        mtime = file_info.mtime
        adds.append(
            AddAction(
                f"{name}/{DAY_FILE_NAME}",
                file_info.size,
                {PARTITION_COLUMN: name.removeprefix("date=")},
                int(mtime.timestamp() * 1000) if mtime is not None else 0,
                True,
                f'{{"numRecords": {meta.num_rows}}}',
            )
        )
    if schema is None:
        return Converted(table, 0, 0, skipped="no day files")
    table_schema = with_partition_column(schema)
    uri = lake.table_uri(table)
    DeltaTable.create(
        uri,
        schema=table_schema,
        partition_by=[PARTITION_COLUMN],
        mode="error",
        configuration=TABLE_CONFIGURATION,
        storage_options=lake.storage_options,
        commit_properties=CommitProperties(custom_metadata={"cg_assets.converted_from": "parquet"}),
    )
    delta = DeltaTable(uri, storage_options=lake.storage_options)
    adds.sort(key=lambda a: a.path)
    for start in range(0, len(adds), ADDS_PER_COMMIT):
        chunk = adds[start : start + ADDS_PER_COMMIT]
        delta.create_write_transaction(
            chunk,
            "append",
            table_schema,
            partition_by=[PARTITION_COLUMN],
            commit_properties=CommitProperties(
                custom_metadata={
                    "cg_assets.converted_from": "parquet",
                    "cg_assets.days": str(len(chunk)),
                }
            ),
        )
        delta.update_incremental()
    return Converted(table, len(adds), rows)


def convert_lake(root: str) -> list[Converted]:
    lake = DeltaLake(root)
    lake.ensure_writable()
    return [convert_table(lake, table) for table in tables_of(lake)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cg_assets.lake.convert_to_delta",
        description="Convert a Parquet lake to Delta tables in place (docs/delta.md).",
    )
    parser.add_argument("--root", default=None, help="the lake (default: CG_LAKE_ROOT)")
    args = parser.parse_args(argv)
    root = args.root or lake_root_from_env()
    try:
        done = convert_lake(root)
    except SettingsError as exc:
        print(f"convert_to_delta: {exc}", file=sys.stderr)
        return 2
    for item in done:
        if item.skipped:
            print(f"{item.table}: left as it was ({item.skipped})")
        else:
            print(f"{item.table}: {item.days} days, {item.rows} rows, now a Delta table")
    print("Set CG_TABLE_FORMAT=delta for the next runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
