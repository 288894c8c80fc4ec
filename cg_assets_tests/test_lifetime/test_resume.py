"""A killed range run resumes instead of redoing: each day is recorded when it is published.

Through Dagster's command line, as an operator would run an initial load: a 12-day range
is SIGKILLed after it has published some day files; re-running the same range fetches only
the days the killed run had not finished. A finished day costs at most one request (the
empty page that proves nothing new arrived), and a settled one costs none.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from cg_assets_tests.test_assets.test_cli import materialize_cli, materialize_command, start_cli
from cg_assets_tests.truth import assert_day_equals_truth, metadata_values
from cg_simulator import SimulatorControl, running_simulator

pytestmark = pytest.mark.stack

FIRST = dt.date(2026, 9, 1)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(12)]
RANGE = f"{DAYS[0].isoformat()}...{DAYS[-1].isoformat()}"
KEY = AssetKey(["customergauge", "non_responses"])
WAIT_SECONDS = 180


def day_files(lake: Path) -> list[Path]:
    return sorted((lake / "customergauge" / "non_responses").glob("date=*/data.parquet"))


def requests_per_day(control: SimulatorControl) -> Counter[str]:
    return Counter(r["query"].get("period[start]") for r in control.stats()["requests"])


def test_a_killed_range_resumes_with_only_the_unfinished_days(tmp_path):
    home, lake = tmp_path / "home", tmp_path / "lake"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with (
        running_simulator(records=2400, start=DAYS[0], end=DAYS[-1], seed=5) as simulator,
        SimulatorControl(simulator.url) as control,
    ):
        control.configure(latency_ms=150)  # each day takes a couple of seconds to page
        command, env = materialize_command(simulator, home, lake, "--partition-range", RANGE)
        env["CG_PER_PAGE"] = "20"
        env["CG_START_DATE"] = FIRST.isoformat()
        doomed = start_cli(command, env)
        deadline = time.monotonic() + WAIT_SECONDS
        while len(day_files(lake)) < 5:
            assert doomed.poll() is None, "the range run ended before it could be killed"
            assert time.monotonic() < deadline, "the range run published too few days"
            time.sleep(0.02)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
        published = {p.parent.name.removeprefix("date=") for p in day_files(lake)}
        assert 5 <= len(published) < len(DAYS)

        with DagsterInstance.from_config(str(home)) as instance:
            recorded = {
                day.isoformat()
                for day in DAYS
                if instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=KEY, asset_partitions=[day.isoformat()]), limit=1
                ).records
            }
        # every published day but possibly the very last was recorded before the kill
        assert len(recorded) >= len(published) - 1 and recorded <= published

        control.configure(latency_ms=0)
        control.reset_stats()
        rerun = materialize_cli(simulator, home, lake, "--partition-range", RANGE, env=env)
        assert rerun.returncode == 0, rerun.stderr[-3000:]

        sent = requests_per_day(control)
        for day in DAYS:
            label = day.isoformat()
            if label in published:
                assert sent[label] <= 1, f"{label} was finished, yet fetched again: {sent}"
            else:
                assert sent[label] > 1, f"{label} was not finished, yet not fetched: {sent}"
            assert_day_equals_truth(lake, control, day)
        with DagsterInstance.from_config(str(home)) as instance:
            for day in DAYS:
                record = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=KEY, asset_partitions=[day.isoformat()]), limit=1
                ).records[0]
                md = metadata_values(record.asset_materialization.metadata)
                if day.isoformat() in published and day.isoformat() not in recorded:
                    assert "adopting the file" in md["reason"], md["reason"]
