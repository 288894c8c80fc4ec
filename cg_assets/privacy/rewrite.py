"""Rewrite one day file in place: every batch through a transform, the footer kept (with
updates), published atomically by the lake's DayWriter (a rename, or one upload), while
the caller holds the table day's writer lock."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa

from cg_assets.lake import parquet_lake as lake_files
from cg_assets.lake.locks import DayLockBusyError
from cg_assets.lake.parquet_lake import ParquetLake

LOCK_POLL_SECONDS = 1.0
Transform = Callable[[pa.RecordBatch], pa.RecordBatch]


@dataclass(frozen=True)
class Rewritten:
    rows_before: int
    rows_after: int


def waiting_day_lock(
    lake: ParquetLake, table: str, day: dt.date, holder: str, wait_seconds: float = 0.0
) -> contextlib.ExitStack:
    """The lake's one-writer-per-table-day lock (ParquetLake.day_lock), as a context
    manager, waiting up to `wait_seconds` for another writer to let it go (a sync holds a
    day for seconds); raises DayLockBusyError, naming the holder, after that."""
    deadline = time.monotonic() + wait_seconds
    while True:
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(lake.day_lock(table, day, holder))
            return stack
        except DayLockBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(LOCK_POLL_SECONDS)


def rewrite_day(
    lake: ParquetLake,
    table: str,
    day: dt.date,
    transform: Transform,
    footer_updates: Mapping[str, str],
) -> Rewritten | None:
    """None when the day has no file. Call with the day's lock held."""
    parquet_file = lake.open_day(table, day)
    if parquet_file is None:
        return None
    with parquet_file:
        footer = {k.decode(): v.decode() for k, v in (parquet_file.metadata.metadata or {}).items()}
        footer.pop("ARROW:schema", None)  # the writer stores its own
        schema = parquet_file.schema_arrow.remove_metadata()
        rows_before = parquet_file.metadata.num_rows
        with lake.day_writer(table, day, schema) as writer:
            for batch in lake_files.iter_table_batches(parquet_file):
                writer.write(transform(batch))
            writer.commit({**footer, **footer_updates})
    return Rewritten(rows_before, writer.rows)
