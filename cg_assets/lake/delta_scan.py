"""Days of a Delta table as one polars LazyFrame, read through the table's log.

The scan is pinned to one table version (the latest when it is built), so a range of days
is one snapshot of the lake: a backfill, a settle or an erasure committing meanwhile is
either wholly in it or not at all. Partition pruning on `date` reads only the asked days.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow as pa

from cg_assets.lake.delta_lake import PARTITION_COLUMN, DeltaLake


def scan_delta_days(
    lake: DeltaLake, table: str, days: list[dt.date], schema: pa.Schema | None
) -> pl.LazyFrame:
    delta = lake.delta_table(table, refresh=True)
    if delta is None or not days:
        if schema is None and delta is not None:
            schema = pa.schema(delta.schema().to_arrow())  # type: ignore[arg-type]
        if schema is None:
            raise ValueError(
                f"lake table {table!r} has no Delta table for {len(days)} day(s) and no declared schema"
            )
        empty = pl.from_arrow(schema.empty_table())
        assert isinstance(empty, pl.DataFrame)
        if PARTITION_COLUMN in empty.columns:
            empty = empty.drop(PARTITION_COLUMN)
        return empty.lazy().with_columns(pl.lit(None, dtype=pl.Date).alias(PARTITION_COLUMN))
    frame = pl.scan_delta(
        lake.table_uri(table), version=delta.version(), storage_options=lake.storage_options
    )
    return frame.filter(pl.col(PARTITION_COLUMN).is_in(days))
