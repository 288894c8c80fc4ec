"""The lake as an IO manager: downstream assets get polars LazyFrames, not paths.

An asset that takes `non_responses: pl.LazyFrame` (or `responses`, or `survey_funnel`)
gets the day files of its partition, or of its partition range (a backfill run, or a
weekly asset mapped onto daily partitions), as one lazy scan with a `date` column; an
unpartitioned asset gets every day. A day without a file (never synced, or empty) adds
no rows, and a range without any file is an empty frame of the table's declared schema,
so a query over it still finds every column with its type.

A daily-partitioned asset that returns a polars DataFrame has it written as its day's
file, `{lake root}/customergauge/{asset name}/date=YYYY-MM-DD/data.parquet`, published
atomically like the sync's files (staged outside the table, then renamed or uploaded in
one step). The sync assets return no value: they write their days themselves.

It is bound under the tenant's own key (`customergauge_io_manager` for the project's
tenant, `<prefix>_io_manager` for a component tenant), never as the code location's default
`io_manager`, which stays Dagster's for the user's other assets. The sync assets declare
that key, and Dagster loads an input with its upstream's IO manager, so an input needs no
`input_manager_key`; an asset whose polars DataFrame output goes into the lake sets
`io_manager_key`.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import Field

from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.defs.funnel_schema import FUNNEL_SCHEMA, FUNNEL_TABLE
from cg_assets.defs.tenant import DEFAULT_TENANT
from cg_assets.lake import parquet_lake as lake_files
from cg_assets.lake.columns import SCHEMA_VERSION
from cg_assets.lake.formats import is_delta, open_lake
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import DEFAULT_LAKE_ROOT, RULES, TableFormat

# The project's own tenant's key (customergauge_io_manager); a component tenant's has its prefix.
LAKE_IO_MANAGER_KEY = DEFAULT_TENANT.io_manager_key
DATE_COLUMN = "date"  # the partition's day, as in a Hive-partitioned scan of the table


def declared_schema(table: str) -> pa.Schema | None:
    """The one schema a lake table's files have, if cg_assets declares the table."""
    for endpoint in ENDPOINTS:
        if endpoint.name == table:
            return endpoint.decoder().schema
    return FUNNEL_SCHEMA if table == FUNNEL_TABLE else None


def scan_days(lake: ParquetLake, table: str, days: list[dt.date]) -> pl.LazyFrame:
    """The table's files of these days as one lazy scan with a `date` column."""
    frames = []
    schema = declared_schema(table)
    if is_delta(lake):
        from cg_assets.lake.delta_scan import scan_delta_days

        return scan_delta_days(lake, table, days, schema)
    for day in days:
        path = lake.day_path(table, day)
        if lake.fs.get_file_info(path).type != pafs.FileType.File:
            continue  # never synced: no rows
        if lake.is_local:
            frame = pl.scan_parquet(path)
        else:  # an object store (S3), with its credentials
            frame = pl.scan_pyarrow_dataset(
                pads.dataset(path, filesystem=lake.fs, format="parquet")
            )
        frames.append(frame.with_columns(pl.lit(day, dtype=pl.Date).alias(DATE_COLUMN)))
        if schema is None:
            state = lake.day_state(table, day)
            schema = state.schema if state else None
    if not frames:
        if schema is None:
            raise ValueError(
                f"lake table {table!r} has no file for {len(days)} day(s) and no declared schema"
            )
        empty = pl.from_arrow(schema.empty_table())
        assert isinstance(empty, pl.DataFrame)
        return empty.lazy().with_columns(pl.lit(None, dtype=pl.Date).alias(DATE_COLUMN))
    return pl.concat(frames, how="vertical")


class LakeFrameIOManager(ConfigurableIOManager):
    """Loads lake tables as polars LazyFrames; stores a daily asset's DataFrame as its day file."""

    root: str = Field(default=DEFAULT_LAKE_ROOT, description=RULES["lake_root"].description)
    table_format: TableFormat = Field(
        default=TableFormat.parquet, description=RULES["table_format"].description
    )

    def _lake(self) -> ParquetLake:
        return open_lake(self.root, self.table_format.value)

    def load_input(self, context: InputContext) -> pl.LazyFrame:
        lake = self._lake()
        table = context.asset_key.path[-1]
        if context.has_asset_partitions:
            days = sorted(dt.date.fromisoformat(k) for k in context.asset_partition_keys)
        else:
            days = lake.days(table)
        return scan_days(lake, table, days)

    def handle_output(self, context: OutputContext, obj: object) -> None:
        if obj is None:
            return  # the sync assets write their own files
        if isinstance(obj, pl.LazyFrame):
            obj = obj.collect()
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned a {type(obj).__name__}: the lake "
                "IO manager stores polars DataFrames (other values: leave io_manager_key unset)."
            )
        keys = context.asset_partition_keys if context.has_asset_partitions else []
        if len(keys) != 1:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: the lake stores one day per output; "
                "give the asset daily partitions and a backfill policy of one run per partition."
            )
        day = dt.date.fromisoformat(keys[0])
        table_name = context.asset_key.path[-1]
        data = obj.drop(DATE_COLUMN, strict=False).to_arrow()
        schema = declared_schema(table_name)
        if schema is not None:
            data = data.select(schema.names).cast(schema)
        else:
            nulls = [f.name for f in data.schema if pa.types.is_null(f.type)]
            if nulls:
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: columns {nulls} are all null with no "
                    "type; cast them (a Null-typed column breaks scans over many days)."
                )
        lake = self._lake()
        lake.ensure_writable()
        with lake.day_writer(table_name, day, data.schema) as writer:
            writer.write(data)
            writer.commit(
                {
                    lake_files.KV_DAY: day.isoformat(),
                    lake_files.KV_SCHEMA_VERSION: SCHEMA_VERSION,
                    lake_files.KV_SYNCED_AT: dt.datetime.now(dt.timezone.utc).isoformat(
                        timespec="seconds"
                    ),
                }
            )
        context.add_output_metadata(
            {
                "dagster/row_count": MetadataValue.int(data.num_rows),
                "path": MetadataValue.path(lake.display_path(table_name, day)),
            }
        )
