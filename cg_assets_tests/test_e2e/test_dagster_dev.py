"""End to end: the simulator and `dagster dev` as subprocesses, runs launched over GraphQL the
way the UI launches them, the lake checked against the simulator's truth, and each day's
cursor checked between the instance's materialization and the Parquet file's footer."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
)
from dagster._core.instance.ref import InstanceRef
from dagster_graphql import DagsterGraphQLClient

from cg_assets.lake.parquet_lake import KV_CURSOR
from cg_assets_tests.test_e2e.stack import Stack, graphql, running_stack
from cg_assets_tests.truth import assert_day_equals_truth, day_file, metadata_values
from cg_simulator import SimulatorControl

pytestmark = [pytest.mark.e2e, pytest.mark.stack]

JOB = "customergauge_sync_job"
ASSET_PATH = ["customergauge", "non_responses"]
KEY = AssetKey(ASSET_PATH)
SIM_ARGS = ["--records", "600", "--start", "2026-10-01", "--end", "2026-10-05", "--seed", "11"]
CG_SETTINGS = {
    "CG_START_DATE": "2026-10-01",
    "CG_SETTLE_AFTER_HOURS": "8784",  # the test days stay young: runs keep a cursor
    "CG_PER_PAGE": "50",
    "CG_AUTOMATION": "off",
    "CG_BACKOFF_SECONDS": "0.01",
}
SINGLE_DAY = dt.date(2026, 10, 2)
RANGE = [dt.date(2026, 10, 3), dt.date(2026, 10, 4), dt.date(2026, 10, 5)]
RUN_TIMEOUT = 300.0  # generous: waiting only, the machine is shared
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e"), SIM_ARGS, CG_SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def repository_name(stack: Stack) -> str:
    data = graphql(
        stack.graphql_url,
        "query { repositoriesOrError { ... on RepositoryConnection "
        "{ nodes { name location { name } pipelines { name } } } } }",
    )
    names = [
        n["name"]
        for n in data["repositoriesOrError"]["nodes"]
        if n["location"]["name"] == "cg_assets" and JOB in {p["name"] for p in n["pipelines"]}
    ]
    assert names == ["__repository__"], names  # what `Definitions` is served as
    return names[0]


@pytest.fixture(scope="module")
def client(stack: Stack) -> DagsterGraphQLClient:
    return DagsterGraphQLClient(stack.host, port_number=stack.port, timeout=60)


@pytest.fixture
def control(stack: Stack) -> Iterator[SimulatorControl]:
    with SimulatorControl(stack.sim_url) as ctl:
        yield ctl


@pytest.fixture
def instance(stack: Stack) -> Iterator[DagsterInstance]:
    """The instance `dagster dev` writes, opened read-side in this process."""
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(stack.dagster_home))) as inst:
        yield inst


def wait_for_run(client: DagsterGraphQLClient, run_id: str) -> DagsterRunStatus:
    deadline = time.monotonic() + RUN_TIMEOUT
    status = client.get_run_status(run_id)
    while status not in DONE:
        assert time.monotonic() < deadline, f"run {run_id} still {status} after {RUN_TIMEOUT} s"
        time.sleep(0.25)
        status = client.get_run_status(run_id)
    return status


def run_messages(stack: Stack, run_id: str, last: int = 25) -> str:
    """The run's last log messages, for a failure's message."""
    data = graphql(
        stack.graphql_url,
        """query($runId: ID!) { logsForRun(runId: $runId, limit: 1000) {
             ... on EventConnection { events { __typename ... on MessageEvent { level message } } }
             ... on PythonError { message } } }""",
        {"runId": run_id},
    )["logsForRun"]
    events = data.get("events", [])
    return "\n".join(f"{e.get('level')} {e.get('message')}" for e in events[-last:]) or str(data)


def latest_materialization(instance: DagsterInstance, day: dt.date) -> tuple[str, dict[str, Any]]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=KEY, asset_partitions=[day.isoformat()]), limit=1
    ).records
    assert records, f"no materialization of {day} in the instance"
    md = records[0].asset_materialization.metadata
    return records[0].run_id, metadata_values(md)


def file_cursor(lake_root: Path, day: dt.date) -> Any:
    kv = pq.read_metadata(day_file(lake_root, day)).metadata
    return json.loads(kv[KV_CURSOR.encode()])


def check_day(
    stack: Stack, instance: DagsterInstance, control: SimulatorControl, day: dt.date
) -> tuple[str, Any]:
    """The day's file equals the truth; its materialization describes that file."""
    rows = assert_day_equals_truth(stack.lake_root, control, day)
    assert rows > 50, f"{day}: {rows} rows, fewer than one page"  # several pages were read
    run_id, md = latest_materialization(instance, day)
    cursor = file_cursor(stack.lake_root, day)
    assert isinstance(cursor, int)
    assert md["cursor"] == cursor, f"{day}: materialization {md['cursor']!r}, file {cursor!r}"
    assert md["dagster/row_count"] == rows
    assert sum(md["status_counts"].values()) == rows
    assert md["mode"] == "catch-up" and md["fetch"] == "full" and md["settled"] is False
    assert md["path"].endswith(f"date={day.isoformat()}/data.parquet")
    return run_id, cursor


def test_one_partition_launched_like_the_ui(stack, client, repository_name, control, instance):
    with stack.logs_on_failure():
        run_id = client.submit_job_execution(
            JOB,
            repository_location_name="cg_assets",
            repository_name=repository_name,
            tags={"dagster/partition": SINGLE_DAY.isoformat()},
        )
        status = wait_for_run(client, run_id)
        assert status == DagsterRunStatus.SUCCESS, run_messages(stack, run_id)

        materialized_by, _ = check_day(stack, instance, control, SINGLE_DAY)
        assert materialized_by == run_id
        # the run materialized the requested day of each table, and no other day
        records = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
        ).records
        materialized = sorted(
            (r.event_log_entry.dagster_event.asset_key.to_user_string(), r.partition_key)
            for r in records
        )
        assert materialized == [
            ("customergauge/non_responses", SINGLE_DAY.isoformat()),
            ("customergauge/responses", SINGLE_DAY.isoformat()),
        ]


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      numPartitions
      runs { runId status tags { key value } }
      error { message }
    }
    ... on Error { message }
  }
}
"""


def test_range_backfill_launched_like_the_ui_is_one_run_with_a_cursor_per_day(
    stack, control, instance
):
    with stack.logs_on_failure():
        launched = graphql(
            stack.graphql_url,
            LAUNCH_BACKFILL,
            {
                "params": {
                    "partitionNames": [d.isoformat() for d in RANGE],
                    "assetSelection": [{"path": ASSET_PATH}],
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            backfill = graphql(stack.graphql_url, BACKFILL_STATUS, {"id": backfill_id})[
                "partitionBackfillOrError"
            ]
            assert backfill["__typename"] == "PartitionBackfill", backfill
            if backfill["status"] in BACKFILL_DONE:
                break
            assert time.monotonic() < deadline, f"backfill still {backfill} after {RUN_TIMEOUT} s"
            time.sleep(0.25)

        runs = backfill["runs"]
        details = "\n".join(run_messages(stack, r["runId"]) for r in runs)
        assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{details}"
        # BackfillPolicy.single_run(): the whole range in one run
        assert len(runs) == 1, runs
        (run,) = runs
        assert run["status"] == "SUCCESS", details
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["dagster/backfill"] == backfill_id
        assert tags["dagster/asset_partition_range_start"] == RANGE[0].isoformat()
        assert tags["dagster/asset_partition_range_end"] == RANGE[-1].isoformat()

        cursors = []
        for day in RANGE:
            materialized_by, cursor = check_day(stack, instance, control, day)
            assert materialized_by == run["runId"]
            cursors.append(cursor)
        # each day recorded its own cursor, not one copied across the range
        assert len(set(cursors)) == len(cursors), cursors
