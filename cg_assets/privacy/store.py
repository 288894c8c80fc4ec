"""Small files kept with the lake (the suppression list, the erasure audit) and day-file
footers, through the lake's pyarrow filesystem, so the same code works on a local folder
and on S3.

Each small file is written once and never changed: a new entry is a new file, published
atomically (a rename on a local disk, one upload on an object store), so two writers never
lose each other's entries and a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cg_assets.lake.parquet_lake import NAMESPACE, ParquetLake


def lake_dir(lake: ParquetLake, name: str) -> str:
    """`{CG_LAKE_ROOT}/customergauge/{name}`: names starting with _ are not tables (pyarrow
    datasets, polars and DuckDB hive scans of a table folder never see them)."""
    return f"{lake.base}/{NAMESPACE}/{name}"


def new_file_name(suffix: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%S')}Z-{uuid.uuid4().hex[:12]}{suffix}"


def put_file(lake: ParquetLake, path: str, data: bytes) -> None:
    """Publish `data` at `path` atomically."""
    lake.put_small_file(path, data)


def list_files(lake: ParquetLake, folder: str, suffix: str) -> list[str]:
    """Paths of the files in `folder` ending with `suffix`, sorted by name (oldest first)."""
    selector = pafs.FileSelector(folder, allow_not_found=True)
    return sorted(
        info.path
        for info in lake.fs.get_file_info(selector)
        if info.type == pafs.FileType.File and info.base_name.endswith(suffix)
    )


def read_file(lake: ParquetLake, path: str) -> bytes:
    with lake.fs.open_input_file(path) as handle:
        return handle.read()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def day_footer(lake: ParquetLake, table: str, day: dt.date) -> dict[str, str] | None:
    """A day file's key-value metadata; None when the day has no readable file."""
    try:
        with lake.fs.open_input_file(lake.day_path(table, day)) as handle:
            meta = pq.read_metadata(handle)
    except (OSError, pa.ArrowInvalid):
        return None
    return {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
