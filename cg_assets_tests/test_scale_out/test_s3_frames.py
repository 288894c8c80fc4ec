"""The funnel and the lake IO manager with the lake on S3 (a local S3 server)."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
from dagster import materialize

from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.defs.assets import build_sync_asset
from cg_assets.defs.funnel import FUNNEL_TABLE, build_funnel_asset
from cg_assets.defs.io_managers import LAKE_IO_MANAGER_KEY, LakeFrameIOManager, scan_days
from cg_assets.defs.resources import LakeResource
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.truth import response_truth_rows, truth_rows

DAY = dt.date(2026, 10, 2)
SETTINGS = LoadSettings(start_date=SIM_START, settle_after_hours=8784)


def test_the_funnel_reads_and_writes_days_on_s3(instance, cg_resource, control, s3):
    control.respond_records(day=DAY, count=8)
    resources = {
        "customergauge": cg_resource,
        "lake": LakeResource(root=s3.root),  # the lake on S3, as in a deployment
        LAKE_IO_MANAGER_KEY: LakeFrameIOManager(root=s3.root),
    }
    syncs = [build_sync_asset(e, SETTINGS) for e in ENDPOINTS]
    funnel = build_funnel_asset(SETTINGS)
    # the sync run, then the funnel's own run, as its automation sensor launches it
    for selection in (syncs, [funnel]):
        assert materialize(
            [*syncs, funnel],
            selection=[a.key for a in selection],
            partition_key=DAY.isoformat(),
            instance=instance,
            resources=resources,
        ).success
    lake = ParquetLake(s3.root)
    with lake.fs.open_input_file(lake.day_path(FUNNEL_TABLE, DAY)) as handle:
        row = pq.read_table(handle).to_pylist()[0]
    assert row["responded"] == len(response_truth_rows(control, DAY)) == 8
    assert row["sent"] == len(truth_rows(control, DAY)) + 8
    # a range through the IO manager's scan, a never-synced day included
    frame = scan_days(lake, "responses", [DAY - dt.timedelta(days=1), DAY]).collect()
    assert frame.height == 8 and frame["date"].unique().to_list() == [DAY]
