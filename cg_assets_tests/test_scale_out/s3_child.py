"""Day files for the S3 lake tests, and a child process that writes a large day.

The child (`python -m ... write ROOT`) is a writer the test can SIGKILL in the middle of
its upload: the S3 server the tests start lives in the test process, so a hook inside the
server's PutObject kills the writer while its request is in flight.

`python -m ... stall ROOT` is a writer that freezes itself (SIGSTOP: every thread, its lease
renewer too) once its upload of the day has begun, as a paused VM or a long stall would,
with a lease of a few seconds; the test lets it go on (SIGCONT) when it wants. It prints
`stalled <staging file>` when it stops, and `refused: <why>` (exit 3) if its upload is
refused.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import sys

import pyarrow as pa

from cg_assets.lake import locks, object_store
from cg_assets.lake.locks import LeaseLostError
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


STALLED_ROWS = 1000
EXIT_REFUSED = 3


class _StallingBody(io.BufferedReader):
    """The upload's body: the first read freezes the whole process."""

    stalled = False

    def read(self, size: int | None = -1) -> bytes:
        if not _StallingBody.stalled:
            _StallingBody.stalled = True
            print(f"stalled {self.name}", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
        return super().read(size)


def _stalling_open(path: str, mode: str = "r", *args: object, **kwargs: object) -> object:
    assert mode == "rb"
    return _StallingBody(io.FileIO(path, "rb"))


def stall(lake: ParquetLake) -> int:
    locks.LEASE_SECONDS, locks.LEASE_RENEW_SECONDS, locks.PUBLISH_MARGIN_SECONDS = 3, 0.5, 1
    object_store.open = _stalling_open  # type: ignore[attr-defined]  # module-level name
    try:
        with lake.day_lock(TABLE, DAY, "run stalled"):
            write_day(lake, day_table(1, STALLED_ROWS))
    except LeaseLostError as exc:
        print(f"refused: {exc}", flush=True)
        return EXIT_REFUSED
    print("published", flush=True)
    return 0


def main(mode: str, root: str) -> None:
    lake = ParquetLake(root)
    if mode == "write":
        write_day(lake, day_table(*LARGE))
    elif mode == "stall":
        raise SystemExit(stall(lake))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
