"""The documented examples (docs/lake.md, docs/getting-started.md), word for word: the lake read as the demo leaves it
(`data/demo-lake/`, from the project folder), and the initial load from the command line,
which loads both tables in one run."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetRecordsFilter, DagsterInstance, materialize
from dagster._core.instance.ref import InstanceRef

from cg_assets.customergauge.endpoints import NON_RESPONSES, RESPONSES
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.funnel import FUNNEL_KEY, build_funnel_asset
from cg_assets.defs.io_managers import LAKE_IO_MANAGER_KEY, LakeFrameIOManager
from cg_assets.defs.resources import LakeResource
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, make_resource
from cg_assets_tests.truth import assert_day_equals_truth, assert_responses_day_equals_truth
from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

ROOT = Path(__file__).resolve().parents[2]
LAKE_DOC = (ROOT / "docs" / "lake.md").read_text()  # where the README sends a reader
GETTING_STARTED = (ROOT / "docs" / "getting-started.md").read_text()
DEMO_LAKE = Path("data") / "demo-lake"  # the demo's lake, relative to the project folder
DAYS = (dt.date(2026, 10, 2), dt.date(2026, 10, 3))
SETTINGS = LoadSettings(start_date=SIM_START, settle_after_hours=8784)


def section(title: str) -> str:
    start = LAKE_DOC.index(f"\n{title}\n")
    end = LAKE_DOC.index("\n## ", start + len(title) + 2)
    return LAKE_DOC[start:end]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


READING_EXAMPLES = code_blocks(section("## Reading the lake"), "python")


def test_the_reading_examples_are_python_that_reads_the_demos_lake():
    assert len(READING_EXAMPLES) == 4  # polars and DuckDB, one table and both
    assert not code_blocks(section("## Reading the lake"), "sql")  # no `duckdb` command
    assert all("data/demo-lake/" in block for block in READING_EXAMPLES)
    assert sum("import duckdb" in block for block in READING_EXAMPLES) == 2


@pytest.fixture
def project_folder(tmp_path, simulator, control, instance):
    """A folder laid out as the project after the demo: both tables and the funnel of a
    few days in data/demo-lake/, synced from the simulator and answered in part."""
    lake = tmp_path / DEMO_LAKE
    for day in DAYS:
        control.respond_records(day=day, count=6)
    resources = {
        "customergauge": make_resource(simulator),
        "lake": LakeResource(root=str(lake)),
        LAKE_IO_MANAGER_KEY: LakeFrameIOManager(root=str(lake)),
    }
    assets = [build_sync_asset(e, SETTINGS) for e in (NON_RESPONSES, RESPONSES)]
    for day in DAYS:
        partition = day.isoformat()
        assert materialize(
            assets, partition_key=partition, instance=instance, resources=resources
        ).success
        assert materialize(
            [*assets, build_funnel_asset(SETTINGS)],
            selection=[FUNNEL_KEY],
            partition_key=partition,
            instance=instance,
            resources=resources,
        ).success
    return tmp_path


@pytest.mark.parametrize("number", range(len(READING_EXAMPLES)))
def test_each_reading_example_runs_word_for_word_after_the_demo(project_folder, number):
    done = subprocess.run(
        [sys.executable, "-c", READING_EXAMPLES[number]],
        cwd=project_folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # the NPS example imports cg_assets
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # a table of the synced days: polars prints its shape, DuckDB its rows
    assert "2026-10-02" in done.stdout and "2026-10-03" in done.stdout, done.stdout


def initial_load_assets() -> str:
    """The `--assets` of the documented initial load from the command line."""
    (command,) = [b for b in code_blocks(GETTING_STARTED, "bash") if "dg launch" in b]
    words = shlex.split(command.replace("\\\n", " "), comments=True)
    return words[words.index("--assets") + 1]


def test_the_initial_load_from_the_command_line_names_both_tables():
    assert set(initial_load_assets().split(",")) == {
        "customergauge/non_responses",
        "customergauge/responses",
    }


@pytest.mark.stack
def test_the_initial_load_from_the_command_line_fills_both_tables_in_one_run(
    simulator, control, tmp_path
):
    home, lake = tmp_path / "home", tmp_path / "lake"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for day in DAYS:
        control.respond_records(day=day, count=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CG_", "DAGSTER_"))}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "CG_LAKE_ROOT": str(lake),
            "CG_API_URL": simulator.url,
            "CG_AUTH_URL": simulator.token_url,
            "CG_CLIENT_ID": DEMO_CLIENT_ID,
            "CG_CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "CG_START_DATE": SIM_START.isoformat(),
            "VIRTUAL_ENV": str(ROOT / ".venv"),
        }
    )
    dg = str(Path(sys.executable).with_name("dg"))
    span = f"{DAYS[0].isoformat()}...{DAYS[-1].isoformat()}"
    done = subprocess.run(
        [dg, "launch", "--assets", initial_load_assets(), "--partition-range", span],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for day in DAYS:
        assert_day_equals_truth(lake, control, day)
        assert_responses_day_equals_truth(lake, control, day)
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        assert len(instance.get_run_records()) == 1  # both tables, every day: one run
        for endpoint in (NON_RESPONSES, RESPONSES):
            recorded = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=asset_key_for(endpoint)), limit=10
            ).records
            assert sorted(r.partition_key for r in recorded) == [d.isoformat() for d in DAYS]
