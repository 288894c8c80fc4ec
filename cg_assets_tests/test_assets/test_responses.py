"""The responses asset beside non-responses: over HTTP to the simulator, on a real instance,
read back from Parquet."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow.parquet as pq
import pytest
from dagster import AssetRecordsFilter, DagsterInstance, materialize

from cg_assets.customergauge.endpoints import NON_RESPONSES, RESPONSES
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, with_lake_io_manager
from cg_assets_tests.truth import (
    assert_day_equals_truth,
    assert_responses_day_equals_truth,
    day_file,
    response_truth_rows,
    truth_rows,
)
from cg_simulator import SimulatorControl

DAY = dt.date(2026, 10, 2)
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)


@pytest.fixture(autouse=True, params=["answer", "cgid"])
def responses_order(request: pytest.FixtureRequest, control: SimulatorControl) -> str:
    """Every test here runs under both orders the responses cursor may follow."""
    control.configure(responses_order=request.param)
    return request.param


def run(
    instance: DagsterInstance,
    resources: dict,
    settings: LoadSettings = YOUNG,
    *,
    day: dt.date = DAY,
    full_refresh: bool = False,
) -> Any:
    assets = [build_sync_asset(e, settings) for e in (NON_RESPONSES, RESPONSES)]
    config = {"config": {"full_refresh": full_refresh}}
    return materialize(
        assets,
        partition_key=day.isoformat(),
        instance=instance,
        resources=with_lake_io_manager(resources),
        run_config={
            "ops": {"customergauge__non_responses": config, "customergauge__responses": config}
        },
    )


def latest_metadata(instance: DagsterInstance, day: dt.date = DAY) -> dict[str, Any]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key_for(RESPONSES), asset_partitions=[day.isoformat()]),
        limit=1,
    ).records
    assert records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def keys_in(lake_root, table: str, day: dt.date = DAY) -> set[int]:
    table_ = pq.read_table(day_file(lake_root, day, table), columns=["number_customergauge"])
    return set(table_.column(0).to_pylist())


def test_a_responses_day_equals_the_truth_record_for_record(
    instance, resources, control: SimulatorControl, lake_root
):
    answered = control.respond_records(day=DAY, count=12)
    run(instance, resources)
    rows = assert_responses_day_equals_truth(lake_root, control, DAY)
    assert rows == 12 and keys_in(lake_root, "responses") == set(answered)
    md = latest_metadata(instance)
    assert md["dagster/row_count"] == 12 and md["date_field"] == "date_sent"
    assert md["status_counts"] == {}  # responses declare no status column
    # the preview has keys and dates, never personal data or answers
    preview = md["preview"]
    assert "date_survey_response" in preview and "@" not in preview and "comment" not in preview
    # the simulator was asked for the four expansions the public client sends
    query = control.stats()["requests"][-1]["query"]
    assert sorted(query["with[]"]) == ["drivers", "properties", "questions", "tags"]


def test_fields_the_code_does_not_know_survive_at_the_top_and_inside_properties(
    instance, resources, control, lake_root
):
    control.respond_records(day=DAY, count=3)
    run(instance, resources)
    table = pq.read_table(day_file(lake_root, DAY, "responses"))
    truth = {
        r["number_customergauge"]: r for r in control.truth("date_sent", DAY, DAY, "responses")
    }
    for row in table.to_pylist():
        extra = json.loads(row["extra_fields"])
        record = truth[row["number_customergauge"]]
        # the answer is typed; questions and tags have no documented shape: kept
        assert row["nps"] == record["nps"] and row["comment"] == record["comment"]
        assert "nps" not in extra and "comment" not in extra
        assert extra["questions"] == record["questions"] and extra["tags"] == record["tags"]
        # nested: a key of each properties item that the row does not declare
        assert [p["field_id"] for p in extra["properties"]] == [
            p["field_id"] for p in record["properties"]
        ]
        assert row["drivers"] == [{"label": d["label"]} for d in record["drivers"]]
    assert table.schema.field("drivers").type == RESPONSES.decoder().schema.field("drivers").type


def test_a_full_refresh_moves_answered_records_from_one_table_to_the_other(
    instance, resources, control, lake_root
):
    run(instance, resources)
    before = keys_in(lake_root, "non_responses")
    assert keys_in(lake_root, "responses") == set()
    answered = control.respond_records(sorted(before)[:7])
    assert len(answered) == 7

    run(instance, resources, full_refresh=True)

    non_responses = keys_in(lake_root, "non_responses")
    responses = keys_in(lake_root, "responses")
    assert responses == set(answered)
    assert not non_responses & responses  # none is in both
    assert non_responses | responses == before  # and none is lost
    assert_day_equals_truth(lake_root, control, DAY)
    assert_responses_day_equals_truth(lake_root, control, DAY)


def test_a_later_sync_of_responses_sees_old_invitations_answered_since(
    instance, resources, control, lake_root, responses_order
):
    # In CGID order an answer to the day's oldest invitation sits below the stored cursor,
    # so an open responses day is fetched whole, never caught up from its cursor.
    first = control.respond_records(day=DAY, count=3)
    run(instance, resources)
    remaining = sorted(truth_rows(control, DAY))
    later = control.respond_records([remaining[0]])  # the day's oldest invitation
    run(instance, resources)
    md = latest_metadata(instance)
    assert md["fetch"] == "full" and md["rows_added"] == 1 and md["stage"] == "open"
    assert keys_in(lake_root, "responses") == set(first) | set(later)
    assert_responses_day_equals_truth(lake_root, control, DAY)


def test_responses_can_be_partitioned_by_the_day_they_were_answered(
    instance, resources, control, lake_root
):
    answer_day = dt.date(2026, 10, 4)
    answered = control.respond_records(
        day=DAY, count=4, at=dt.datetime.combine(answer_day, dt.time(9, 30))
    )
    by_answer = LoadSettings(
        start_date=SIM_START, settle_after_hours=8784, responses_date_field="date_survey_response"
    )
    run(instance, resources, by_answer, day=answer_day)
    assert keys_in(lake_root, "responses", answer_day) == set(answered)
    assert set(response_truth_rows(control, answer_day, "date_survey_response")) == set(answered)
    assert_responses_day_equals_truth(lake_root, control, answer_day, "date_survey_response")
    assert latest_metadata(instance, answer_day)["date_field"] == "date_survey_response"
    # non-responses keep their own setting (CG_DATE_FIELD): that day's sent invitations
    assert_day_equals_truth(lake_root, control, answer_day)
