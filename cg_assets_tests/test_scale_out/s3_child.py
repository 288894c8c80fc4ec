"""Day files for the S3 lake tests, and a child process that writes a large day.

The child (`python -m ... write ROOT`) is a writer the test can SIGKILL in the middle of
its upload: the S3 server the tests start lives in the test process, so a hook inside the
server's PutObject kills the writer while its request is in flight.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

import pyarrow as pa

from cg_assets.lake.parquet_lake import ParquetLake

TABLE = "non_responses"
DAY = dt.date(2026, 10, 2)
DAY_KEY = f"lake/customergauge/{TABLE}/date={DAY.isoformat()}/data.parquet"
SCHEMA = pa.schema([("number_customergauge", pa.int64()), ("payload", pa.binary())])
PART = 10 * 1024 * 1024  # a size well above any single network write
SMALL = (1, 50)  # (first key, rows, payload bytes): a few KB
LARGE = (1000, 2600, 10_000)  # about 26 MB: three parts


def day_table(first_key: int, rows: int, payload_bytes: int = 16) -> pa.Table:
    """`rows` records with random payloads, so that zstd cannot shrink a large day."""
    return pa.table(
        {
            "number_customergauge": pa.array(range(first_key, first_key + rows), pa.int64()),
            "payload": pa.array([os.urandom(payload_bytes) for _ in range(rows)], pa.binary()),
        },
        schema=SCHEMA,
    )


def write_day(lake: ParquetLake, table: pa.Table) -> None:
    with lake.day_writer(TABLE, DAY, SCHEMA) as writer:
        writer.write(table)
        writer.commit({"cg_assets.cursor": "1"})


def main(mode: str, root: str) -> None:
    lake = ParquetLake(root)
    if mode == "write":
        write_day(lake, day_table(*LARGE))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
