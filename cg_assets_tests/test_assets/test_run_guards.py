"""The run-start guards (cg_assets/defs/run_guards.py): no throw-away instance, and one API per
lake and per instance, on real instances, real simulators over loopback, and real lakes."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import (
    AssetObservation,
    AssetRecordsFilter,
    DagsterInstance,
    instance_for_test,
    materialize,
)

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.run_guards import ADOPT_VARIABLE, api_fingerprint, instance_fingerprint
from cg_assets.lake.origin import FINGERPRINT_KEY, ORIGIN_FILE, read_origin
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import (
    SIM_END,
    SIM_RECORDS,
    SIM_START,
    make_resource,
    with_lake_io_manager,
)
from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, running_simulator

KEY = asset_key_for(NON_RESPONSES)
DAY = dt.date(2026, 10, 2)
SETTINGS = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def sync(
    instance: DagsterInstance,
    simulator,
    lake_root: Path,
    day: dt.date = DAY,
    adopt_api: str | None = None,
    **credentials,
):
    return materialize(
        [build_sync_asset(NON_RESPONSES, SETTINGS)],
        partition_key=day.isoformat(),
        instance=instance,
        resources=with_lake_io_manager(
            {
                "customergauge": make_resource(simulator, **credentials),
                "lake": LakeResource(root=str(lake_root), adopt_api=adopt_api),
            }
        ),
        raise_on_error=False,
    )


def failure_text(result) -> str:
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    return "\n".join(str(e) + str(e.cause or "") for e in errors if e is not None)


def requests_to(simulator) -> int:
    from cg_simulator import SimulatorControl

    with SimulatorControl(simulator.url) as control:
        stats = control.stats()
    return stats["api_requests"] + stats["token_requests"]


def materializations(instance: DagsterInstance) -> int:
    return len(
        instance.fetch_materializations(AssetRecordsFilter(asset_key=KEY), limit=100).records
    )


@pytest.fixture
def other_api():
    """A second CustomerGauge API: another simulator, at another URL."""
    with running_simulator(records=SIM_RECORDS, start=SIM_START, end=SIM_END, seed=5) as server:
        yield server


def test_the_fingerprint_is_a_one_way_hash_of_the_url_and_the_client_id():
    one = api_fingerprint("https://api.eu.customergauge.com", "client-a")
    assert one == api_fingerprint("https://api.eu.customergauge.com/", "client-a")
    assert one != api_fingerprint("https://api.us.customergauge.com", "client-a")
    assert one != api_fingerprint("https://api.eu.customergauge.com", "client-b")
    assert "client-a" not in one and "customergauge" not in one


def test_a_run_on_a_throw_away_instance_refuses_and_writes_nothing(simulator, tmp_path):
    lake = tmp_path / "lake"
    result = sync(DagsterInstance.ephemeral(), simulator, lake)
    assert not result.success
    assert "DAGSTER_HOME is not set" in failure_text(result)
    # the message itself is the step's error, not the cause of Dagster's wrapper around it
    (step_failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = step_failure.event_specific_data.error
    assert error.cause is None and "SettingsError: DAGSTER_HOME is not set" in error.message
    assert not lake.exists() and requests_to(simulator) == 0


CLI_COMMANDS = {
    # the initial load from the command line (docs/getting-started.md), and Dagster's own CLI
    "dg launch": [str(Path(sys.executable).with_name("dg")), "launch", "--assets"],
    "dagster asset materialize": [
        DAGSTER,
        "asset",
        "materialize",
        "-m",
        "cg_assets.definitions",
        "--select",
    ],
}


@pytest.mark.stack
@pytest.mark.parametrize("command", sorted(CLI_COMMANDS))
def test_the_cli_without_dagster_home_refuses_and_writes_nothing(simulator, tmp_path, command):
    lake = tmp_path / "lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CG_", "DAGSTER_"))}
    env.update(
        {
            "CG_API_URL": simulator.url,
            "CG_AUTH_URL": simulator.token_url,
            "CG_CLIENT_ID": DEMO_CLIENT_ID,
            "CG_CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "CG_START_DATE": SIM_START.isoformat(),
            "CG_LAKE_ROOT": str(lake),
            "VIRTUAL_ENV": str(ROOT / ".venv"),
        }
    )
    done = subprocess.run(
        [*CLI_COMMANDS[command], "customergauge/non_responses", "--partition", DAY.isoformat()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Failure: SettingsError: DAGSTER_HOME is not set" in output
    assert "The above exception was caused by" not in output  # once per event, on top
    assert not lake.exists() and requests_to(simulator) == 0


def test_the_first_run_records_its_api_in_the_lake_and_the_instance(simulator, instance, tmp_path):
    lake = tmp_path / "lake"
    assert sync(instance, simulator, lake).success
    expected = api_fingerprint(simulator.url, DEMO_CLIENT_ID)
    assert read_origin(ParquetLake(str(lake))) == expected
    assert instance_fingerprint(instance, KEY) == expected
    assert (lake / "customergauge" / ORIGIN_FILE).is_file()
    assert ParquetLake(str(lake)).days(NON_RESPONSES.name) == [DAY]  # not a table's day
    assert sync(instance, simulator, lake).success  # the same API again: fine


def test_a_lake_written_from_another_api_refuses_the_run(simulator, other_api, tmp_path):
    lake = tmp_path / "lake"
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "first")) as first:
        assert sync(first, simulator, lake).success
    before = (lake / "customergauge" / "non_responses" / f"date={DAY}" / "data.parquet").stat()
    with instance_for_test(temp_dir=str(tmp_path / "second")) as second:
        result = sync(second, other_api, lake)
        text = failure_text(result)
        assert not result.success
        assert "CG_LAKE_ROOT=" in text and "another CustomerGauge API" in text
        assert "To start fresh" in text and f"{ADOPT_VARIABLE}=" in text
        assert materializations(second) == 0
        assert instance_fingerprint(second, KEY) is None  # nothing recorded either
    after = (lake / "customergauge" / "non_responses" / f"date={DAY}" / "data.parquet").stat()
    assert (before.st_mtime_ns, before.st_ino) == (after.st_mtime_ns, after.st_ino)
    assert requests_to(other_api) == 0


def test_an_instance_written_from_another_api_refuses_the_run(
    simulator, other_api, instance, tmp_path
):
    assert sync(instance, simulator, tmp_path / "lake").success
    fresh_lake = tmp_path / "fresh-lake"
    result = sync(instance, other_api, fresh_lake)
    text = failure_text(result)
    assert not result.success
    assert "DAGSTER_HOME=" in text and "holds cursors of customergauge/non_responses" in text
    assert not fresh_lake.exists() and requests_to(other_api) == 0
    assert materializations(instance) == 1


def test_moving_on_deliberately_takes_the_new_fingerprint_only(
    simulator, other_api, instance, tmp_path, monkeypatch
):
    lake = tmp_path / "lake"
    assert sync(instance, simulator, lake).success
    new = api_fingerprint(other_api.url, DEMO_CLIENT_ID)

    # CG_ADOPT_API in the project's defs.yaml: the lake resource's adopt_api
    assert not sync(instance, other_api, lake, adopt_api="0123456789abcdef").success  # another

    assert sync(instance, other_api, lake, adopt_api=new).success
    assert read_origin(ParquetLake(str(lake))) == new
    assert instance_fingerprint(instance, KEY) == new

    assert sync(instance, other_api, lake).success  # recorded: no adopt_api needed any more
    assert not sync(instance, simulator, lake).success  # and the old API is now the other one


@pytest.mark.parametrize(
    "typo", [{"client_id": "demo-clinet"}, {"client_secret": "not-the-secret"}], ids=str
)
def test_a_first_run_the_api_refuses_leaves_the_lake_and_the_instance_free(
    simulator, instance, tmp_path, typo
):
    lake = tmp_path / "lake"
    refused = sync(instance, simulator, lake, **typo)
    assert not refused.success and "401" in failure_text(refused)
    assert read_origin(ParquetLake(str(lake))) is None
    assert instance_fingerprint(instance, KEY) is None
    assert materializations(instance) == 0

    assert sync(instance, simulator, lake).success  # the typo fixed: nothing to refuse
    expected = api_fingerprint(simulator.url, DEMO_CLIENT_ID)
    assert read_origin(ParquetLake(str(lake))) == expected
    assert instance_fingerprint(instance, KEY) == expected


def test_an_instance_an_older_version_pinned_at_a_failed_first_run_is_free(
    simulator, instance, tmp_path
):
    # Earlier versions recorded the fingerprint as an observation before any request, so a
    # 401 under a typo'd client id tied the instance to that typo.
    typo = api_fingerprint(simulator.url, "demo-clinet")
    instance.report_runless_asset_event(
        AssetObservation(asset_key=KEY, metadata={FINGERPRINT_KEY: typo})
    )
    assert instance_fingerprint(instance, KEY) is None
    assert sync(instance, simulator, tmp_path / "lake").success
    assert instance_fingerprint(instance, KEY) == api_fingerprint(simulator.url, DEMO_CLIENT_ID)
