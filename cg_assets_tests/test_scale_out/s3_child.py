"""Day files for the S3 lake tests, and a child process that fails in the middle of an upload.

The failure scenarios run in a child process (`python -m ... MODE ROOT`) so that they end
the way a real run does, with the interpreter shutting down and every object it still
holds released: the S3 server the tests start lives in the test process, and a pyarrow
stream's destructor (the thing that would publish a half-written object) runs holding its
own process's GIL.
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
PART = 10 * 1024 * 1024  # pyarrow's S3 part size
SMALL = (1, 50)  # (first key, rows, payload bytes): a few KB
LARGE = (1000, 2600, 10_000)  # about 26 MB: three parts
FAILED_AS_INJECTED = "failed as injected"


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


class FailingStream:
    """Passes the first half of a write to the real stream, then fails: the connection
    drops in the middle of an upload, after the store has received data."""

    def __init__(self, real: pa.NativeFile) -> None:
        self.real = real

    def write(self, data: pa.Buffer) -> int:
        self.real.write(data.slice(0, data.size // 2))
        raise OSError("injected: the connection dropped mid-upload")

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


class FailingFs:
    def __init__(self, real: object) -> None:
        self.real = real

    def open_output_stream(self, path: str, *args: object, **kwargs: object) -> FailingStream:
        return FailingStream(self.real.open_output_stream(path, *args, **kwargs))

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def main(mode: str, root: str, size: str = "large") -> None:
    lake = ParquetLake(root)
    if mode == "drop-half-written-stream":
        stream = lake.fs.open_output_stream(f"{lake.base}/half-written")
        stream.write(b"x" * (PART + 1000))
        del stream  # what happens to a stream nobody closes
    elif mode == "fail-mid-upload":
        lake.fs = FailingFs(lake.fs)
        try:
            write_day(lake, day_table(*(LARGE if size == "large" else SMALL)))
        except OSError as exc:
            print(FAILED_AS_INJECTED, exc, flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
