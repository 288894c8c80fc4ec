"""The settle sensor and the hourly schedule on real instances, with time controlled."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    materialize,
)
from dagster._core.test_utils import create_run_for_test

from cg_assets.components.project import build_definitions
from cg_assets.customergauge.endpoints import ENDPOINTS, NON_RESPONSES
from cg_assets.defs import sensors
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.automation import (
    DAYS_TAG,
    SETTLE_OF_TAG,
    SYNC_JOB_NAME,
    automation_tags,
    days_of,
    range_request_tags,
)
from cg_assets.defs.day_status import unsettled_days
from cg_assets.defs.schedules import SCHEDULE_NAME
from cg_assets.defs.sensors import SENSOR_NAME, evaluate_settle_tick
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START

KEY = asset_key_for(NON_RESPONSES)
KEYS = [KEY]
UTC = dt.timezone.utc
START = dt.date(2026, 9, 1)
SETTINGS = LoadSettings(start_date=START, settle_after_hours=48, settle_max_per_tick=3)


def end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=UTC)


def record(
    instance: DagsterInstance,
    day: dt.date,
    *,
    settled: bool,
    closed: bool | None = None,
    whole_fetch_at: dt.datetime | None = None,
) -> None:
    """A materialization as a sync records it; `closed` defaults to `settled` (a day done)."""
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=KEY,
            partition=day.isoformat(),
            metadata={
                "settled": settled,
                "closed": settled if closed is None else closed,
                "whole_fetch_at": whole_fetch_at.isoformat() if whole_fetch_at else "",
                "cursor": 1,
            },
        )
    )


def requested(tick, kind: str = "settle") -> list[str]:
    """Partitions requested for `kind` (settle or heal)."""
    return [r.partition_key for r in tick.run_requests if r.tags["cg_assets/automation"] == kind]


def test_a_day_synced_before_settling_is_requested_once_after_the_lag(instance):
    day = dt.date(2026, 9, 10)
    for d in range((day - START).days + 1):  # history settled up to the day before
        record(instance, START + dt.timedelta(days=d), settled=START + dt.timedelta(days=d) < day)

    early = evaluate_settle_tick(
        instance, KEYS, SETTINGS, end_of(day) + dt.timedelta(hours=47), None
    )
    assert day.isoformat() not in requested(early)

    due = end_of(day) + dt.timedelta(hours=49)
    first = evaluate_settle_tick(instance, KEYS, SETTINGS, due, None)
    assert requested(first) == [day.isoformat()]
    assert first.run_requests[0].tags["cg_assets/automation"] == "settle"
    # the next tick asks again under the same run key, which Dagster runs only once
    again = evaluate_settle_tick(
        instance, KEYS, SETTINGS, due + dt.timedelta(minutes=5), first.cursor
    )
    assert again.run_requests[0].run_key == first.run_requests[0].run_key
    # the settle run ran: a settled materialization; never requested again
    record(instance, day, settled=True)
    later = evaluate_settle_tick(instance, KEYS, SETTINGS, due + dt.timedelta(days=3), again.cursor)
    assert day.isoformat() not in requested(later)
    assert json.loads(later.cursor)["closed_through"] >= day.isoformat()


def test_the_watermark_keeps_ticks_cheap(instance):
    for d in range(30):
        record(instance, START + dt.timedelta(days=d), settled=True)
    now = end_of(START + dt.timedelta(days=29)) + dt.timedelta(hours=49)
    tick = evaluate_settle_tick(instance, KEYS, SETTINGS, now, None)
    assert requested(tick) == []
    watermark = dt.date.fromisoformat(json.loads(tick.cursor)["closed_through"])
    assert watermark == START + dt.timedelta(days=29)
    # a day recorded unsettled behind the watermark is not looked at again: the tick reads
    # only days after the watermark
    record(instance, START + dt.timedelta(days=3), settled=False)
    assert requested(evaluate_settle_tick(instance, KEYS, SETTINGS, now, tick.cursor)) == []


def test_the_per_tick_cap_holds_and_the_oldest_go_first(instance):
    days = [START + dt.timedelta(days=d) for d in range(6)]
    for day in days:
        record(instance, day, settled=False)
    now = end_of(days[-1]) + dt.timedelta(hours=50)
    tick = evaluate_settle_tick(instance, KEYS, SETTINGS, now, None)
    assert requested(tick) == [d.isoformat() for d in days[:3]]
    assert any("CG_SETTLE_MAX_PER_TICK" in note for note in tick.notes)


def test_a_hole_of_any_age_is_healed_days_before_the_first_synced_day_are_not(instance):
    """An outage longer than any window: 7 never-synced days, 11 to 17 days old, between
    synced days. Days before the first synced day are the user's initial load."""
    today = dt.date(2026, 10, 30)
    now = dt.datetime.combine(today, dt.time(12), tzinfo=UTC)
    settings = LoadSettings(start_date=dt.date(2026, 9, 1), settle_max_per_tick=20)
    ago = {n: today - dt.timedelta(days=n) for n in range(40)}
    synced = [ago[n] for n in range(18, 23)] + [ago[n] for n in range(0, 11)]
    for day in synced:
        record(instance, day, settled=day <= today - dt.timedelta(days=3))
    tick = evaluate_settle_tick(instance, KEYS, settings, now, None)
    hole = {ago[n].isoformat() for n in range(11, 18)}
    assert set(requested(tick, "heal")) == hole
    assert requested(tick, "settle") == []
    # the hole check names the same days (they are past the lag and not settled)
    assert {d.isoformat() for d in unsettled_days(instance, KEYS, settings, now)} == hole


def test_a_day_failing_for_months_is_retried_forever_and_blocks_no_other_day(instance):
    """Run keys never repeat however many attempts failed (Dagster never runs a run key
    twice), the back-off is capped, and the days after the failing one still settle even
    when they lie beyond one tick's scan window."""
    broken = START
    settings = LoadSettings(start_date=START, settle_after_hours=48, settle_max_per_tick=100)
    days = [START + dt.timedelta(days=d) for d in range(sensors.SCAN_DAYS_PER_TICK + 20)]
    for day in days:
        record(instance, day, settled=day != broken)
    superseded = f"{broken.isoformat()}:"
    first = evaluate_settle_tick(
        instance, KEYS, settings, end_of(days[-1]) + dt.timedelta(days=3), None
    )
    request = next(r for r in first.run_requests if r.partition_key == broken.isoformat())
    for _ in range(60):  # two months of failed attempts, each after the capped back-off
        run = create_run_for_test(
            instance, job_name=SYNC_JOB_NAME, tags=request.tags, status=DagsterRunStatus.STARTED
        )
        instance.report_run_failed(run)
    keys = {
        r.dagster_run.tags[SETTLE_OF_TAG]
        for r in instance.get_run_records()
        if r.dagster_run.tags.get(SETTLE_OF_TAG, "").startswith(superseded)
    }
    assert len(keys) == 1  # the same superseded materialization throughout
    # the back-off counts from when the sensor asked for the attempt
    failed_at = dt.datetime.fromisoformat(request.tags[sensors.REQUESTED_AT_TAG])
    waiting = evaluate_settle_tick(
        instance, KEYS, settings, failed_at + dt.timedelta(hours=1), None
    )
    assert broken.isoformat() not in requested(waiting)
    assert any(f"{broken}: settle failed 60 time(s)" in n for n in waiting.notes)
    retry = evaluate_settle_tick(
        instance, KEYS, settings, failed_at + dt.timedelta(hours=6, minutes=1), None
    )
    again = [r for r in retry.run_requests if r.partition_key == broken.isoformat()]
    assert [r.run_key.rsplit(":", 1)[1] for r in again] == ["attempt-61"]

    # a day beyond the first scan window, unsettled: found by a later tick all the same
    late = days[-1]
    record(instance, late, settled=False)
    now = failed_at + dt.timedelta(hours=6, minutes=1)
    cursor = None
    seen: set[str] = set()
    for _ in range(3):
        tick = evaluate_settle_tick(instance, KEYS, settings, now, cursor)
        seen |= set(requested(tick))
        cursor = tick.cursor
    assert late.isoformat() in seen
    assert "closed_through" not in json.loads(cursor)  # the watermark waits at the broken day


def test_a_failed_settle_run_is_requested_again_after_a_back_off(instance):
    day = START
    record(instance, day, settled=False)
    now = end_of(day) + dt.timedelta(days=3)
    first = evaluate_settle_tick(instance, KEYS, SETTINGS, now, None).run_requests[0]
    assert first.run_key.endswith("attempt-1")
    run = create_run_for_test(
        instance, job_name=SYNC_JOB_NAME, tags=first.tags, status=DagsterRunStatus.STARTED
    )
    assert requested(evaluate_settle_tick(instance, KEYS, SETTINGS, now, None)) == []  # still going
    instance.report_run_failed(run)
    failed_at = dt.datetime.fromisoformat(first.tags[sensors.REQUESTED_AT_TAG])
    assert failed_at == now
    soon = evaluate_settle_tick(instance, KEYS, SETTINGS, failed_at + dt.timedelta(minutes=1), None)
    assert requested(soon) == [] and any("next attempt after" in n for n in soon.notes)
    # room for the retry beside the never-synced days after it (they go first)
    roomy = LoadSettings(start_date=START, settle_after_hours=48, settle_max_per_tick=10)
    later = evaluate_settle_tick(instance, KEYS, roomy, failed_at + dt.timedelta(minutes=11), None)
    retry = [r for r in later.run_requests if r.partition_key == day.isoformat()]
    assert [r.run_key for r in retry] == [first.run_key.replace("attempt-1", "attempt-2")]
    assert retry[0].tags[SETTLE_OF_TAG] == first.tags[SETTLE_OF_TAG]


def test_days_with_a_run_in_flight_are_skipped(instance):
    day = START
    record(instance, day, settled=False)
    create_run_for_test(
        instance,
        job_name=SYNC_JOB_NAME,
        status=DagsterRunStatus.STARTED,
        tags={DAYS_TAG: day.isoformat()},
    )
    tick = evaluate_settle_tick(instance, KEYS, SETTINGS, end_of(day) + dt.timedelta(days=3), None)
    assert day.isoformat() not in requested(tick)
    assert any("already queued" in n for n in tick.notes)


def test_the_sensor_settles_a_real_materialization(instance, resources, control, monkeypatch):
    """Through Dagster's own sensor machinery, on a partition written by a real run."""
    settings = LoadSettings(start_date=SIM_START, settle_after_hours=48)
    young = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
    materialize(
        # the sync job writes a day of every table in one run
        [build_sync_asset(e, young) for e in ENDPOINTS],
        partition_key=SIM_START.isoformat(),
        instance=instance,
        resources=resources,
    )
    defs = build_definitions(settings)
    sensor = defs.get_sensor_def(SENSOR_NAME)
    monkeypatch.setattr(sensors, "now_in", lambda s: end_of(SIM_START) + dt.timedelta(hours=49))
    result = sensor(build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(result, SensorResult)
    settle = [
        r.partition_key for r in result.run_requests if r.tags["cg_assets/automation"] == "settle"
    ]
    assert settle == [SIM_START.isoformat()]
    # the settle run itself, as the sensor would launch it
    materialize(
        [build_sync_asset(e, settings) for e in ENDPOINTS],
        partition_key=SIM_START.isoformat(),
        instance=instance,
        resources=resources,
    )
    result = sensor(build_sensor_context(instance=instance, definitions=defs, cursor=result.cursor))
    if isinstance(result, SensorResult):
        assert SIM_START.isoformat() not in [r.partition_key for r in result.run_requests]
    else:
        assert isinstance(result, SkipReason)


@pytest.mark.parametrize("automation", [True, False])
def test_automation_switch_sets_the_default_status(automation):
    defs = build_definitions(LoadSettings(automation=automation))
    expected = "RUNNING" if automation else "STOPPED"
    assert defs.get_schedule_def(SCHEDULE_NAME).default_status.value == expected
    assert defs.get_sensor_def(SENSOR_NAME).default_status.value == expected


def test_the_hourly_schedule_requests_today_and_yesterday_in_one_run_with_unique_run_keys(
    instance,
):
    settings = LoadSettings(
        start_date=dt.date(2026, 10, 1), timezone="Europe/Amsterdam", schedule_minute=7
    )
    defs = build_definitions(settings)
    schedule = defs.get_schedule_def(SCHEDULE_NAME)
    repo = defs.get_repository_def()
    assert (
        schedule.cron_schedule == "7 * * * *" and schedule.execution_timezone == "Europe/Amsterdam"
    )
    tick = dt.datetime(2026, 10, 20, 23, 7, tzinfo=UTC)  # already the 21st in Amsterdam
    first = schedule.evaluate_tick(
        build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=repo
        )
    )
    # one range run of both days (one run worker an hour, not two), named by our own tag
    (request,) = first.run_requests
    assert request.partition_key is None
    assert request.tags[DAYS_TAG] == "2026-10-20..2026-10-21"
    assert request.tags["dagster/asset_partition_range_start"] == "2026-10-20"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-10-21"
    second = schedule.evaluate_tick(
        build_schedule_context(
            instance=instance,
            scheduled_execution_time=tick + dt.timedelta(hours=1),
            repository_def=repo,
        )
    )
    assert not {r.run_key for r in first.run_requests} & {r.run_key for r in second.run_requests}


def test_the_schedule_skips_days_before_the_start_and_days_in_flight(instance):
    settings = LoadSettings(start_date=dt.date(2026, 10, 21))
    defs = build_definitions(settings)
    schedule, repo = defs.get_schedule_def(SCHEDULE_NAME), defs.get_repository_def()
    tick = dt.datetime(2026, 10, 21, 10, 5, tzinfo=UTC)
    data = schedule.evaluate_tick(
        build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=repo
        )
    )
    assert [r.partition_key for r in data.run_requests] == ["2026-10-21"]
    create_run_for_test(
        instance,
        job_name=SYNC_JOB_NAME,
        status=DagsterRunStatus.STARTED,
        tags=data.run_requests[0].tags,  # the run the schedule asked for, still going
    )
    data = schedule.evaluate_tick(
        build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=repo
        )
    )
    assert not data.run_requests and data.skip_message


def test_the_schedule_asks_for_the_day_not_in_flight_alone(instance):
    """Yesterday's run is still going: the tick asks for today only, as a one-day run."""
    settings = LoadSettings(start_date=dt.date(2026, 10, 1))
    defs = build_definitions(settings)
    schedule, repo = defs.get_schedule_def(SCHEDULE_NAME), defs.get_repository_def()
    tick = dt.datetime(2026, 10, 21, 10, 5, tzinfo=UTC)
    create_run_for_test(
        instance,
        job_name=SYNC_JOB_NAME,
        status=DagsterRunStatus.STARTED,
        tags=automation_tags("hourly-catch-up", dt.date(2026, 10, 20)),
    )
    data = schedule.evaluate_tick(
        build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=repo
        )
    )
    assert [r.partition_key for r in data.run_requests] == ["2026-10-21"]
    assert data.run_requests[0].tags[DAYS_TAG] == "2026-10-21"


def test_with_no_watermark_the_scan_wraps_around_so_every_day_is_requested(instance):
    """The first synced day is never settled (no watermark), more days are due than one
    tick scans, and only a few runs are asked for a tick: ticks after ticks still reach
    every day, because the scan position wraps back to the start."""
    settings = LoadSettings(start_date=START, settle_after_hours=48, settle_max_per_tick=3)
    days = [START + dt.timedelta(days=d) for d in range(sensors.SCAN_DAYS_PER_TICK + 38)]
    for day in days:
        record(instance, day, settled=False)
    now = end_of(days[-1]) + dt.timedelta(days=3)
    asked: set[str] = set()
    cursor = None
    for _ in range(60):
        tick = evaluate_settle_tick(instance, KEYS, settings, now, cursor)
        for request in tick.run_requests:
            asked.add(request.partition_key)
            # the run happens and settles its day
            record(instance, dt.date.fromisoformat(request.partition_key), settled=True)
        cursor = tick.cursor
    assert {d.isoformat() for d in days} <= asked  # (and the days after them, healed)


def test_days_that_keep_failing_never_crowd_out_days_not_tried_yet(instance):
    """More failing days than runs a tick, all past their back-off: the days not tried yet
    still go first, so a bad week never stalls the settling of the days after it."""
    settings = LoadSettings(start_date=START, settle_after_hours=48, settle_max_per_tick=3)
    failing = [START + dt.timedelta(days=d) for d in range(5)]
    fresh = [START + dt.timedelta(days=d) for d in range(5, 8)]
    for day in failing + fresh:
        record(instance, day, settled=False)
    now = end_of(fresh[-1]) + dt.timedelta(days=3)
    first = evaluate_settle_tick(instance, KEYS, settings, now, None)
    for request in first.run_requests:  # the three oldest are tried, and fail
        run = create_run_for_test(
            instance, job_name=SYNC_JOB_NAME, tags=request.tags, status=DagsterRunStatus.STARTED
        )
        instance.report_run_failed(run)
    later = now + sensors.RETRY_BACKOFF_MAX + dt.timedelta(minutes=1)
    tick = evaluate_settle_tick(instance, KEYS, settings, later, None)
    assert requested(tick) == [d.isoformat() for d in failing[3:]] + [fresh[0].isoformat()]
    assert all(r.run_key.endswith("attempt-1") for r in tick.run_requests)


def revisited(tick) -> list[tuple[str, str]]:
    """The (first, last) day of each revisit range run the tick asked for."""
    out = []
    for request in tick.run_requests:
        if request.tags["cg_assets/automation"] != "revisit":
            continue
        days = sorted(days_of(request.tags[DAYS_TAG]))
        # one run over the range: what Dagster reads to run the days in one run
        assert range_request_tags(days[0], days[-1]).items() <= request.tags.items()
        out.append((days[0].isoformat(), days[-1].isoformat()))
    return out


def test_open_days_are_revisited_in_one_range_run_once_their_whole_fetch_is_20_hours_old(
    instance,
):
    """Settled days inside the answer window: the ones last fetched whole 21 h ago go into
    one range run; the ones fetched 2 h ago wait; the range is asked for once an hour."""
    settings = LoadSettings(start_date=START, settle_after_hours=48, answer_window_days=30)
    days = [START + dt.timedelta(days=d) for d in range(10)]
    now = end_of(days[-1]) + dt.timedelta(hours=49)
    for n, day in enumerate(days):
        fetched = now - dt.timedelta(hours=21 if n < 6 else 2)
        record(instance, day, settled=True, closed=False, whole_fetch_at=fetched)
    tick = evaluate_settle_tick(instance, KEYS, settings, now, None)
    assert revisited(tick) == [(days[0].isoformat(), days[5].isoformat())]
    assert requested(tick) == []  # nothing to settle (the days after the last are healed)
    same_hour = evaluate_settle_tick(instance, KEYS, settings, now + dt.timedelta(minutes=5), None)
    next_hour = evaluate_settle_tick(instance, KEYS, settings, now + dt.timedelta(hours=1), None)

    def revisit_key(t) -> str:
        return next(r.run_key for r in t.run_requests if r.run_key.startswith("revisit:"))

    assert revisit_key(same_hour) == revisit_key(tick) != revisit_key(next_hour)
    # the watermark stays before the open days: they are looked at every tick
    assert "closed_through" not in json.loads(tick.cursor)


def test_a_range_run_leaves_out_days_in_flight_and_holds_at_most_31_days(instance):
    settings = LoadSettings(start_date=START, settle_after_hours=48, answer_window_days=60)
    days = [START + dt.timedelta(days=d) for d in range(40)]
    now = end_of(days[-1]) + dt.timedelta(hours=49)
    for day in days:
        record(instance, day, settled=True, closed=False, whole_fetch_at=now - dt.timedelta(days=1))
    create_run_for_test(
        instance,
        job_name=SYNC_JOB_NAME,
        status=DagsterRunStatus.STARTED,
        tags={DAYS_TAG: days[3].isoformat()},
    )
    tick = evaluate_settle_tick(instance, KEYS, settings, now, None)
    assert revisited(tick) == [
        (days[0].isoformat(), days[2].isoformat()),
        (days[4].isoformat(), days[34].isoformat()),
        (days[35].isoformat(), days[39].isoformat()),
    ]


def test_a_day_past_its_window_is_closed_then_left_alone(instance):
    settings = LoadSettings(start_date=START, settle_after_hours=48, answer_window_days=5)
    day = START
    closes = end_of(day) + dt.timedelta(days=5)
    for d in range(8):  # the days after it: closed already, so only `day` is asked for
        other = START + dt.timedelta(days=d)
        record(instance, other, settled=True, closed=other != day, whole_fetch_at=closes)
    before = evaluate_settle_tick(instance, KEYS, settings, closes - dt.timedelta(hours=1), None)
    assert revisited(before) == []  # fetched whole recently, window not over
    due = evaluate_settle_tick(instance, KEYS, settings, closes + dt.timedelta(minutes=1), None)
    assert revisited(due) == [(day.isoformat(), day.isoformat())]
    assert any("close" in note for note in due.notes)
    # the hole check lists it until it is closed
    assert unsettled_days(instance, KEYS, settings, closes + dt.timedelta(minutes=1)) == [day]
    record(instance, day, settled=True, closed=True, whole_fetch_at=closes)
    after = evaluate_settle_tick(instance, KEYS, settings, closes + dt.timedelta(days=1), None)
    assert revisited(after) == [] and after.run_requests == []
    assert unsettled_days(instance, KEYS, settings, closes + dt.timedelta(days=1)) == []
    # every day up to the day before yesterday (the schedule's days come after) is closed
    assert json.loads(after.cursor)["closed_through"] == (START + dt.timedelta(days=5)).isoformat()
