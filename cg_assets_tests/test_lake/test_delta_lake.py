"""CG_TABLE_FORMAT=delta: every day equals the truth read through the Delta log; one commit a
day carrying its cursor; crash adoption, concurrent days and two writers of one day."""

from __future__ import annotations

import datetime as dt
import math
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from dagster import AssetRecordsFilter, DagsterInstance, materialize
from deltalake import DeltaTable
from pydantic import ValidationError

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.io_managers import scan_days
from cg_assets.defs.resources import LakeResource
from cg_assets.lake.cursor_codec import decode_cursor
from cg_assets.lake.delta_lake import DeltaLake
from cg_assets.lake.formats import open_lake
from cg_assets.lake.parquet_lake import KV_CURSOR, KV_SETTLED, ParquetLake
from cg_assets.privacy.rewrite import waiting_day_lock
from cg_assets.settings import LoadSettings, SettingsError
from cg_assets.sync import SyncOptions, plan_day, sync_day
from cg_assets_tests.conftest import (
    SIM_END,
    SIM_START,
    TEST_PER_PAGE,
    make_resource,
    with_lake_io_manager,
)
from cg_assets_tests.truth import assert_rows_equal_truth, metadata_values

KEY = asset_key_for(NON_RESPONSES)
TABLE = NON_RESPONSES.name
DAY = dt.date(2026, 10, 2)
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0, answer_window_days=366)
ALL_DAYS = [SIM_START + dt.timedelta(days=i) for i in range((SIM_END - SIM_START).days + 1)]


@pytest.fixture
def delta_resources(cg_resource, lake_root: Path) -> dict[str, object]:
    return {
        "customergauge": cg_resource,
        "lake": LakeResource(root=str(lake_root), table_format="delta"),
    }


def table_uri(lake_root: Path, table: str = TABLE) -> str:
    return str(lake_root / "customergauge" / table)


def delta_rows(lake_root: Path, day: dt.date, table: str = TABLE) -> list[dict[str, Any]]:
    """The day as any Delta reader sees it: through the log, not the folder."""
    frame = pl.read_delta(table_uri(lake_root, table)).filter(pl.col("date") == day)
    return frame.drop("date").to_dicts()


def day_commits(lake_root: Path, day: dt.date) -> list[dict[str, Any]]:
    history = DeltaTable(table_uri(lake_root)).history()
    return [c for c in history if c.get("cg_assets.day") == day.isoformat()]


def run(
    instance: DagsterInstance,
    resources: dict,
    settings: LoadSettings = YOUNG,
    *,
    days: tuple[dt.date, dt.date] = (DAY, DAY),
    full_refresh: bool = False,
) -> Any:
    tags = {
        "dagster/asset_partition_range_start": days[0].isoformat(),
        "dagster/asset_partition_range_end": days[1].isoformat(),
    }
    return materialize(
        [build_sync_asset(NON_RESPONSES, settings)],
        tags=tags,
        instance=instance,
        resources=with_lake_io_manager(resources),
        run_config={
            "ops": {"customergauge__non_responses": {"config": {"full_refresh": full_refresh}}}
        },
    )


def latest_metadata(instance: DagsterInstance, day: dt.date) -> dict[str, Any]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=KEY, asset_partitions=[day.isoformat()]), limit=1
    ).records
    assert records, f"no materialization for {day}"
    return metadata_values(records[0].asset_materialization.metadata)


def test_the_table_format_setting_picks_the_lake(tmp_path, monkeypatch):
    assert type(open_lake(str(tmp_path))) is ParquetLake
    assert isinstance(open_lake(str(tmp_path), "Delta"), DeltaLake)
    monkeypatch.setenv("CG_TABLE_FORMAT", "delta")  # a run reads no variable: the typed value
    assert type(LakeResource(root=str(tmp_path)).get_lake()) is ParquetLake
    assert isinstance(LakeResource(root=str(tmp_path), table_format="delta").get_lake(), DeltaLake)
    with pytest.raises(SettingsError, match=r"table_format='iceberg'.*parquet or delta"):
        open_lake(str(tmp_path), "iceberg")
    with pytest.raises(ValidationError, match="table_format"):
        LakeResource(root=str(tmp_path), table_format="orc")


def test_full_sync_then_catch_up_equal_the_truth_through_the_log(
    instance, delta_resources, control, lake_root
):
    assert run(instance, delta_resources, days=(SIM_START, SIM_END)).success
    for day in ALL_DAYS:
        rows = assert_rows_equal_truth(delta_rows(lake_root, day), control, day)
        md = latest_metadata(instance, day)
        assert md["dagster/row_count"] == rows and md["fetch"] == "full"
        # One commit for the day, carrying the cursor the materialization recorded.
        (commit,) = day_commits(lake_root, day)
        assert decode_cursor(commit[KV_CURSOR]) == md["cursor"]
        assert commit[KV_SETTLED] == "false"
    # The partition folders are the Parquet lake's.
    folders = {p.name for p in (lake_root / "customergauge" / TABLE).iterdir()}
    assert folders == {"_delta_log", *(f"date={d.isoformat()}" for d in ALL_DAYS)}

    for day in ALL_DAYS:
        control.add_records(day, 3)
    control.reset_stats()
    assert run(instance, delta_resources, days=(SIM_START, SIM_END)).success

    # One page of 3 and the closing empty page per day: caught up from the committed cursor.
    assert control.stats()["api_requests"] == 2 * len(ALL_DAYS)
    for day in ALL_DAYS:
        assert_rows_equal_truth(delta_rows(lake_root, day), control, day)
        md = latest_metadata(instance, day)
        assert md["fetch"] == "incremental" and md["rows_added"] == 3
        commits = day_commits(lake_root, day)
        assert len(commits) == 2  # one commit per sync of the day
        assert decode_cursor(commits[0][KV_CURSOR]) == md["cursor"]  # newest first
    # The lake IO manager reads the days from the table.
    frame = scan_days(open_lake(str(lake_root), "delta"), TABLE, ALL_DAYS[1:3]).collect()
    assert sorted(set(frame["date"].to_list())) == ALL_DAYS[1:3]
    assert frame.height == sum(len(delta_rows(lake_root, d)) for d in ALL_DAYS[1:3])


def test_a_settle_is_one_commit_that_replaces_the_day(
    instance, delta_resources, control, lake_root
):
    assert run(instance, delta_resources).success
    control.fail_records(day=DAY, count=3)
    assert run(instance, delta_resources, OLD).success
    md = latest_metadata(instance, DAY)
    assert md["mode"] == "settle" and md["settled"] is True and md["status_changed"] == 3
    assert_rows_equal_truth(delta_rows(lake_root, DAY), control, DAY)
    newest = day_commits(lake_root, DAY)[0]
    assert newest[KV_SETTLED] == "true"
    assert newest["operationParameters"]["mode"] == "Overwrite"
    lake = DeltaLake(str(lake_root))
    assert len(lake.day_files(TABLE, DAY)) == 1
    # Settled and recorded: the next run skips the day without a request.
    control.reset_stats()
    assert run(instance, delta_resources, OLD).success
    assert latest_metadata(instance, DAY)["mode"] == "settle"  # no new materialization
    assert control.stats()["api_requests"] == 0


def test_a_crash_between_commit_and_materialization_is_adopted(
    instance, delta_resources, control, lake_root
):
    assert run(instance, delta_resources).success
    stored_cursor = latest_metadata(instance, DAY)["cursor"]
    control.add_records(DAY, 5)
    # A run that committed the day and died before Dagster recorded the materialization.
    options = SyncOptions("date_sent", "UTC", YOUNG.settle_after_hours)
    lake = DeltaLake(str(lake_root))
    plan = plan_day(
        DAY,
        now=dt.datetime.now(dt.timezone.utc),
        options=options,
        full_refresh=False,
        stored=None,
        file_state=lake.day_state(TABLE, DAY),
    )
    with delta_resources["customergauge"].get_client() as client:
        sync_day(client, lake, NON_RESPONSES, DAY, plan, options)
    committed = decode_cursor(day_commits(lake_root, DAY)[0][KV_CURSOR])
    assert committed != stored_cursor
    control.add_records(DAY, 2)
    control.reset_stats()

    assert run(instance, delta_resources).success

    md = latest_metadata(instance, DAY)
    assert md["fetch"] == "incremental" and "adopting the file" in md["reason"]
    assert md["api_requests"] == 2 and md["rows_added"] == 2
    assert str(committed) in str(control.stats()["requests"][0]["query"]["cursor"])
    assert_rows_equal_truth(delta_rows(lake_root, DAY), control, DAY)


def test_a_settled_day_committed_but_not_recorded_is_adopted_without_a_request(
    instance, delta_resources, control, lake_root
):
    options = SyncOptions("date_sent", "UTC", 0)
    lake = DeltaLake(str(lake_root))
    plan = plan_day(
        DAY,
        now=dt.datetime.now(dt.timezone.utc),
        options=options,
        full_refresh=False,
        stored=None,
        file_state=None,
    )
    with delta_resources["customergauge"].get_client() as client:
        sync_day(client, lake, NON_RESPONSES, DAY, plan, options)
    control.reset_stats()
    assert run(instance, delta_resources, OLD).success
    md = latest_metadata(instance, DAY)
    assert md["mode"] == "adopt" and md["settled"] is True
    assert control.stats()["api_requests"] == 0
    assert md["dagster/row_count"] == len(delta_rows(lake_root, DAY))


def test_concurrent_days_of_a_run_all_land(instance, simulator, control, lake_root):
    resources = {
        "customergauge": make_resource(simulator, concurrency="4"),
        "lake": LakeResource(root=str(lake_root), table_format="delta"),
    }
    assert run(instance, resources, days=(SIM_START, SIM_END)).success
    for day in ALL_DAYS:
        rows = assert_rows_equal_truth(delta_rows(lake_root, day), control, day)
        assert latest_metadata(instance, day)["api_requests"] == math.ceil(rows / TEST_PER_PAGE) + 1
        assert len(day_commits(lake_root, day)) == 1


SCHEMA = pa.schema([pa.field("k", pa.int64()), pa.field("writer", pa.string())])


def write_day(lake: DeltaLake, day: dt.date, rows: pa.Table, cursor: int) -> None:
    with lake.day_writer("t", day, SCHEMA) as writer:
        writer.write(rows)
        writer.commit({KV_CURSOR: str(cursor)})


def test_writers_of_different_days_racing_in_the_log_all_land(tmp_path):
    """Four lakes (as four processes would) commit ten days each at the same moment."""
    root = str(tmp_path / "lake")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        lake = DeltaLake(root)
        start.wait()
        try:
            for i in range(10):
                day = dt.date(2026, 1, 1) + dt.timedelta(days=w * 10 + i)
                with lake.day_lock("t", day, f"writer {w}"):
                    rows = pa.table({"k": [i, i + 100], "writer": [str(w)] * 2}, schema=SCHEMA)
                    write_day(lake, day, rows, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = pl.read_delta(f"{root}/customergauge/t").group_by("date").len()
    assert counts.height == 40 and set(counts["len"].to_list()) == {2}
    assert len(DeltaLake(root).days("t")) == 40


def test_two_writers_of_one_day_never_lose_a_row(tmp_path):
    """Each writer adds its own rows to the day by read, merge, commit, under the day's lock."""
    root = str(tmp_path / "lake")
    day = dt.date(2026, 1, 1)
    per_writer = 15
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        lake = DeltaLake(root)
        try:
            for i in range(per_writer):
                with waiting_day_lock(lake, "t", day, f"writer {w}", wait_seconds=60):
                    lake.day_state("t", day)  # what a sync does first, under the lock
                    old = lake.read_day("t", day)
                    new = pa.table({"k": [w * 1000 + i], "writer": [str(w)]}, schema=SCHEMA)
                    merged = new if old is None else pa.concat_tables([old.cast(SCHEMA), new])
                    write_day(lake, day, merged, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    keys = pl.read_delta(f"{root}/customergauge/t")["k"].to_list()
    assert sorted(keys) == sorted(w * 1000 + i for w in range(2) for i in range(per_writer))


def test_a_parquet_lake_is_not_read_as_delta_before_it_is_converted(
    instance, resources, delta_resources, lake_root
):
    assert run(instance, resources).success  # the default format: a Parquet lake
    with pytest.raises(SettingsError, match="convert_to_delta"):
        DeltaLake(str(lake_root)).day_state(TABLE, DAY)


def test_converting_a_parquet_lake_keeps_rows_cursors_and_settled_flags(
    instance, resources, delta_resources, control, lake_root, capsys
):
    from cg_assets.lake import convert_to_delta

    assert run(instance, resources, days=(SIM_START, SIM_END)).success  # a Parquet lake
    assert run(instance, resources, OLD).success  # DAY settled
    parquet_lake = ParquetLake(str(lake_root))
    before = {d: parquet_lake.day_state(TABLE, d) for d in ALL_DAYS}

    assert convert_to_delta.main(["--root", str(lake_root)]) == 0
    assert f"{TABLE}: {len(ALL_DAYS)} days" in capsys.readouterr().out
    assert convert_to_delta.main(["--root", str(lake_root)]) == 0  # twice is harmless
    assert "already a Delta table" in capsys.readouterr().out

    lake = DeltaLake(str(lake_root))
    for day in ALL_DAYS:
        assert_rows_equal_truth(delta_rows(lake_root, day), control, day)
        after = lake.day_state(TABLE, day)
        assert after is not None and before[day] is not None
        assert (after.cursor, after.settled, after.rows) == (
            before[day].cursor,
            before[day].settled,
            before[day].rows,
        )
    assert lake.day_state(TABLE, DAY).settled

    control.reset_stats()
    assert run(instance, delta_resources, days=(SIM_START, SIM_END)).success
    # Nothing new: one request per day caught up from its cursor, none for the settled day.
    assert control.stats()["api_requests"] == len(ALL_DAYS) - 1
    for day in ALL_DAYS:
        if day != DAY:
            assert latest_metadata(instance, day)["fetch"] == "incremental"
