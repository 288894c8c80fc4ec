"""Thirty days of operation in simulated time: the schedule and the settle sensor tick, the
runs they ask for are executed, and the simulator keeps changing, through every mishap an
operator meets in a month. At the end the lake is complete and final.

Time is simulated through the clock seam (cg_assets.clock) and the schedule's
scheduled_execution_time; everything else is real: the simulator over HTTP, a SQLite
instance on disk, Parquet files, the definitions as `dagster dev` loads them, and one range
run through Dagster's command line that is SIGKILLed in the middle.

The month, in CG_TIMEZONE=Europe/Amsterdam (DST ends on 25 October, day 15):
Ticks come every 12 hours, every 24 once no new data comes (the schedule is hourly in
production; what matters here is the sequence of events, not their density).
- days 2-10: the API is down (every request, token included, fails): 9 days;
- day 11: the operator backfills the outage's older days from the CLI; the run is
  SIGKILLed after two days;
- days 12-13: the credentials are revoked;
- days 15-21: day 14's data breaks the contract (a malformed date) for a week;
- days 19-26: the daemon is stopped: no ticks at all for 8 days;
- all month: people answer invitations 3 to 9 days old and late bounces turn old
  invitations into failures, after their day was settled, inside the 10-day answer window
  (CG_ANSWER_WINDOW_DAYS=10 here); the responses cursor follows the CGID order or the
  order of answering (the test runs under both);
- days 30-42: no new data; ticks go on until every day's answer window is over.

At the end every day of both tables is closed and equals the truth, and so does the funnel
(sent, responded, response rate, NPS).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import zoneinfo
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from cg_assets import clock
from cg_assets.components.project import build_definitions
from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.defs import automation
from cg_assets.defs.assets import build_sync_asset
from cg_assets.defs.checks import NO_HOLES
from cg_assets.defs.day_status import (
    day_status,
    last_close_due_day,
    last_settle_due_day,
    unsettled_days,
)
from cg_assets.defs.funnel import funnel_of
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.schedules import SCHEDULE_NAME
from cg_assets.defs.sensors import SENSOR_NAME
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import make_resource, with_lake_io_manager
from cg_assets_tests.instances import open_instance, write_dagster_yaml
from cg_assets_tests.test_assets.test_cli import materialize_command, start_cli
from cg_assets_tests.truth import (
    assert_day_equals_truth,
    assert_responses_day_equals_truth,
    day_file,
)
from cg_simulator import SimulatorControl, running_simulator

TZ = "Europe/Amsterdam"
ZONE = zoneinfo.ZoneInfo(TZ)
D0 = dt.date(2026, 10, 10)
DATA_DAYS = 30
TICK = dt.timedelta(hours=12)
# Once no new data comes, a tick a day: what is left is each day's last revisit and close.
QUIET_TICK = dt.timedelta(hours=24)
WINDOW_DAYS = 10
# ticks stop at midnight starting this day: every day's window is over by then
END = D0 + dt.timedelta(days=DATA_DAYS + WINDOW_DAYS + 2)
KEY = AssetKey(["customergauge", "non_responses"])
KEYS = [AssetKey(["customergauge", endpoint.name]) for endpoint in ENDPOINTS]
SETTINGS = LoadSettings(
    start_date=D0,
    timezone=TZ,
    settle_after_hours=48,
    settle_max_per_tick=8,
    answer_window_days=WINDOW_DAYS,
    automation=True,
)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


OUTAGE = range(2, 11)
BACKFILL_DAY = 11
REVOKED = range(12, 14)
BROKEN_DAY = day(14)
BROKEN = range(15, 22)
DAEMON_STOPPED = range(19, 27)
KILLED_RANGE = (day(2), day(8))


class Month:
    def __init__(self, simulator: Any, control: SimulatorControl, tmp_path: Path) -> None:
        self.simulator, self.control = simulator, control
        self.home = write_dagster_yaml(tmp_path / "home", one_event_log=True)
        self.lake = tmp_path / "lake"
        self.defs = build_definitions(SETTINGS)
        # both tables, as the sync job the schedule and the sensor launch
        self.assets = [build_sync_asset(endpoint, SETTINGS) for endpoint in ENDPOINTS]
        self.resources = with_lake_io_manager(
            {
                "customergauge": make_resource(
                    simulator, per_page=25, max_retries=1, backoff_seconds=0.001
                ),
                "lake": LakeResource(root=str(self.lake)),
            }
        )
        self.sensor_cursor: str | None = None
        self.run_keys: set[str] = set()
        self.runs = 0
        self.failures: list[str] = []
        self.hole_reports: list[list[str]] = []
        self.last_hole_check: bool | None = None
        self.late_answers: list[int] = []
        self.late_bounces: list[int] = []
        self.revisit_runs = 0

    def run(self, instance: DagsterInstance, partition: str | None, tags: dict[str, str]) -> None:
        self.revisit_runs += tags.get(automation.AUTOMATION_TAG) == "revisit"
        result = materialize(
            self.assets,
            partition_key=partition,  # None: a range run (its range is in the tags)
            instance=instance,
            resources=self.resources,
            tags=tags,
            raise_on_error=False,
        )
        self.runs += 1
        if not result.success:
            for event in result.all_events:
                if event.is_step_failure and event.step_failure_data.error is not None:
                    self.failures.append(event.step_failure_data.error.message)

    def tick(self, instance: DagsterInstance, now: dt.datetime) -> None:
        """One schedule tick and one sensor tick at `now`, each requested run executed
        (a run key is run once, as the daemon does)."""
        repo = self.defs.get_repository_def()
        schedule = self.defs.get_schedule_def(SCHEDULE_NAME)
        data = schedule.evaluate_tick(
            build_schedule_context(
                instance=instance, scheduled_execution_time=now, repository_def=repo
            )
        )
        self.execute(instance, list(data.run_requests or []) + self.sense(instance))

    def execute(self, instance: DagsterInstance, requests: list[RunRequest]) -> None:
        for request in requests:
            if request.run_key in self.run_keys:
                continue
            self.run_keys.add(request.run_key)
            self.run(instance, request.partition_key, dict(request.tags))

    def sense(self, instance: DagsterInstance) -> list[RunRequest]:
        """One settle sensor tick: the runs it asks for, and its verdicts on the lake (the
        hole check's results come from the sensor's scan, not from the runs)."""
        context = build_sensor_context(
            instance=instance, definitions=self.defs, cursor=self.sensor_cursor
        )
        result = self.defs.get_sensor_def(SENSOR_NAME)(context)
        if not isinstance(result, SensorResult):
            self.sensor_cursor = context.cursor
            return []
        self.sensor_cursor = result.cursor
        for evaluation in result.asset_events:
            if getattr(evaluation, "check_name", None) == NO_HOLES:
                self.last_hole_check = evaluation.passed
                self.hole_reports.append(list(evaluation.metadata["unsettled_days"].value))
        return list(result.run_requests or [])

    def change_the_data(self, now: dt.datetime, tick_number: int) -> None:
        """New invitations today; yesterday's turn into responses and failures; and late
        ones: answers to invitations 3-9 days old, bounces of 4-8 days old ones."""
        today = now.date()
        if today > day(DATA_DAYS - 1):
            return
        self.control.add_records(today, 2)
        yesterday = today - dt.timedelta(days=1)
        if yesterday >= D0 and tick_number % 2 == 0:
            self.control.respond_records(day=yesterday, count=1)
            self.control.fail_records(day=yesterday, count=1)
        answered_at = now.replace(tzinfo=None, microsecond=0)
        late = today - dt.timedelta(days=3 + tick_number % 7)
        if late >= D0:
            self.late_answers += self.control.respond_records(day=late, count=1, at=answered_at)
        bounced = today - dt.timedelta(days=4 + tick_number % 5)
        if bounced >= D0 and tick_number % 3 == 0:
            self.late_bounces += self.control.fail_records(day=bounced, count=1)

    def killed_backfill(self) -> set[str]:
        """The operator backfills the outage from the CLI; the run is SIGKILLed after two
        days were published. Returns the days it published."""
        first, last = KILLED_RANGE
        command, env = materialize_command(
            self.simulator,
            self.home,
            self.lake,
            "--partition-range",
            f"{first.isoformat()}...{last.isoformat()}",
        )
        env.update(
            CG_START_DATE=D0.isoformat(),
            CG_TIMEZONE=TZ,
            CG_SETTLE_AFTER_HOURS="48",
            CG_PER_PAGE="5",
        )
        table = self.lake / "customergauge" / "non_responses"
        before = {p.parent.name for p in table.glob("date=*/data.parquet")}
        self.control.configure(latency_ms=100)
        process = start_cli(command, env)
        deadline = time.monotonic() + 180
        while True:
            published = {p.parent.name for p in table.glob("date=*/data.parquet")} - before
            if len(published) >= 2:
                break
            assert process.poll() is None, "the backfill ended before it could be killed"
            assert time.monotonic() < deadline, "the backfill never published two days"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        self.control.configure(latency_ms=0)
        return {p.removeprefix("date=") for p in published}


@pytest.mark.lifetime
@pytest.mark.parametrize("responses_order", ["cgid", "answer"])
def test_thirty_days_of_outages_kills_broken_data_late_answers_and_a_stopped_daemon(
    tmp_path, monkeypatch, responses_order
):
    with (
        running_simulator(
            records=300,
            start=D0,
            end=day(DATA_DAYS - 1),
            seed=30,
            responses_order=responses_order,
        ) as simulator,
        SimulatorControl(simulator.url) as control,
    ):
        month = Month(simulator, control, tmp_path)
        local_now = dt.datetime.combine(D0, dt.time(1), tzinfo=ZONE)
        monkeypatch.setattr(clock, "utc_now", lambda: local_now.astimezone(dt.timezone.utc))
        killed: set[str] = set()
        last_tick = local_now
        tick_number = 0
        with open_instance(month.home) as instance:
            while local_now < dt.datetime.combine(END, dt.time(0), tzinfo=ZONE):
                today = local_now.date()
                n = (today - D0).days
                control.clear_faults()
                if n in OUTAGE:
                    control.inject(
                        {"kind": "status", "code": 503, "times": 10**6},
                        {"kind": "status", "code": 503, "times": 10**6, "target": "token"},
                    )
                control.configure(
                    revoked=n in REVOKED,
                    broken_days=[BROKEN_DAY.isoformat()] if n in BROKEN else [],
                )
                month.change_the_data(local_now, tick_number)
                if n == BACKFILL_DAY and not killed:
                    killed = month.killed_backfill()
                    # The SIGKILLed backfill stays STARTED: what Dagster's run monitoring
                    # does to it at its maximum runtime, the automation waiting until then.
                    for record in instance.get_run_records(
                        RunsFilter(statuses=[DagsterRunStatus.STARTED])
                    ):
                        instance.report_run_failed(record.dagster_run, "run worker died")
                if n not in DAEMON_STOPPED:
                    month.tick(instance, local_now)
                    last_tick = local_now
                tick_number += 1
                # wall-clock steps of 8 h across the DST change stay 8 real hours
                step = TICK if n < DATA_DAYS else QUIET_TICK
                local_now = (local_now.astimezone(dt.timezone.utc) + step).astimezone(ZONE)

            control.clear_faults()
            control.configure(revoked=False, broken_days=[])
            now = last_tick.astimezone(dt.timezone.utc)
            last_due = last_settle_due_day(now, SETTINGS)
            assert last_due >= day(DATA_DAYS - 1)
            assert last_close_due_day(now, SETTINGS) >= day(DATA_DAYS - 1)

            # Every day from the first synced one is the truth, in both tables, and final.
            assert killed and len(killed) >= 2
            assert len(month.late_answers) >= 40 and len(month.late_bounces) >= 10
            current = D0
            while current <= day(DATA_DAYS - 1):
                assert_day_equals_truth(month.lake, control, current)
                assert_responses_day_equals_truth(month.lake, control, current)
                assert_funnel_equals_truth(month.lake, control, current)
                status = day_status(instance, KEYS, current)
                assert status.settled and status.closed, f"{current} not closed"
                current += dt.timedelta(days=1)
            assert unsettled_days(instance, KEYS, SETTINGS, now) == []
            # The sensor's next ticks settle what fell due since (the quiet days after the
            # data); then its scan finds no hole, and the hole check passes.
            for _ in range(5):
                requests = month.sense(instance)
                if not requests:
                    break
                month.execute(instance, requests)
            assert requests == [] and month.last_hole_check is True

    # While day 14 was broken, the failing runs named it and the hole check listed it.
    assert any(BROKEN_DAY.isoformat() in f and "date_sent" in f for f in month.failures)
    assert any(BROKEN_DAY.isoformat() in report for report in month.hole_reports)
    # The outage's holes were listed by the hole check too before they were healed.
    assert any(day(5).isoformat() in report for report in month.hole_reports)
    # Open days were revisited in range runs, not one run per day.
    assert 0 < month.revisit_runs < 2 * (END - D0).days
    print(f"{month.runs} runs ({month.revisit_runs} revisits) over {tick_number} ticks")


def assert_funnel_equals_truth(lake: Path, control: SimulatorControl, current: dt.date) -> None:
    """The funnel's row of a day, computed from the lake, against the simulator's truth."""
    row = funnel_of(
        pl.scan_parquet(day_file(lake, current, "non_responses")),
        pl.scan_parquet(day_file(lake, current, "responses")),
    ).to_dicts()[0]
    responses = control.truth("date_sent", current, current, "responses")
    sent = len(responses) + len(control.truth("date_sent", current, current))
    scores = [r["nps"] for r in responses]
    promoters = sum(1 for n in scores if n >= 9)
    detractors = sum(1 for n in scores if n <= 6)
    assert (row["sent"], row["responded"]) == (sent, len(responses)), current
    assert row["response_rate"] == pytest.approx(len(responses) / sent), current
    expected_nps = 100 * (promoters - detractors) / len(scores) if scores else None
    assert row["nps"] == (pytest.approx(expected_nps) if scores else None), current
