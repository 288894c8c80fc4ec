"""The non-responses asset with CG_LAKE_ROOT=s3://...: a partition, a catch-up, a settle and a
range backfill against the simulator's truth, a reader listing the bucket at every change,
and the whole lake read back over S3 with polars and with DuckDB."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pyarrow.dataset as pads
import pytest

from cg_assets.defs.resources import LakeResource
from cg_assets.lake.origin import ORIGIN_FILE
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_END, SIM_START, make_resource, with_lake_io_manager
from cg_assets_tests.test_scale_out.s3_checks import (
    TABLE,
    S3Calls,
    assert_lake_day_equals_truth,
    check_reader_view,
    latest_metadata,
    materialize_days,
)
from cg_assets_tests.truth import truth_rows
from cg_simulator import running_simulator

DAY = dt.date(2026, 10, 2)
DAYS = [SIM_START + dt.timedelta(days=i) for i in range((SIM_END - SIM_START).days + 1)]
# The fixed test days are weeks old: a lag of a year keeps them young (catch-up from the
# cursor), a lag of 0 makes them due for settling.
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0, answer_window_days=366)


def run(instance, resources, settings=YOUNG, **kwargs):
    kwargs.setdefault("day", None if "range_" in kwargs else DAY)
    return materialize_days(instance, resources, settings, **kwargs)


@pytest.fixture
def s3_resources(cg_resource, s3):
    return with_lake_io_manager({"customergauge": cg_resource, "lake": LakeResource(root=s3.root)})


@pytest.fixture
def reader_checks(s3, monkeypatch):
    """Just before the S3 server stores any object, a reader lists the table's prefix and
    reads every object in it (from another connection, while the upload is in flight)."""
    calls = S3Calls(monkeypatch)
    seen: list[int] = []

    def look(bucket_name, key_name, *args, **kwargs):
        if "/_locks/" not in key_name:  # writer leases are not data
            seen.append(check_reader_view(s3))

    with calls.hook("put_object", look):
        yield calls, seen


def data_puts(calls) -> int:
    """PUTs of the lake's files, leaving out the writer leases (a lease PUT per day sync)."""
    return sum(1 for op, key in calls.keys if op == "put_object" and "/_locks/" not in key)


def test_a_partition_a_catch_up_and_a_settle_on_s3_equal_the_truth(
    instance, s3_resources, control, s3, reader_checks
):
    calls, seen = reader_checks
    lake = s3_resources["lake"].get_lake()

    run(instance, s3_resources)
    rows = assert_lake_day_equals_truth(lake, control, DAY)
    md = latest_metadata(instance, DAY)
    assert md["fetch"] == "full" and md["dagster/row_count"] == rows
    assert md["path"] == f"s3://{s3.name}/lake/customergauge/{TABLE}/date={DAY}/data.parquet"
    assert md["cursor"] == lake.day_state(TABLE, DAY).cursor

    first_cursor = md["cursor"]
    control.add_records(DAY, 7)
    control.reset_stats()
    run(instance, s3_resources)
    stats = control.stats()
    assert stats["records_served"] == 7 and stats["api_requests"] == 2
    assert str(first_cursor) in str(stats["requests"][0]["query"]["cursor"])
    md = latest_metadata(instance, DAY)
    assert md["fetch"] == "incremental" and md["rows_added"] == 7
    assert md["cursor"] == lake.day_state(TABLE, DAY).cursor != first_cursor
    assert assert_lake_day_equals_truth(lake, control, DAY) == rows + 7

    keys = sorted(truth_rows(control, DAY))
    control.fail_records(keys[:3])
    control.respond_records(keys[3:5])
    run(instance, s3_resources, OLD)
    md = latest_metadata(instance, DAY)
    assert md["mode"] == "settle" and md["settled"] is True
    assert md["rows_removed"] == 2 and md["status_changed"] == 3
    assert assert_lake_day_equals_truth(lake, control, DAY) == rows + 5
    assert lake.day_state(TABLE, DAY).settled

    # every change of the day was one PUT (the first run also PUT the lake's _origin.json),
    # and a reader looked before each one
    assert data_puts(calls) == 1 + 3 and calls.counts["create_multipart_upload"] == 0
    assert seen == [0, 0, rows, rows + 7]
    assert s3.keys() == [
        f"lake/customergauge/{ORIGIN_FILE}",
        f"lake/customergauge/{TABLE}/date={DAY}/data.parquet",
    ]


def test_a_range_backfill_on_s3_and_the_lake_read_back_over_s3(
    instance, s3_resources, control, s3, reader_checks
):
    calls, seen = reader_checks
    result = run(instance, s3_resources, range_=(SIM_START, SIM_END))
    assert result.success
    lake = s3_resources["lake"].get_lake()
    assert lake.days(TABLE) == DAYS
    per_day = {}
    for day in DAYS:
        per_day[day] = assert_lake_day_equals_truth(lake, control, day)
        md = latest_metadata(instance, day)
        assert md["dagster/row_count"] == per_day[day]
        assert md["cursor"] == lake.day_state(TABLE, day).cursor
    total = sum(per_day.values())
    assert data_puts(calls) == 1 + len(DAYS)  # and the lake's _origin.json first
    # what a reader saw before each day's PUT: the days already written, whole
    assert seen == [0] + [sum(per_day[d] for d in DAYS[:i]) for i in range(len(DAYS))]

    pattern = f"s3://{s3.name}/lake/customergauge/{TABLE}/**/*.parquet"
    frame = pl.scan_parquet(
        pattern, hive_partitioning=True, storage_options=s3.polars_options()
    ).collect()
    assert frame.height == total
    assert frame["number_customergauge"].n_unique() == total
    counts = frame.group_by("date").len().sort("date")
    assert counts["date"].to_list() == DAYS
    assert counts["len"].to_list() == [per_day[d] for d in DAYS]

    # DuckDB scans the lake through pyarrow's S3 filesystem (the same one the asset writes with)
    dataset = pads.dataset(
        f"{s3.name}/lake/customergauge/{TABLE}",
        filesystem=lake.fs,
        format="parquet",
        partitioning="hive",
    )
    con = duckdb.connect()
    con.register("non_responses", dataset)
    count, days, keys = con.sql(
        "select count(*), count(distinct date), count(distinct number_customergauge) "
        "from non_responses"
    ).fetchall()[0]
    assert (count, days, keys) == (total, len(DAYS), total)


def test_an_s3_lake_written_from_another_api_refuses_the_run(instance, s3_resources, s3):
    from dagster import instance_for_test, materialize

    from cg_assets.customergauge.endpoints import NON_RESPONSES
    from cg_assets.defs.assets import build_sync_asset

    assert run(instance, s3_resources).success
    day_key = f"lake/customergauge/{TABLE}/date={DAY}/data.parquet"
    before = s3.get(day_key)
    with (
        running_simulator(records=50, start=SIM_START, end=SIM_END, seed=3) as other_api,
        instance_for_test() as fresh,
    ):
        result = materialize(
            [build_sync_asset(NON_RESPONSES, YOUNG)],
            partition_key=DAY.isoformat(),
            instance=fresh,
            resources={**s3_resources, "customergauge": make_resource(other_api)},
            raise_on_error=False,
        )
    assert not result.success
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    text = "\n".join(str(e.cause or e) for e in errors if e is not None)
    assert f"CG_LAKE_ROOT='{s3.root}' was written from another CustomerGauge API" in text
    assert s3.get(day_key) == before
