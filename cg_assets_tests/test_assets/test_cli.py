"""The asset from Dagster's command line (docs/getting-started.md), with a persistent instance."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetRecordsFilter, DagsterInstance

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for
from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.truth import assert_day_equals_truth, metadata_values
from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def materialize_cli(
    simulator, home: Path, lake: Path, *partition_args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    command, default_env = materialize_command(simulator, home, lake, *partition_args)
    env = env or default_env
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def start_cli(command: list[str], env: dict[str, str], *, output: bool = False) -> subprocess.Popen:
    """A `dagster` CLI process in its own process group (a kill reaches every child). Its
    output is kept only when asked for: an unread pipe would fill and block it."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def materialize_command(
    simulator, home: Path, lake: Path, *partition_args: str
) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CG_API_URL": simulator.url,
        "CG_AUTH_URL": simulator.token_url,
        "CG_CLIENT_ID": DEMO_CLIENT_ID,
        "CG_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "CG_START_DATE": SIM_START.isoformat(),
        "CG_SETTLE_AFTER_HOURS": "8784",
        "CG_PER_PAGE": "100",
        "CG_LAKE_ROOT": str(lake),
    }
    command = [
        DAGSTER,
        "asset",
        "materialize",
        "-m",
        "cg_assets.definitions",
        "--select",
        "customergauge/non_responses",
        *partition_args,
    ]
    return command, env


def test_a_partition_and_a_range_from_the_command_line(simulator, control, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    lake = tmp_path / "lake"

    one = materialize_cli(simulator, home, lake, "--partition", "2026-10-02")
    assert one.returncode == 0, one.stderr[-2000:]
    assert_day_equals_truth(lake, control, dt.date(2026, 10, 2))

    many = materialize_cli(simulator, home, lake, "--partition-range", "2026-10-03...2026-10-05")
    assert many.returncode == 0, many.stderr[-2000:]
    with _instance(home) as instance:
        for day in ("2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"):
            assert_day_equals_truth(lake, control, dt.date.fromisoformat(day))
            record = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=asset_key_for(NON_RESPONSES), asset_partitions=[day]),
                limit=1,
            ).records[0]
            assert isinstance(metadata_values(record.asset_materialization.metadata)["cursor"], int)
        runs = instance.get_run_records()
        assert len(runs) == 2  # the range was one run


def _instance(home: Path) -> DagsterInstance:
    from dagster._core.instance.ref import InstanceRef

    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
