"""Readers scanning a table while one day is replaced again and again (shared by
test_delta_readers.py and benchmarks/delta_vs_parquet.py).

A writer replaces the day with a new version of the same row count, through the lake's own
day writer under the day's lock, as a settle does; reader threads scan the whole table the
way a user would, each scan counting its rows:
- parquet: polars `scan_parquet` and DuckDB `read_parquet` over the table's hive folders;
- delta: polars `scan_delta`, and DuckDB over the table's Arrow dataset
  (`DeltaTable.to_pyarrow_dataset()`, no DuckDB extension needed).
Every scan must see every row of every day: any other count is a wrong count, and any
exception (a polars PanicException included, which is not an Exception) is an error.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from cg_assets.lake.formats import open_lake

TABLE = "stress"
SCHEMA = pa.schema([pa.field("k", pa.int64()), pa.field("payload", pa.string())])
DAYS = [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)]
REPLACED = DAYS[1]


@dataclass
class StressResult:
    table_format: str
    replacements: int
    scans: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    wrong_counts: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "table_format": self.table_format,
            "replacements": self.replacements,
            "scans": dict(self.scans),
            "errors": dict(self.errors),
            "wrong_counts": dict(self.wrong_counts),
            "first_errors": self.first_errors,
        }


def _rows(n: int, version: int) -> pa.Table:
    return pa.table(
        {"k": list(range(n)), "payload": [f"v{version}-{i}" * 4 for i in range(n)]}, schema=SCHEMA
    )


def _write(lake: object, day: dt.date, table: pa.Table) -> None:
    with lake.day_lock(TABLE, day, "stress writer"):  # type: ignore[attr-defined]
        with lake.day_writer(TABLE, day, SCHEMA) as writer:  # type: ignore[attr-defined]
            writer.write(table)
            writer.commit({"cg_assets.day": day.isoformat()})


def _readers(table_format: str, table_dir: str) -> dict[str, object]:
    import duckdb
    import polars as pl

    if table_format == "delta":
        from deltalake import DeltaTable

        def polars_scan() -> int:
            return pl.scan_delta(table_dir).select(pl.len()).collect().item()

        def duckdb_scan() -> int:
            dataset = DeltaTable(table_dir).to_pyarrow_dataset()
            with duckdb.connect() as con:
                con.register("day_table", dataset)
                return con.execute("select count(*) from day_table").fetchone()[0]

    else:
        glob = f"{table_dir}/**/*.parquet"

        def polars_scan() -> int:
            return pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item()

        def duckdb_scan() -> int:
            with duckdb.connect() as con:
                return con.execute(
                    f"select count(*) from read_parquet('{glob}', hive_partitioning = true)"
                ).fetchone()[0]

    return {"polars": polars_scan, "duckdb": duckdb_scan}


def replace_while_reading(
    table_format: str,
    root: str,
    *,
    rows_per_day: int = 5_000,
    replacements: int = 40,
    readers_per_engine: int = 1,
) -> StressResult:
    lake = open_lake(root, table_format)
    lake.ensure_writable()
    for day in DAYS:
        _write(lake, day, _rows(rows_per_day, 0))
    expected = rows_per_day * len(DAYS)
    result = StressResult(table_format, replacements)
    done = threading.Event()
    lock = threading.Lock()

    def read_loop(engine: str, scan: object) -> None:
        while not done.is_set():
            try:
                count = scan()  # type: ignore[operator]
            except BaseException as exc:  # a PanicException is a BaseException
                with lock:
                    result.errors[engine] += 1
                    if len(result.first_errors) < 5:
                        result.first_errors.append(f"{engine}: {type(exc).__name__}: {exc}"[:300])
                continue
            with lock:
                result.scans[engine] += 1
                if count != expected:
                    result.wrong_counts[engine] += 1

    table_dir = lake.table_dir(TABLE)
    threads = [
        threading.Thread(target=read_loop, args=(engine, scan), daemon=True)
        for engine, scan in _readers(table_format, table_dir).items()
        for _ in range(readers_per_engine)
    ]
    for thread in threads:
        thread.start()
    try:
        for version in range(1, replacements + 1):
            _write(lake, REPLACED, _rows(rows_per_day, version))
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
    return result
