"""Freshness per day, through real sync runs against the simulator on a real instance, with
the sync's and the sensor's clock moved by hand (cg_assets.clock)."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetRecordsFilter,
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
)

from cg_assets import clock
from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for
from cg_assets.defs.day_freshness import CHECK_NAME, build_day_freshness_sensor
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_END, SIM_START
from cg_assets_tests.test_privacy.helpers import sync

KEY = asset_key_for(NON_RESPONSES)
SETTINGS = LoadSettings(start_date=SIM_START, automation=True, settle_after_hours=8784)
TODAY = SIM_END
YESTERDAY = TODAY - dt.timedelta(days=1)
OLD_DAYS = (SIM_START, YESTERDAY - dt.timedelta(days=1))
# The hourly catch-up's minute, on the simulated last day of the simulator's data.
START = dt.datetime.combine(TODAY, dt.time(9, 5), tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = START
        monkeypatch.setattr(clock, "utc_now", lambda: self.now)


class Ticks:
    """The sensor, ticked as the daemon would, its results recorded in the instance."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.sensor = build_day_freshness_sensor([KEY], SETTINGS)
        self.cursor: str | None = None

    def tick(self) -> list:
        result = self.sensor(build_sensor_context(instance=self.instance, cursor=self.cursor))
        if isinstance(result, SkipReason):
            return []
        assert isinstance(result, SensorResult)
        self.cursor = result.cursor
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        return list(result.asset_events)

    def latest(self):
        history = self.instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(KEY, CHECK_NAME), limit=1
        )
        return history[0].event.dagster_event.asset_check_evaluation_data


def newest_materialization_at(instance: DagsterInstance) -> dt.datetime:
    """What an asset-level freshness policy judges: the newest sync of any day."""
    record = instance.fetch_materializations(AssetRecordsFilter(asset_key=KEY), limit=1).records[0]
    return dt.datetime.fromisoformat(record.asset_materialization.metadata["synced_at"].value)


def test_today_failing_for_three_hours_while_old_days_sync_goes_red_then_green(
    instance, resources, control, monkeypatch
):
    time = Clock(monkeypatch)
    ticks = Ticks(instance)
    assert sync(instance, resources, SIM_START, TODAY, settings=SETTINGS).success
    (first,) = ticks.tick()
    assert first.passed, first.description

    verdicts = {}
    for minutes in (60, 95, 121, 180):
        time.now = START + dt.timedelta(minutes=minutes)
        if minutes % 60 == 0:
            # the hourly catch-up of today and yesterday fails (the API answers 500) ...
            control.inject({"kind": "status", "code": 500, "times": 1000})
            failed = sync(
                instance, resources, YESTERDAY, TODAY, settings=SETTINGS, raise_on_error=False
            )
            assert not failed.success
            control.clear_faults()
            # ... while the settle sensor's runs rewrite older days, which succeed
            assert sync(
                instance, resources, *OLD_DAYS, settings=SETTINGS, full_refresh=True
            ).success
            # an asset-level freshness policy sees a sync minutes ago: it stays green
            assert time.now - newest_materialization_at(instance) < dt.timedelta(minutes=1)
        verdicts[minutes] = ticks.tick()

    assert verdicts[60] == []  # an hour without a sync: still within the window
    (warn,) = verdicts[95]
    assert (warn.passed, warn.severity) == (False, AssetCheckSeverity.WARN)
    (red,) = verdicts[121]  # red within 2 h of the last good sync
    assert (red.passed, red.severity) == (False, AssetCheckSeverity.ERROR)
    assert TODAY.isoformat() in red.description and YESTERDAY.isoformat() in red.description
    assert red.metadata["late_days"].value == [YESTERDAY.isoformat(), TODAY.isoformat()]
    assert verdicts[180] == []  # still red: no new result, the verdict did not change
    assert ticks.latest().passed is False

    time.now = START + dt.timedelta(hours=3, minutes=5)
    assert sync(instance, resources, YESTERDAY, TODAY, settings=SETTINGS).success
    (green,) = ticks.tick()
    assert green.passed, green.description
    assert ticks.latest().passed is True


def test_a_day_just_begun_is_not_late_until_the_window_has_passed_since_midnight(
    instance, resources, monkeypatch
):
    """Synced yesterday evening: after midnight today has no sync yet, which is not late
    until 90 minutes into the day; yesterday is judged on its own last sync."""
    time = Clock(monkeypatch)
    time.now = dt.datetime.combine(YESTERDAY, dt.time(23, 5), tzinfo=dt.timezone.utc)
    assert sync(instance, resources, YESTERDAY, settings=SETTINGS).success
    ticks = Ticks(instance)
    time.now = dt.datetime.combine(TODAY, dt.time(0, 30), tzinfo=dt.timezone.utc)
    (fresh,) = ticks.tick()
    assert fresh.passed, fresh.description
    time.now = dt.datetime.combine(TODAY, dt.time(1, 35), tzinfo=dt.timezone.utc)
    (late,) = ticks.tick()
    assert late.metadata["minutes_since_sync"].value == {
        YESTERDAY.isoformat(): 150.0,
        TODAY.isoformat(): 95.0,
    }
    assert late.metadata["late_days"].value == [YESTERDAY.isoformat(), TODAY.isoformat()]
    assert "never" in late.description  # today: no sync yet
