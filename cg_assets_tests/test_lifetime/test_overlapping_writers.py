"""One writer per table day, enforced by the lake, through Dagster's own command line.

`dagster asset materialize` runs outside any run queue, so nothing in the instance can
keep two of them apart: the day lock in the lake does. Pages are slowed down in the
simulator so that the first writer is certainly still writing when the second starts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.test_assets.test_cli import materialize_cli, materialize_command, start_cli
from cg_assets_tests.truth import assert_day_equals_truth

pytestmark = pytest.mark.stack

DAY = SIM_START
WAIT_SECONDS = 120


def lock_file(lake: Path, day: dt.date) -> Path:
    return lake / "customergauge" / "_locks" / "non_responses" / f"date={day.isoformat()}.lock"


def wait_until_holding(lake: Path, day: dt.date, process: subprocess.Popen) -> dict:
    """The holder writes who it is into the lock file once it holds the lock."""
    deadline = time.monotonic() + WAIT_SECONDS
    path = lock_file(lake, day)
    while time.monotonic() < deadline:
        assert process.poll() is None, "the first writer ended before it took the lock"
        if path.exists() and path.read_text().strip():
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise AssertionError("the first writer never took the day's lock")


def wait_until_pages_in(staging: Path, control, process: subprocess.Popen) -> None:
    """A few pages in (of ~17 of 2 s each): the writer has its staging file open and the
    simulator has served it two pages (it logs a request as it starts to answer it), so the
    file is half written when it is killed."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "the writer ended before it wrote a page"
        asked = len(control.stats()["requests"])  # API requests only, not the token's
        if asked >= 3 and list(staging.glob(f"{DAY.isoformat()}.*.tmp")):
            return
        time.sleep(0.1)
    raise AssertionError("the writer never got two pages into its staging file")


def start_writer(simulator, home: Path, lake: Path, day: dt.date) -> subprocess.Popen:
    command, env = materialize_command(simulator, home, lake, "--partition", day.isoformat())
    return start_cli(command, env, output=True)


def slow_day(control) -> None:
    """About 17 pages of 2 s: the first writer is still paging long after a second
    `dagster` process has started (which takes several seconds on a loaded machine)."""
    control.add_records(DAY, 1500)
    control.configure(latency_ms=2000)


def new_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def test_a_second_writer_of_the_same_day_fails_at_once_naming_the_first(
    simulator, control, tmp_path
):
    home, lake = new_home(tmp_path), tmp_path / "lake"
    slow_day(control)
    first = start_writer(simulator, home, lake, DAY)
    holder = wait_until_holding(lake, DAY, first)
    assert holder["pid"] != os.getpid() and holder["holder"].startswith("run ")

    second = materialize_cli(simulator, home, lake, "--partition", DAY.isoformat())
    assert second.returncode != 0
    output = second.stdout + second.stderr
    assert "is being written by " + holder["holder"] in output
    assert "One writer per table day" in output

    control.configure(latency_ms=0)  # let the first writer finish quickly
    out, _ = first.communicate(timeout=WAIT_SECONDS)
    assert first.returncode == 0, out[-3000:]
    assert_day_equals_truth(lake, control, DAY)
    # the refused run recorded nothing: the day's only materialization is the first run's
    with DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(
            AssetKey(["customergauge", "non_responses"]), limit=10
        ).records
    assert len(records) == 1


def test_a_sigkilled_holder_never_blocks_the_next_writer(simulator, control, tmp_path):
    home, lake = new_home(tmp_path), tmp_path / "lake"
    slow_day(control)
    doomed = start_writer(simulator, home, lake, DAY)
    wait_until_holding(lake, DAY, doomed)
    staging = lake / "customergauge" / "_staging" / "non_responses"
    wait_until_pages_in(staging, control, doomed)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=30)
    assert list(staging.glob(f"{DAY.isoformat()}.*.tmp")), "the killed writer left no staging file"

    control.configure(latency_ms=0)
    after = materialize_cli(simulator, home, lake, "--partition", DAY.isoformat())
    assert after.returncode == 0, after.stderr[-3000:]
    assert_day_equals_truth(lake, control, DAY)
    assert not list(staging.glob("*.tmp"))  # the dead writer's staging file was cleared
