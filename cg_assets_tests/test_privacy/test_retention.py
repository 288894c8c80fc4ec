"""CG_PII_RETENTION_DAYS over HTTP to the simulator, on a real instance and lake: the
retention job hashes (or nulls) aged days in place, leaves younger days alone, honours the
writer lock, and the `pii_retention` check fails exactly while an aged day holds clear values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
from dagster import AssetCheckKey, AssetSelection, Definitions, define_asset_job

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.privacy_retention import RETENTION_CHECK, build_retention_check
from cg_assets.defs.resources import LakeResource
from cg_assets.lake.parquet_lake import KV_CURSOR, ParquetLake
from cg_assets.privacy.resource import PrivacyResource
from cg_assets_tests.conftest import SIM_END, SIM_START, with_lake_io_manager
from cg_assets_tests.test_privacy.helpers import (
    KEY_A,
    YOUNG,
    footer,
    independent_hmac,
    latest_metadata,
    retention_job_result,
    sync,
    truth_by_key,
)
from cg_assets_tests.truth import day_file

DAYS = [SIM_START + dt.timedelta(days=i) for i in range((SIM_END - SIM_START).days + 1)]
LAST_AGED = SIM_START + dt.timedelta(days=2)  # days up to this one are past retention
AGED = [d for d in DAYS if d <= LAST_AGED]
YOUNGER = [d for d in DAYS if d > LAST_AGED]


def retention_days() -> int:
    """The retention that makes AGED past it today and the other days not (days in UTC)."""
    return (dt.datetime.now(dt.timezone.utc).date() - LAST_AGED).days - 1


def resources(cg_resource, root: Path, **privacy) -> dict:
    return {
        "customergauge": cg_resource,
        "lake": LakeResource(root=str(root), privacy=PrivacyResource(**privacy)),
    }


def run_check(instance, res: dict) -> tuple[bool, dict]:
    """The pii_retention check run on its own, as from the UI."""
    check = build_retention_check(NON_RESPONSES, YOUNG)
    defs = Definitions(
        assets=[build_sync_asset(NON_RESPONSES, YOUNG)],
        asset_checks=[check],
        jobs=[define_asset_job("check_only", selection=AssetSelection.checks(check))],
        resources=with_lake_io_manager(res),
    )
    result = defs.resolve_job_def("check_only").execute_in_process(instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == RETENTION_CHECK
    return evaluation.passed, {k: v.value for k, v in evaluation.metadata.items()}


def test_retention_hashes_aged_days_in_place_and_the_check_follows(
    instance, cg_resource, control, lake_root
):
    sync(instance, resources(cg_resource, lake_root, key=KEY_A), SIM_START, SIM_END)
    before = {d: pq.read_table(day_file(lake_root, d)) for d in DAYS}
    cursors = {d: footer(day_file(lake_root, d))[KV_CURSOR] for d in DAYS}
    aged = resources(cg_resource, lake_root, key=KEY_A, retention_days=retention_days())

    passed, md = run_check(instance, aged)
    assert not passed
    assert md["days_with_clear_values"] == [d.isoformat() for d in AGED]

    result = retention_job_result(instance, aged)

    assert result.success
    truth = truth_by_key(control, SIM_START, SIM_END)
    for day in AGED:
        path = day_file(lake_root, day)
        assert footer(path)["cg_assets.pii"] == "hashed"
        assert footer(path)[KV_CURSOR] == cursors[day]  # the rest of the footer is kept
        table = pq.read_table(path)
        assert table.num_rows == before[day].num_rows
        assert table.schema.equals(before[day].schema, check_metadata=False)
        for row in table.to_pylist():
            record = truth[row["number_customergauge"]]
            assert row["email"] == independent_hmac(KEY_A, record["email"].lower())
            assert row["contact_last_name"] == independent_hmac(
                KEY_A, record["contact"]["last_name"].casefold()
            )
            assert row["status"] == record["status"]
    for day in YOUNGER:
        assert footer(day_file(lake_root, day))["cg_assets.pii"] == "clear"
        assert pq.read_table(day_file(lake_root, day)).equals(before[day])
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    observed = {
        e.asset_observation_data.asset_observation.partition
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert observed == {d.isoformat() for d in AGED}
    assert run_check(instance, aged)[0]

    # A second pass has nothing to do; a full refresh of an aged day stays hashed.
    again = retention_job_result(instance, aged)
    assert not [e for e in again.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    sync(instance, aged, AGED[0], full_refresh=True)
    assert footer(day_file(lake_root, AGED[0]))["cg_assets.pii"] == "hashed"
    assert latest_metadata(instance, AGED[0])["pii"] == "hashed"
    sync(instance, aged, YOUNGER[0], full_refresh=True)
    assert latest_metadata(instance, YOUNGER[0])["pii"] == "clear"


def test_retention_in_drop_mode_nulls_aged_days(instance, cg_resource, control, lake_root):
    sync(instance, resources(cg_resource, lake_root, key=KEY_A, mode="hash"), SIM_START, SIM_END)
    dropping = resources(cg_resource, lake_root, mode="drop", retention_days=retention_days())
    assert retention_job_result(instance, dropping).success
    for day in AGED:
        table = pq.read_table(day_file(lake_root, day))
        assert footer(day_file(lake_root, day))["cg_assets.pii"] == "dropped"
        assert table.column("email").null_count == table.num_rows
    for day in YOUNGER:
        assert footer(day_file(lake_root, day))["cg_assets.pii"] == "hashed"


def test_retention_leaves_a_day_another_writer_holds_and_the_check_says_so(
    instance, cg_resource, control, lake_root
):
    sync(instance, resources(cg_resource, lake_root, key=KEY_A), SIM_START, SIM_END)
    aged = resources(cg_resource, lake_root, key=KEY_A, retention_days=retention_days())
    held = AGED[1]
    with ParquetLake(str(lake_root)).day_lock(NON_RESPONSES.name, held, "a test writer"):
        result = retention_job_result(instance, aged)
    assert result.success
    assert footer(day_file(lake_root, held))["cg_assets.pii"] == "clear"
    for day in AGED:
        if day != held:
            assert footer(day_file(lake_root, day))["cg_assets.pii"] == "hashed"
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["days_with_clear_values"].value == [held.isoformat()]
    assert retention_job_result(instance, aged).get_asset_check_evaluations()[0].passed


def latest_retention_evaluation(instance):
    key = AssetCheckKey(asset_key_for(NON_RESPONSES), RETENTION_CHECK)
    record = instance.get_latest_asset_check_evaluation_record(key)
    return record.event.asset_check_evaluation if record else None


def test_without_a_retention_a_sync_records_the_check_as_nothing_to_judge(
    instance, cg_resource, lake_root
):
    # Before, the check said "Not Evaluated" on every sync asset until the nightly job ran.
    sync(instance, resources(cg_resource, lake_root), SIM_START)
    evaluation = latest_retention_evaluation(instance)
    assert evaluation is not None and evaluation.passed
    assert "nothing to judge" in evaluation.description
    assert evaluation.metadata["days_past_retention"].value == 0


def test_with_a_retention_a_sync_leaves_the_check_to_the_retention_job(
    instance, cg_resource, lake_root
):
    aged = resources(cg_resource, lake_root, key=KEY_A, retention_days=retention_days())
    sync(instance, aged, SIM_START)
    assert latest_retention_evaluation(instance) is None  # judged by the job, not faked here
    retention_job_result(instance, aged)
    assert latest_retention_evaluation(instance) is not None
