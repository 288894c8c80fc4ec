"""A Postgres-backed instance, loaded from deploy/dagster.yaml, with a real PostgreSQL on
loopback: the production config itself, the cursor round trip (catch-up after catch-up on
today's partition, lake on S3) and the settle sensor reading `settled` back."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from dagster import SensorResult, SkipReason, build_sensor_context, materialize

from cg_assets.components.project import build_definitions
from cg_assets.customergauge.endpoints import ENDPOINTS, NON_RESPONSES
from cg_assets.defs import sensors
from cg_assets.defs.assets import (
    LAKE_POOL,
    asset_key_for,
    build_sync_asset,
    stored_state,
)
from cg_assets.defs.automation import AUTOMATION_MAX_RUNTIME, AUTOMATION_TAG, DAYS_TAG
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.sensors import SENSOR_NAME, evaluate_settle_tick
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, make_resource, with_lake_io_manager
from cg_assets_tests.test_scale_out.s3_checks import (
    TABLE,
    assert_lake_day_equals_truth,
    latest_metadata,
    materialize_days,
)
from cg_simulator import SimulatorControl, running_simulator

KEY = asset_key_for(NON_RESPONSES)
UTC = dt.timezone.utc


def test_the_production_instance_config_uses_postgres_a_run_queue_and_the_lake_limits(
    pg_instance,
):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(pg_instance.run_coordinator, QueuedRunCoordinator)

    config = pg_instance.get_concurrency_config()
    # the pool is the one thing that queues lake runs: no run-tag limits beside it
    assert not config.run_queue_config.tag_concurrency_limits
    assert config.pool_config.default_pool_limit == 1
    assert config.pool_config.pool_granularity.value == "run"
    assert LAKE_POOL == "customergauge_lake"  # the pool the default limit applies to
    # a run whose worker died is failed by Dagster, at the latest at its maximum runtime
    assert pg_instance.run_monitoring_enabled
    assert pg_instance.run_monitoring_max_runtime_seconds > AUTOMATION_MAX_RUNTIME.total_seconds()


@pytest.fixture
def today_simulator():
    """A simulator whose data runs up to today, for today's (still open) partition."""
    today = dt.datetime.now(UTC).date()
    with running_simulator(records=240, start=today - dt.timedelta(days=1), end=today) as sim:
        yield sim, today


def test_catch_up_after_catch_up_on_today_fetches_only_new_records(
    pg_instance, s3, today_simulator
):
    """The production shape: cursors in Postgres, the lake on S3, today's partition."""
    sim, today = today_simulator
    settings = LoadSettings(start_date=today - dt.timedelta(days=1), settle_after_hours=48)
    resources = with_lake_io_manager(
        {"customergauge": make_resource(sim), "lake": LakeResource(root=s3.root)}
    )
    lake = resources["lake"].get_lake()
    with SimulatorControl(sim.url) as control:
        materialize_days(pg_instance, resources, settings, day=today)
        first = latest_metadata(pg_instance, today)
        assert first["fetch"] == "full" and first["settled"] is False
        rows = assert_lake_day_equals_truth(lake, control, today)
        cursors = [first["cursor"]]
        for added in (5, 3):
            control.add_records(today, added)
            control.add_records(today - dt.timedelta(days=1), 2)  # not this partition's news
            control.reset_stats()
            materialize_days(pg_instance, resources, settings, day=today)
            stats = control.stats()
            assert stats["records_served"] == added and stats["api_requests"] == 2
            sent = stats["requests"][0]["query"]["cursor"]
            assert str(cursors[-1]) in str(sent), f"sent cursor {sent}, stored {cursors[-1]}"
            md = latest_metadata(pg_instance, today)
            assert md["mode"] == "catch-up" and md["fetch"] == "incremental"
            assert md["rows_added"] == added and md["settled"] is False
            rows += added
            assert assert_lake_day_equals_truth(lake, control, today) == rows
            cursors.append(md["cursor"])
        assert len(set(cursors)) == 3
        # what the next run will read back from Postgres, and the file's own footer, agree
        stored = stored_state(pg_instance, KEY, today.isoformat())
        assert stored.cursor == cursors[-1] == lake.day_state(TABLE, today).cursor


@pytest.mark.filterwarnings("ignore:Starting in dagster 1.11, get_sensor_def")
def test_the_settle_sensor_reads_settled_from_postgres(
    pg_instance, simulator, cg_resource, lake_root, monkeypatch
):
    resources = with_lake_io_manager(
        {"customergauge": cg_resource, "lake": LakeResource(root=str(lake_root))}
    )
    young = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
    settings = LoadSettings(start_date=SIM_START, settle_after_hours=48)
    # the sync job writes a day of every table in one run
    materialize(
        [build_sync_asset(e, young) for e in ENDPOINTS],
        partition_key=SIM_START.isoformat(),
        instance=pg_instance,
        resources=resources,
    )
    assert latest_metadata(pg_instance, SIM_START)["settled"] is False

    defs = build_definitions(settings)
    sensor = defs.get_sensor_def(SENSOR_NAME)
    due = dt.datetime.combine(SIM_START + dt.timedelta(days=1), dt.time(0), tzinfo=UTC)
    monkeypatch.setattr(sensors, "now_in", lambda s: due + dt.timedelta(hours=49))
    result = sensor(build_sensor_context(instance=pg_instance, definitions=defs))
    assert isinstance(result, SensorResult)
    settle = [r for r in result.run_requests if r.tags[AUTOMATION_TAG] == "settle"]
    assert [r.partition_key for r in settle] == [SIM_START.isoformat()]
    assert settle[0].tags[DAYS_TAG] == SIM_START.isoformat()

    materialize(  # the settle run
        [build_sync_asset(e, settings) for e in ENDPOINTS],
        partition_key=SIM_START.isoformat(),
        instance=pg_instance,
        resources=resources,
    )
    assert latest_metadata(pg_instance, SIM_START)["settled"] is True
    assert stored_state(pg_instance, KEY, SIM_START.isoformat()).settled is True

    again = sensor(
        build_sensor_context(instance=pg_instance, definitions=defs, cursor=result.cursor)
    )
    if isinstance(again, SensorResult):
        assert SIM_START.isoformat() not in [r.partition_key for r in again.run_requests]
    else:
        assert isinstance(again, SkipReason)
    tick = evaluate_settle_tick(pg_instance, [KEY], settings, due + dt.timedelta(hours=50), None)
    assert SIM_START.isoformat() not in [r.partition_key for r in tick.run_requests]
    assert json.loads(tick.cursor)["closed_through"] >= SIM_START.isoformat()
