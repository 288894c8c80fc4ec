"""The lake checks (every_day_settled, answer_window_kept, no_unexplained_shrink) come from
the settle sensor's one scan: reported by the sensor and recorded as the daemon records
them, failing on a hole and passing once it is healed, at a cost in instance queries that
does not grow with the history. No sync run reads the days for them; run by hand they scan
every day once."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    Definitions,
    SensorResult,
    build_sensor_context,
    define_asset_job,
    instance_for_test,
    materialize,
)

from cg_assets import clock
from cg_assets.components.project import build_definitions
from cg_assets.customergauge.endpoints import ENDPOINTS, NON_RESPONSES, RESPONSES
from cg_assets.defs import sensors
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.automation import SYNC_JOB_NAME
from cg_assets.defs.checks import (
    LAKE_CHECK_NAMES,
    NO_HOLES,
    NO_UNEXPLAINED_SHRINK,
    WINDOW_KEPT,
    build_lake_checks,
)
from cg_assets.defs.partitions import daily_partitions
from cg_assets.defs.sensors import (
    REPORT_EVERY,
    SCAN_DAYS_PER_TICK,
    SENSOR_NAME,
    evaluate_settle_tick,
)
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START

KEY = asset_key_for(NON_RESPONSES)
OTHER = asset_key_for(RESPONSES)
UTC = dt.timezone.utc
START = dt.date(2025, 1, 1)
SETTINGS = LoadSettings(
    start_date=START, settle_after_hours=48, answer_window_days=5, settle_max_per_tick=3
)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def record(
    instance: DagsterInstance,
    on: dt.date,
    key: AssetKey = KEY,
    *,
    settled: bool = True,
    closed: bool | None = None,
    **extra: Any,
) -> None:
    """A materialization as a sync records it; `closed` defaults to `settled`."""
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=key,
            partition=on.isoformat(),
            metadata={
                "settled": settled,
                "closed": settled if closed is None else closed,
                "cursor": 1,
                **extra,
            },
        )
    )


def history(
    instance: DagsterInstance, days: int, keys: tuple[AssetKey, ...] = (KEY,), skip=()
) -> dt.datetime:
    """Days 0..days-1 closed in every table (but `skip`, (key, day) pairs never synced);
    returns noon of the day after the last."""
    for n in range(days):
        for key in keys:
            if (key, day(n)) not in skip:
                record(instance, day(n), key)
    return dt.datetime.combine(day(days), dt.time(12), tzinfo=UTC)


class Ticks:
    """The settle sensor's ticks, its results recorded in the instance as the daemon does."""

    def __init__(self, instance: DagsterInstance, keys: tuple[AssetKey, ...] = (KEY,)) -> None:
        self.instance, self.keys = instance, list(keys)
        self.cursor: str | None = None

    def tick(self, now: dt.datetime) -> dict[tuple[str, str], Any]:
        """The evaluations the tick reported, by (table, check)."""
        tick = evaluate_settle_tick(self.instance, self.keys, SETTINGS, now, self.cursor)
        self.cursor = tick.cursor
        for evaluation in tick.evaluations:
            self.instance.report_runless_asset_event(evaluation)
        return {(e.asset_key.path[-1], e.check_name): e for e in tick.evaluations}

    def latest(self, key: AssetKey, name: str) -> Any:
        history = self.instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(key, name), limit=1
        )
        return history[0].event.dagster_event.asset_check_evaluation_data


def listed(evaluation: Any, name: str = "unsettled_days") -> list[str]:
    return list(evaluation.metadata[name].value)


def test_the_sensor_reports_each_tables_holes_and_they_pass_once_healed(instance):
    missing, failing = day(6), day(9)
    # responses never synced one day; non_responses's latest sync of another failed to settle
    now = history(instance, 20, keys=(KEY, OTHER), skip={(OTHER, missing)})
    record(instance, failing, KEY, settled=False)
    ticks = Ticks(instance, keys=(KEY, OTHER))
    first = ticks.tick(now)
    assert set(first) == {(t, c) for t in ("non_responses", "responses") for c in LAKE_CHECK_NAMES}
    assert listed(ticks.latest(KEY, NO_HOLES)) == [failing.isoformat()]
    assert listed(ticks.latest(OTHER, NO_HOLES)) == [missing.isoformat()]
    assert not ticks.latest(KEY, NO_HOLES).passed and not ticks.latest(OTHER, NO_HOLES).passed
    assert ticks.latest(KEY, WINDOW_KEPT).passed and ticks.latest(KEY, NO_UNEXPLAINED_SHRINK).passed

    # a minute later, nothing changed: nothing reported
    assert ticks.tick(now + dt.timedelta(minutes=1)) == {}
    # the settle sensor's runs heal both days: the next tick reports the two that changed
    record(instance, failing, KEY)
    record(instance, missing, OTHER)
    healed = ticks.tick(now + dt.timedelta(minutes=2))
    assert set(healed) == {("non_responses", NO_HOLES), ("responses", NO_HOLES)}
    assert ticks.latest(KEY, NO_HOLES).passed and ticks.latest(OTHER, NO_HOLES).passed
    assert listed(ticks.latest(KEY, NO_HOLES)) == []


def test_late_and_shrunk_days_stay_listed_after_the_watermark_passes_them(instance):
    """Final facts: once a day is closed the scan never reads it again, yet the checks keep
    naming it, from the sensor's cursor."""
    for n in range(12):
        extra = {}
        if n == 2:
            extra["longest_revisit_gap_hours"] = 30.0
        if n == 3:
            extra["unexplained_removals"] = 2
        record(instance, day(n), **extra)
    now = dt.datetime.combine(day(12), dt.time(12), tzinfo=UTC)
    ticks = Ticks(instance)
    first = ticks.tick(now)
    assert listed(first[("non_responses", WINDOW_KEPT)], "late_days") == [day(2).isoformat()]
    assert listed(first[("non_responses", NO_UNEXPLAINED_SHRINK)], "shrunk_days") == [
        day(3).isoformat()
    ]
    assert first[("non_responses", NO_HOLES)].passed
    assert (
        first[("non_responses", NO_HOLES)].metadata["closed_through"].value == day(10).isoformat()
    )
    # an hour later every verdict is reported again, unchanged, with no day read again
    again = ticks.tick(now + REPORT_EVERY)
    assert set(again) == {("non_responses", c) for c in LAKE_CHECK_NAMES}
    assert listed(again[("non_responses", WINDOW_KEPT)], "late_days") == [day(2).isoformat()]
    assert not again[("non_responses", NO_UNEXPLAINED_SHRINK)].passed


def test_a_long_history_is_judged_only_once_the_scan_has_read_every_day(instance):
    """A first tick reads SCAN_DAYS_PER_TICK days: a verdict then would pass the days not
    read yet, so the checks wait until the scan has gone round once."""
    days = 3 * SCAN_DAYS_PER_TICK
    failing = day(days - 10)
    now = history(instance, days)
    record(instance, failing, settled=False)
    ticks = Ticks(instance)
    reports = [ticks.tick(now + dt.timedelta(minutes=n)) for n in range(4)]
    assert reports[0] == {} and reports[1] == {}
    (verdict,) = [r[("non_responses", NO_HOLES)] for r in reports if r]
    assert not verdict.passed and listed(verdict) == [failing.isoformat()]


class Calls:
    """A thin counting wrapper around every read of the instance (get_*, fetch_*, all_logs)."""

    def __init__(self, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count: Counter[str] = Counter()
        for name in dir(type(instance)):
            if not name.startswith(("get_", "fetch_", "all_logs")):
                continue
            if isinstance(getattr(type(instance), name), property):
                continue
            original = getattr(instance, name)
            if callable(original):
                monkeypatch.setattr(instance, name, self._counted(name, original))

    def _counted(self, name: str, original: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count[name] += 1
            return original(*args, **kwargs)

        return counted


def tick_cost(home: Path, days: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Counter, Counter]:
    """The instance reads of a first tick (a cursor just begun) and of a steady tick that
    reports the lake checks, over `days` days of closed history."""
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        now = history(instance, days)
        ticks = Ticks(instance)
        with monkeypatch.context() as patch:
            calls = Calls(instance, patch)
            ticks.tick(now)
            cold = calls.count.copy()
        for _ in range(days // SCAN_DAYS_PER_TICK + 1):
            ticks.tick(now)  # the watermark reaches the last closed day
        with monkeypatch.context() as patch:
            calls = Calls(instance, patch)
            reported = ticks.tick(now + REPORT_EVERY)
            steady = calls.count.copy()
        assert set(reported) == {("non_responses", c) for c in LAKE_CHECK_NAMES}
        assert all(e.passed for e in reported.values())
        return cold, steady


def test_a_tick_and_its_check_results_cost_the_same_after_300_days_as_after_30(
    tmp_path, monkeypatch
):
    cold_30, steady_30 = tick_cost(tmp_path / "30", 30, monkeypatch)
    cold_300, steady_300 = tick_cost(tmp_path / "300", 300, monkeypatch)
    assert steady_300 == steady_30, (steady_30, steady_300)
    # one query per table for the partitions, one for the runs in flight: no day read
    assert steady_30["fetch_materializations"] == 0 and sum(steady_30.values()) <= 3
    # a cursor just begun reads at most one tick's worth of days, however long the history
    assert cold_30["fetch_materializations"] == 29  # days 0-28: up to the day before yesterday
    assert cold_300["fetch_materializations"] == SCAN_DAYS_PER_TICK


@pytest.fixture
def by_hand(instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The lake checks run on their own, as from the UI, at a given moment."""

    def run(now: dt.datetime) -> dict[str, Any]:
        monkeypatch.setattr(clock, "utc_now", lambda: now)
        checks = build_lake_checks([KEY], SETTINGS)
        defs = Definitions(
            assets=[AssetSpec(KEY, partitions_def=daily_partitions(SETTINGS))],
            asset_checks=[checks],
            jobs=[define_asset_job("lake_checks", selection=AssetSelection.checks(checks))],
        )
        result = defs.resolve_job_def("lake_checks").execute_in_process(instance=instance)
        return {e.check_name: e for e in result.get_asset_check_evaluations()}

    yield run


def test_run_by_hand_the_checks_scan_every_day_once_and_fail_on_each_kind(instance, by_hand):
    now = history(instance, 100, skip={(KEY, day(70))})
    record(instance, day(40), longest_revisit_gap_hours=26.5)
    record(instance, day(50), unexplained_removals=1)
    record(instance, day(90), settled=True, closed=False)  # past its 5-day window, still open
    found = by_hand(now)
    assert set(found) == set(LAKE_CHECK_NAMES)
    assert listed(found[NO_HOLES]) == [day(70).isoformat(), day(90).isoformat()]
    assert listed(found[WINDOW_KEPT], "late_days") == [day(40).isoformat()]
    assert listed(found[NO_UNEXPLAINED_SHRINK], "shrunk_days") == [day(50).isoformat()]
    record(instance, day(70))
    record(instance, day(90))
    assert by_hand(now)[NO_HOLES].passed


def test_the_sensor_definition_reports_the_checks_even_on_a_tick_without_runs(
    instance, monkeypatch
):
    now = history(instance, 10, keys=(KEY, OTHER))
    defs = build_definitions(SETTINGS)
    monkeypatch.setattr(sensors, "now_in", lambda s: now)
    result = defs.get_sensor_def(SENSOR_NAME)(
        build_sensor_context(instance=instance, definitions=defs)
    )
    assert isinstance(result, SensorResult) and not result.run_requests
    assert result.skip_reason is not None  # the tick log says why no run was asked for
    keys = {(e.asset_key, e.check_name) for e in result.asset_events}
    assert keys == {(k, c) for k in (KEY, OTHER) for c in LAKE_CHECK_NAMES}


def test_a_sync_run_evaluates_no_lake_check(instance, resources):
    """The days are read for the lake checks by the sensor only: a sync run yields its
    inline checks, and its job does not select the lake checks."""
    young = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
    result = materialize(
        [build_sync_asset(e, young) for e in ENDPOINTS],
        partition_key=SIM_START.isoformat(),
        instance=instance,
        resources=resources,
    )
    names = {e.check_name for e in result.get_asset_check_evaluations()}
    assert names and not names & set(LAKE_CHECK_NAMES)
    job = build_definitions(young).resolve_job_def(SYNC_JOB_NAME)
    selected = {k.name for k in job.asset_layer.asset_graph.asset_check_keys}
    assert not selected & set(LAKE_CHECK_NAMES)


def test_a_cursor_of_an_earlier_version_starts_the_scan_over(instance):
    """Its watermark knew nothing of the checks' facts (late or shrunk days below it): the
    scan reads every day again once, so the checks see the whole history."""
    now = history(instance, 20)
    record(instance, day(2), longest_revisit_gap_hours=40.0)
    ticks = Ticks(instance)
    ticks.cursor = json.dumps({"closed_through": day(17).isoformat()})
    first = ticks.tick(now)
    assert listed(first[("non_responses", WINDOW_KEPT)], "late_days") == [day(2).isoformat()]
    assert json.loads(ticks.cursor)["closed_through"] == day(18).isoformat()
