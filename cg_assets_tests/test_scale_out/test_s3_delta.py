"""The Delta lake on the local S3 server (moto): commits with conditional PUTs and no lock
service, concurrent days from several writers all land, two writers of one day lose no row,
and readers through the log see every day."""

from __future__ import annotations

import datetime as dt
import threading

import pyarrow as pa
from deltalake import DeltaTable

from cg_assets.defs.resources import LakeResource
from cg_assets.lake.delta_lake import DeltaLake
from cg_assets.lake.parquet_lake import KV_CURSOR
from cg_assets.privacy.rewrite import waiting_day_lock

SCHEMA = pa.schema([pa.field("k", pa.int64()), pa.field("writer", pa.string())])
START = dt.date(2026, 1, 1)


def write_day(lake: DeltaLake, day: dt.date, rows: pa.Table, cursor: int) -> None:
    with lake.day_writer("t", day, SCHEMA) as writer:
        writer.write(rows)
        writer.commit({KV_CURSOR: str(cursor)})


def run_threads(target, count: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_delta_on_s3_concurrent_days_and_one_day_two_writers(s3):
    lake = LakeResource(root=s3.root, table_format="delta").get_lake()
    assert isinstance(lake, DeltaLake) and not lake.is_local
    barrier = threading.Barrier(3)

    def days_writer(w: int) -> None:
        mine = DeltaLake(s3.root)
        barrier.wait()
        for i in range(4):
            day = START + dt.timedelta(days=w * 4 + i)
            with mine.day_lock("t", day, f"writer {w}"):
                write_day(mine, day, pa.table({"k": [i], "writer": [str(w)]}, schema=SCHEMA), i)

    assert run_threads(days_writer, 3) == []
    assert lake.days("t") == [START + dt.timedelta(days=i) for i in range(12)]

    shared = START + dt.timedelta(days=20)

    def same_day_writer(w: int) -> None:
        mine = DeltaLake(s3.root)
        for i in range(4):
            with waiting_day_lock(mine, "t", shared, f"writer {w}", wait_seconds=120):
                mine.day_state("t", shared)
                old = mine.read_day("t", shared)
                new = pa.table({"k": [w * 100 + i], "writer": [str(w)]}, schema=SCHEMA)
                write_day(mine, shared, new if old is None else pa.concat_tables([old, new]), i)

    assert run_threads(same_day_writer, 2) == []
    table = DeltaTable(lake.table_uri("t"), storage_options=lake.storage_options)
    data = table.to_pyarrow_table()
    assert data.num_rows == 12 + 8
    shared_keys = [r["k"] for r in data.to_pylist() if r["date"] == shared]
    assert sorted(shared_keys) == sorted(w * 100 + i for w in range(2) for i in range(4))
    state = lake.day_state("t", shared)
    assert state is not None and state.rows == 8
    # Every log entry is an object of its own: nothing was overwritten in place.
    log = [k for k in s3.keys() if "/_delta_log/" in k and k.endswith(".json")]
    assert len(log) == table.version() + 1
