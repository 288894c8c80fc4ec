"""Which days are in flight, from Dagster's run status alone: a run whose worker died holds
its days only until Dagster's run monitoring fails it, on an instance with the shipped
config (.dagster_home/dagster.yaml)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import (
    MAX_RUNTIME_SECONDS_TAG,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    build_schedule_context,
    instance_for_test,
)
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.test_utils import create_run_for_test
from dagster._daemon.monitoring import run_monitoring

from cg_assets.components.project import build_definitions
from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for
from cg_assets.defs.automation import (
    AUTOMATION_MAX_RUNTIME,
    DAYS_TAG,
    SYNC_JOB_NAME,
    InFlight,
    in_flight,
)
from cg_assets.defs.schedules import SCHEDULE_NAME
from cg_assets.defs.sensors import evaluate_settle_tick
from cg_assets.settings import LoadSettings

ROOT = Path(__file__).resolve().parents[2]
KEY = asset_key_for(NON_RESPONSES)
KEYS = [KEY]
UTC = dt.timezone.utc
DAY = dt.date(2026, 9, 1)
SETTINGS = LoadSettings(start_date=DAY, settle_after_hours=48, settle_max_per_tick=3)
DUE = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0), tzinfo=UTC) + dt.timedelta(
    hours=49
)


@pytest.fixture
def shipped(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A real instance on disk with the instance config `make run` ships."""
    config = yaml.safe_load((ROOT / ".dagster_home" / "dagster.yaml").read_text())
    home = tmp_path / "home"
    home.mkdir()
    with instance_for_test(temp_dir=str(home), overrides=config) as instance:
        yield instance


def record(instance: DagsterInstance, day: dt.date, *, settled: bool) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=KEY,
            partition=day.isoformat(),
            metadata={"settled": settled, "closed": settled, "cursor": 1},
        )
    )


def requested(instance: DagsterInstance, now: dt.datetime) -> tuple[list[str], list[str]]:
    tick = evaluate_settle_tick(instance, KEYS, SETTINGS, now, None)
    return [r.partition_key for r in tick.run_requests], tick.notes


def started(instance: DagsterInstance, tags: dict[str, str], **kwargs: object) -> str:
    """A run whose worker started (Dagster recorded its start), and then went silent."""
    run = create_run_for_test(instance, tags=tags, status=DagsterRunStatus.NOT_STARTED, **kwargs)
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name), run_id=run.run_id
    )
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    return run.run_id


def monitor(instance: DagsterInstance, run_id: str, monkeypatch, after: dt.timedelta) -> None:
    """One pass of Dagster's run monitoring over the run, `after` its start: what the
    daemon's monitoring loop does every poll interval (the default launcher cannot check a
    worker, so only the maximum runtime can end it)."""
    monkeypatch.setattr(
        run_monitoring, "get_current_timestamp", lambda: time.time() + after.total_seconds()
    )
    run_monitoring.monitor_started_run(
        instance, None, instance.get_run_record_by_id(run_id), logging.getLogger("monitoring")
    )


def test_the_shipped_instance_runs_run_monitoring(shipped):
    assert shipped.run_monitoring_enabled
    # every other run (a backfill from the UI) is bounded too, more loosely
    assert shipped.run_monitoring_max_runtime_seconds > AUTOMATION_MAX_RUNTIME.total_seconds()


def test_a_run_whose_worker_died_holds_its_day_until_run_monitoring_fails_it(shipped, monkeypatch):
    """A settle run SIGKILLed after its start stays STARTED and logs nothing more; the
    sensor trusts its status, so the day waits, however long the silence, until Dagster's
    run monitoring fails the run at its maximum runtime. Then the day is asked for again."""
    record(shipped, DAY, settled=False)
    tick = evaluate_settle_tick(shipped, KEYS, SETTINGS, DUE, None)
    first = [r for r in tick.run_requests if r.partition_key == DAY.isoformat()]
    assert len(first) == 1  # (with heals of the never-synced days after it)
    tags = dict(first[0].tags)
    assert tags[MAX_RUNTIME_SECONDS_TAG] == str(int(AUTOMATION_MAX_RUNTIME.total_seconds()))
    assert tags[DAYS_TAG] == DAY.isoformat()
    run_id = started(shipped, tags, job_name=SYNC_JOB_NAME)

    days, notes = requested(shipped, DUE + dt.timedelta(hours=5))
    assert DAY.isoformat() not in days and any(f"{DAY}: " in n for n in notes)

    monitor(shipped, run_id, monkeypatch, AUTOMATION_MAX_RUNTIME - dt.timedelta(minutes=1))
    assert shipped.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    monitor(shipped, run_id, monkeypatch, AUTOMATION_MAX_RUNTIME + dt.timedelta(minutes=1))
    assert shipped.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE

    days, _ = requested(shipped, DUE + dt.timedelta(hours=5))
    assert DAY.isoformat() in days  # its second attempt


def test_a_run_of_these_tables_launched_elsewhere_holds_every_day_until_it_ends(shipped):
    """A backfill or a click in the UI: its days are only in Dagster's internal tags, so the
    automation waits for it (the pool would queue its runs behind it anyway)."""
    record(shipped, DAY, settled=False)
    run_id = started(shipped, {}, job_name="__ASSET_JOB", asset_selection=frozenset(KEYS))
    days, notes = requested(shipped, DUE)
    assert days == [] and any(run_id in n for n in notes)

    defs = build_definitions(LoadSettings(start_date=DAY))
    schedule = defs.get_schedule_def(SCHEDULE_NAME)
    data = schedule.evaluate_tick(
        build_schedule_context(
            instance=shipped,
            scheduled_execution_time=DUE,
            repository_def=defs.get_repository_def(),
        )
    )
    assert not data.run_requests and run_id in (data.skip_message or "")

    shipped.report_run_failed(shipped.get_run_by_id(run_id))
    assert DAY.isoformat() in requested(shipped, DUE)[0]


def test_finished_runs_and_runs_of_other_assets_hold_nothing(shipped):
    record(shipped, DAY, settled=False)
    other = asset_key_for(NON_RESPONSES).with_prefix("elsewhere")
    started(shipped, {}, job_name="__ASSET_JOB", asset_selection=frozenset([other]))
    started(shipped, {}, job_name="their_op_job")
    done = started(shipped, {DAYS_TAG: DAY.isoformat()}, job_name=SYNC_JOB_NAME)
    shipped.report_run_failed(shipped.get_run_by_id(done))
    assert in_flight(shipped, KEYS) == InFlight(frozenset())
    assert DAY.isoformat() in requested(shipped, DUE)[0]


def test_a_range_run_of_the_sensor_holds_exactly_its_days(shipped):
    last = DAY + dt.timedelta(days=30)
    started(shipped, {DAYS_TAG: f"{DAY}..{last}"}, job_name=SYNC_JOB_NAME)
    busy = in_flight(shipped, KEYS)
    assert busy.holds(DAY) and busy.holds(last) and busy.holds(DAY + dt.timedelta(days=9))
    assert not busy.holds(last + dt.timedelta(days=1))
    assert not busy.holds(DAY - dt.timedelta(days=1))
