"""Day files: atomic replacement, footer state, and what a reader can see."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.lake import parquet_lake
from cg_assets.lake.parquet_lake import KV_CURSOR, KV_DATE_FIELD, ParquetLake

DECODER = NON_RESPONSES.decoder()
DAY = dt.date(2026, 11, 2)
SYNCED = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone.utc)


def batch(*keys: int):
    records = [
        {"number_customergauge": k, "status": "survey-sent", "date_sent": "2026-11-02 10:00:00"}
        for k in keys
    ]
    return DECODER.decode(records, SYNCED, "test")


def write(lake: ParquetLake, *keys: int, cursor: int = 1) -> None:
    with lake.day_writer("non_responses", DAY, DECODER.schema) as writer:
        writer.write(batch(*keys))
        writer.commit({KV_CURSOR: json.dumps(cursor), KV_DATE_FIELD: "date_sent"})


def test_a_day_is_written_where_hive_readers_expect_it(tmp_path: Path):
    lake = ParquetLake(str(tmp_path))
    write(lake, 1, 2, 3, cursor=42)
    path = tmp_path / "customergauge" / "non_responses" / "date=2026-11-02" / "data.parquet"
    assert pq.read_table(path).column("number_customergauge").to_pylist() == [1, 2, 3]
    state = lake.day_state("non_responses", DAY)
    assert (state.rows, state.cursor, state.date_field) == (3, 42, "date_sent")
    assert lake.days("non_responses") == [DAY]


def test_an_aborted_write_leaves_the_previous_file_and_no_stray_file(tmp_path: Path):
    lake = ParquetLake(str(tmp_path))
    write(lake, 1, 2)
    with (
        pytest.raises(RuntimeError),
        lake.day_writer("non_responses", DAY, DECODER.schema) as writer,
    ):
        writer.write(batch(9))
        raise RuntimeError("the fetch failed half-way")
    assert pq.read_table(lake.day_path("non_responses", DAY)).column(0).to_pylist() == [1, 2]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [
        Path(lake.day_path("non_responses", DAY))
    ]


def test_staging_files_live_outside_the_table_folder(tmp_path: Path):
    lake = ParquetLake(str(tmp_path))
    with lake.day_writer("non_responses", DAY, DECODER.schema) as writer:
        writer.write(batch(1))
        staged = [p for p in tmp_path.rglob("*.tmp")]
        assert len(staged) == 1
        assert Path(lake.table_dir("non_responses")) not in staged[0].parents
        assert not staged[0].name.endswith(".parquet")
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_dead_writers_staging_files_are_cleared_by_the_next_holder_of_the_day(tmp_path: Path):
    lake = ParquetLake(str(tmp_path))
    other_day = DAY + dt.timedelta(days=1)
    dead = lake.day_writer("non_responses", DAY, DECODER.schema)
    dead.write(batch(1))  # never committed nor aborted: the process "died"...
    os.close(dead._owned)  # ...and the kernel dropped its lock on the staging file
    stalled = lake.day_writer("non_responses", DAY, DECODER.schema)
    stalled.write(batch(3))  # alive (its lease taken over while it stalled): keeps its file
    live = lake.day_writer("non_responses", other_day, DECODER.schema)
    live.write(batch(2))  # another day's writer, still going
    assert len(list(tmp_path.rglob("*.tmp"))) == 3
    with lake.day_lock("non_responses", DAY, "run-test"):
        pass
    left = sorted(p.name for p in tmp_path.rglob("*.tmp"))
    assert left == sorted(Path(w._staged).name for w in (stalled, live))
    live.abort()
    stalled.abort()


def test_large_days_are_split_into_row_groups(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(parquet_lake, "ROW_GROUP_ROWS", 10)
    lake = ParquetLake(str(tmp_path))
    with lake.day_writer("non_responses", DAY, DECODER.schema) as writer:
        for start in range(0, 35, 5):
            writer.write(batch(*range(start, start + 5)))
        writer.commit({KV_CURSOR: "35"})
    meta = pq.read_metadata(lake.day_path("non_responses", DAY))
    assert meta.num_rows == 35 and meta.num_row_groups >= 3
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_an_unreadable_file_counts_as_missing(tmp_path: Path):
    lake = ParquetLake(str(tmp_path))
    path = Path(lake.day_path("non_responses", DAY))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 not really")
    assert lake.day_state("non_responses", DAY) is None
