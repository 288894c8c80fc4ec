"""Which lake a run writes: table_format parquet (one file per day, the default) or delta
(one Delta table per endpoint, one commit per day; docs/delta.md). Both have the same
interface (ParquetLake's), so the sync, the assets and the privacy passes do not care."""

from __future__ import annotations

from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import RULES


def open_lake(root: str, table_format: str = "parquet") -> ParquetLake:
    """The lake at `root` in `table_format` (checked by its rule, as everywhere)."""
    if RULES["table_format"].of(table_format) == "delta":
        from cg_assets.lake.delta_lake import DeltaLake  # deltalake is an optional extra

        return DeltaLake(root)
    return ParquetLake(root)


def is_delta(lake: ParquetLake) -> bool:
    return getattr(lake, "table_format", "parquet") == "delta"


def vacuum(lake: ParquetLake, table: str) -> list[str]:
    """Delete the table's files that no version references any more (Delta: the files an
    erasure or a retention pass replaced, so the old values are gone from the table's
    history too); nothing to do for a Parquet lake, whose replaced files are gone already."""
    if not is_delta(lake):
        return []
    return lake.vacuum(table)  # type: ignore[attr-defined]
