"""The non-responses asset against the simulator, on a real instance, read back from Parquet."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from dagster import AssetRecordsFilter, DagsterInstance, materialize

from cg_assets import clock
from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.checks import RECORDS_IN_DAY
from cg_assets.lake.parquet_lake import KV_CURSOR, ParquetLake
from cg_assets.settings import LoadSettings
from cg_assets.sync import SyncOptions, plan_day, sync_day
from cg_assets_tests.conftest import SIM_END, SIM_START, TEST_PER_PAGE, with_lake_io_manager
from cg_assets_tests.truth import assert_day_equals_truth, day_file, metadata_values, truth_rows
from cg_simulator import SimulatorControl

KEY = asset_key_for(NON_RESPONSES)
DAY = dt.date(2026, 10, 2)
# Days of the fixed test range are weeks old; a lag of a year keeps them "young" so that
# runs catch up from the cursor, and a lag of 0 makes them due for settling.
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
# Past the settle lag, still inside the answer window (the test days are weeks old).
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0, answer_window_days=366)
# Past the answer window too: the next sync closes the day.
CLOSING = LoadSettings(start_date=SIM_START, settle_after_hours=0, answer_window_days=0)


def run(
    instance: DagsterInstance,
    resources: dict,
    settings: LoadSettings = YOUNG,
    *,
    day: dt.date | None = DAY,
    range_: tuple[dt.date, dt.date] | None = None,
    full_refresh: bool = False,
    raise_on_error: bool = True,
) -> Any:
    asset = build_sync_asset(NON_RESPONSES, settings)
    tags = {}
    partition_key = None
    if range_:
        tags = {
            "dagster/asset_partition_range_start": range_[0].isoformat(),
            "dagster/asset_partition_range_end": range_[1].isoformat(),
        }
    else:
        partition_key = day.isoformat()
    run_config = {
        "ops": {"customergauge__non_responses": {"config": {"full_refresh": full_refresh}}}
    }
    return materialize(
        [asset],
        partition_key=partition_key,
        tags=tags,
        instance=instance,
        resources=with_lake_io_manager(resources),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def latest_metadata(instance: DagsterInstance, day: dt.date) -> dict[str, Any]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=KEY, asset_partitions=[day.isoformat()]), limit=1
    ).records
    assert records, f"no materialization for {day}"
    return metadata_values(records[0].asset_materialization.metadata)


def file_cursor(lake_root: Path, day: dt.date) -> int:
    kv = pq.read_metadata(day_file(lake_root, day)).metadata
    return int(kv[KV_CURSOR.encode()])


def test_first_sync_of_a_day_equals_the_truth(
    instance, resources, control: SimulatorControl, lake_root
):
    run(instance, resources)
    rows = assert_day_equals_truth(lake_root, control, DAY)
    md = latest_metadata(instance, DAY)
    assert rows > TEST_PER_PAGE  # several pages were needed
    assert md["dagster/row_count"] == rows
    assert md["rows_added"] == rows
    assert md["mode"] == "catch-up" and md["fetch"] == "full" and md["settled"] is False
    # every page plus the closing empty one
    assert md["api_requests"] == math.ceil(rows / TEST_PER_PAGE) + 1
    assert md["cursor"] == file_cursor(lake_root, DAY)
    assert sum(md["status_counts"].values()) == rows
    # the preview shows keys, statuses and dates, never personal data
    preview = md["preview"]
    assert "number_customergauge" in preview and "@" not in preview and "first_name" not in preview


def test_catch_up_fetches_only_new_records(
    instance, resources, control: SimulatorControl, lake_root
):
    run(instance, resources)
    first_cursor = latest_metadata(instance, DAY)["cursor"]
    added = control.add_records(DAY, 7)
    control.add_records(DAY + dt.timedelta(days=1), 3)  # another day's news is not fetched
    control.reset_stats()

    run(instance, resources)

    stats = control.stats()
    assert stats["records_served"] == 7
    assert stats["api_requests"] == 2  # one page of 7, then the empty page
    assert all(
        r["query"].get("cursor") in (str(first_cursor), [str(first_cursor)])
        or r["query"].get("cursor") not in (None, [])
        for r in stats["requests"]
    )
    assert str(first_cursor) in str(stats["requests"][0]["query"]["cursor"])
    md = latest_metadata(instance, DAY)
    assert md["fetch"] == "incremental" and md["rows_added"] == 7
    assert md["cursor"] != first_cursor
    rows = assert_day_equals_truth(lake_root, control, DAY)
    assert set(added) <= {
        r["number_customergauge"] for r in pq.read_table(day_file(lake_root, DAY)).to_pylist()
    }
    assert md["dagster/row_count"] == rows


def test_catch_up_with_nothing_new_makes_one_request_and_keeps_the_file(
    instance, resources, control, lake_root
):
    run(instance, resources)
    before = day_file(lake_root, DAY).stat().st_mtime_ns
    control.reset_stats()
    run(instance, resources)
    assert control.stats()["api_requests"] == 1
    md = latest_metadata(instance, DAY)
    assert md["file_rewritten"] is False and md["rows_added"] == 0
    assert day_file(lake_root, DAY).stat().st_mtime_ns == before
    assert md["dagster/row_count"] == len(truth_rows(control, DAY))


def test_settle_replaces_the_day_with_the_new_truth(
    instance, resources, control: SimulatorControl, lake_root
):
    run(instance, resources)
    keys = sorted(truth_rows(control, DAY))
    failed = control.fail_records(keys[:5])
    responded = control.respond_records(keys[5:9])
    assert failed == keys[:5] and responded == keys[5:9]

    run(instance, resources, OLD)

    md = latest_metadata(instance, DAY)
    assert md["mode"] == "settle" and md["settled"] is True and md["fetch"] == "full"
    assert md["rows_removed"] == 4
    assert md["status_changed"] == 5
    assert md["status_counts"].get("survey-failed") == 5
    assert_day_equals_truth(lake_root, control, DAY)
    keys = set(
        pq.read_table(day_file(lake_root, DAY), columns=["number_customergauge"])
        .column(0)
        .to_pylist()
    )
    assert not keys & set(responded)


def test_a_settled_day_is_revisited_whole_while_open_then_closed_and_left_alone(
    instance, resources, control: SimulatorControl, lake_root, monkeypatch
):
    """After the settle, an answer or a bounce to an old invitation still reaches the day:
    it is fetched whole again once its last whole fetch is 20 h old, and after the answer
    window one last time, final."""
    now = dt.datetime.now(dt.timezone.utc)
    monkeypatch.setattr(clock, "utc_now", lambda: now)
    run(instance, resources, OLD)
    md = latest_metadata(instance, DAY)
    assert (md["mode"], md["stage"], md["closed"]) == ("settle", "settled", False)
    assert dt.datetime.fromisoformat(md["whole_fetch_at"]) == now.replace(microsecond=0)

    keys = sorted(truth_rows(control, DAY))
    answered = control.respond_records(keys[:3])
    bounced = control.fail_records(keys[3:5])
    now += dt.timedelta(hours=19)
    run(instance, resources, OLD)
    assert latest_metadata(instance, DAY) == md  # fetched whole 19 h ago: skipped
    assert set(answered) <= {
        r["number_customergauge"] for r in pq.read_table(day_file(lake_root, DAY)).to_pylist()
    }
    now += dt.timedelta(hours=1, minutes=1)
    run(instance, resources, OLD)
    md = latest_metadata(instance, DAY)
    assert (md["mode"], md["fetch"], md["stage"]) == ("revisit", "full", "settled")
    assert md["rows_removed"] == 3 and md["status_changed"] == 2 and len(bounced) == 2
    assert md["longest_revisit_gap_hours"] == pytest.approx(20.02, abs=0.01)
    assert_day_equals_truth(lake_root, control, DAY)

    now += dt.timedelta(minutes=5)
    control.respond_records(keys[5:6])
    run(instance, resources, CLOSING)
    md = latest_metadata(instance, DAY)
    assert (md["mode"], md["stage"], md["closed"]) == ("close", "closed", True)
    assert_day_equals_truth(lake_root, control, DAY)
    control.respond_records(keys[6:7])  # later than the window: the day is final
    control.reset_stats()
    now += dt.timedelta(days=3)
    run(instance, resources, CLOSING)
    assert control.stats()["api_requests"] == 0
    assert keys[6] in {
        r["number_customergauge"] for r in pq.read_table(day_file(lake_root, DAY)).to_pylist()
    }


def test_full_refresh_of_a_young_day_is_not_settled(instance, resources, control, lake_root):
    run(instance, resources)
    control.fail_records(day=DAY, count=2)
    run(instance, resources, full_refresh=True)
    md = latest_metadata(instance, DAY)
    assert md["mode"] == "full-refresh" and md["fetch"] == "full" and md["settled"] is False
    assert md["status_changed"] == 2
    assert_day_equals_truth(lake_root, control, DAY)


def test_single_run_backfill_writes_every_day_with_its_own_cursor(
    instance, resources, control, lake_root
):
    result = run(instance, resources, range_=(SIM_START, SIM_END))
    assert result.success
    assert len({r.dagster_run.run_id for r in instance.get_run_records()}) == 1
    cursors = []
    for offset in range((SIM_END - SIM_START).days + 1):
        day = SIM_START + dt.timedelta(days=offset)
        rows = assert_day_equals_truth(lake_root, control, day)
        md = latest_metadata(instance, day)
        assert md["dagster/row_count"] == rows
        assert md["cursor"] == file_cursor(lake_root, day)
        cursors.append(md["cursor"])
    assert len(set(cursors)) == len(cursors)


def test_a_failing_day_does_not_stop_the_others(instance, resources, control, lake_root):
    # The first request of the run (the first day's first page) breaks the contract.
    control.inject({"kind": "bad_data"})
    result = run(
        instance,
        resources,
        range_=(SIM_START, SIM_START + dt.timedelta(days=2)),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("customergauge__non_responses")
    assert SIM_START.isoformat() in str(failure.error.message if failure.error else failure)
    assert not day_file(lake_root, SIM_START).exists()
    for offset in (1, 2):
        day = SIM_START + dt.timedelta(days=offset)
        assert_day_equals_truth(lake_root, control, day)
        assert latest_metadata(instance, day)["cursor"] == file_cursor(lake_root, day)
    # A re-run of the range is correct.
    assert run(instance, resources, range_=(SIM_START, SIM_START + dt.timedelta(days=2))).success
    assert_day_equals_truth(lake_root, control, SIM_START)


def test_crash_after_write_before_metadata_is_adopted_by_the_next_run(
    instance, resources, control, lake_root
):
    run(instance, resources)
    control.add_records(DAY, 5)
    # A run that wrote its file and died before Dagster recorded the materialization.
    options = SyncOptions("date_sent", "UTC", YOUNG.settle_after_hours)
    stored_cursor = latest_metadata(instance, DAY)["cursor"]
    lake = ParquetLake(str(lake_root))
    plan = plan_day(
        DAY,
        now=dt.datetime.now(dt.timezone.utc),
        options=options,
        full_refresh=False,
        stored=None,
        file_state=None,
    )
    with resources["customergauge"].get_client() as client:
        sync_day(client, lake, NON_RESPONSES, DAY, plan, options)
    assert file_cursor(lake_root, DAY) != stored_cursor
    control.add_records(DAY, 2)

    run(instance, resources)

    md = latest_metadata(instance, DAY)
    # The file is the truth: its cursor is adopted and only what came after it is fetched
    # (one page with the 2 new records, one empty page), instead of the whole day again.
    assert md["fetch"] == "incremental" and "adopting the file" in md["reason"]
    assert md["api_requests"] == 2 and md["rows_added"] == 2
    assert_day_equals_truth(lake_root, control, DAY)
    staging = lake_root / "customergauge" / "_staging"
    assert [p for p in staging.rglob("*") if p.is_file()] == []
    files = list((lake_root / "customergauge" / "non_responses").rglob("*"))
    assert [f for f in files if f.is_file()] == [day_file(lake_root, DAY)]


def test_a_deleted_file_makes_the_next_run_fetch_the_day_whole(
    instance, resources, control, lake_root
):
    run(instance, resources)
    day_file(lake_root, DAY).unlink()
    run(instance, resources)
    md = latest_metadata(instance, DAY)
    assert md["fetch"] == "full" and "missing" in md["reason"]
    assert_day_equals_truth(lake_root, control, DAY)


def test_a_changed_date_field_makes_the_next_run_fetch_the_day_whole(
    instance, resources, control, lake_root
):
    run(instance, resources)
    by_creation = LoadSettings(
        start_date=SIM_START, settle_after_hours=8784, date_field="date_creation"
    )
    run(instance, resources, by_creation)
    md = latest_metadata(instance, DAY)
    assert md["fetch"] == "full" and "date field" in md["reason"]
    truth = truth_rows(control, DAY, field="date_creation")
    table = pq.read_table(day_file(lake_root, DAY))
    assert set(table.column("number_customergauge").to_pylist()) == set(truth)


def test_an_empty_day_writes_a_valid_empty_partition_and_a_cursor(instance, resources, lake_root):
    empty_day = SIM_END + dt.timedelta(days=3)
    run(instance, resources, day=empty_day)
    table = pq.read_table(day_file(lake_root, empty_day))
    assert table.num_rows == 0
    assert table.schema.field("date_sent").type == "timestamp[us]"
    md = latest_metadata(instance, empty_day)
    assert md["dagster/row_count"] == 0 and isinstance(md["cursor"], int)


def test_a_record_outside_the_day_is_not_written_and_fails_the_warning_check(
    instance, resources, control, lake_root
):
    control.inject({"kind": "out_of_day"})
    result = run(instance, resources)
    md = latest_metadata(instance, DAY)
    assert md["out_of_day"] == 1 and len(md["out_of_day_keys"]) == 1
    assert md["out_of_day_keys"][0] not in truth_rows(control, DAY)
    assert_day_equals_truth(lake_root, control, DAY)
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}[RECORDS_IN_DAY]
    assert check.passed is False and check.severity.value == "WARN"


@pytest.mark.parametrize("reader", ["polars", "duckdb"])
def test_the_whole_lake_reads_back_in_one_query(instance, resources, control, lake_root, reader):
    run(instance, resources, range_=(SIM_START, SIM_END))
    total = sum(len(truth_rows(control, SIM_START + dt.timedelta(days=i))) for i in range(5))
    pattern = str(lake_root / "customergauge" / "non_responses" / "**" / "*.parquet")
    if reader == "polars":
        frame = pl.scan_parquet(pattern, hive_partitioning=True).collect()
        per_day = frame.group_by("date").len().sort("date")
        assert frame.height == total
        assert per_day["date"].to_list() == [SIM_START + dt.timedelta(days=i) for i in range(5)]
    else:
        count, days = duckdb.sql(
            f"select count(*), count(distinct date) from read_parquet('{pattern}', hive_partitioning = true)"
        ).fetchall()[0]
        assert (count, days) == (total, 5)
