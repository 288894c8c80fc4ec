"""One empty page served by mistake mid-day ("done" too early, issue 21) must not cut a day:
a whole fetch asks again where its end is doubtful and pages on when records come after
all. Real runs of the asset against the simulator's `empty_page` fault."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from dagster import AssetRecordsFilter

from cg_assets import clock
from cg_assets.customergauge.endpoints import RESPONSES
from cg_assets.defs.assets import asset_key_for
from cg_assets.defs.checks import NO_UNEXPLAINED_SHRINK, LakeVerdict, lake_verdicts
from cg_assets.defs.day_status import full_scan, table_report
from cg_assets.defs.resources import LakeResource
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, TEST_PER_PAGE, in_memory_instance, make_resource
from cg_assets_tests.test_privacy.helpers import sync
from cg_assets_tests.test_reliability.helpers import (
    assert_file_equals,
    failure_text,
    latest_metadata,
    run_asset,
    truth,
)
from cg_assets_tests.truth import (
    assert_responses_day_equals_truth,
    day_file,
    metadata_values,
    response_truth_rows,
)
from cg_simulator import SimulatorControl, SimulatorServer

DAY = SIM_START + dt.timedelta(days=2)
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)  # a catch-up
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0)  # a whole fetch
PASS = {"kind": "slow", "seconds": 0}
GLITCH = {"kind": "empty_page"}


def lake(tmp_path) -> LakeResource:
    return LakeResource(root=str(tmp_path / "lake"))


@pytest.fixture
def resources(simulator: SimulatorServer, tmp_path) -> dict[str, Any]:
    return {"customergauge": make_resource(simulator), "lake": lake(tmp_path)}


@pytest.mark.parametrize("glitch_page", [1, 2, 3])
def test_a_false_end_in_a_whole_fetch_over_a_good_file_cuts_nothing(
    control: SimulatorControl, resources, tmp_path, glitch_page
):
    instance = in_memory_instance()
    assert run_asset(instance, resources, YOUNG, DAY).success
    pages = -(-len(truth(control, DAY)) // TEST_PER_PAGE)
    assert pages >= 3  # the glitch falls before the day's last page
    control.add_records(DAY, 3)
    control.inject(*[PASS] * (glitch_page - 1), GLITCH)

    assert run_asset(instance, resources, OLD, DAY).success

    assert_file_equals(tmp_path / "lake", DAY, truth(control, DAY), "a false end cut the day")
    md = latest_metadata(instance, DAY)
    assert md is not None and md["fetch"] == "full" and md["rows_removed"] == 0
    assert md["false_ends"] == 1 and md["end_rechecks"] >= 1


@pytest.mark.parametrize("glitch_page", [1, 2])
def test_a_false_end_in_the_first_fetch_of_a_new_lake_cuts_nothing(
    control: SimulatorControl, resources, tmp_path, glitch_page
):
    instance = in_memory_instance()
    control.inject(*[PASS] * (glitch_page - 1), GLITCH)

    assert run_asset(instance, resources, OLD, DAY).success

    assert_file_equals(tmp_path / "lake", DAY, truth(control, DAY), "a false end cut the day")
    md = latest_metadata(instance, DAY)
    assert md is not None and md["false_ends"] == 1


def test_a_real_end_after_a_short_page_costs_no_extra_request(
    control: SimulatorControl, resources, tmp_path
):
    instance = in_memory_instance()
    rows = len(truth(control, DAY))
    assert rows % TEST_PER_PAGE  # the last page with data is short
    assert run_asset(instance, resources, OLD, DAY).success

    md = latest_metadata(instance, DAY)
    assert md is not None and md["end_rechecks"] == 0 and md["false_ends"] == 0
    assert md["api_requests"] == -(-rows // TEST_PER_PAGE) + 1  # the pages and the empty one


def test_rows_that_really_left_cost_one_more_request_and_leave(
    control: SimulatorControl, resources, tmp_path
):
    instance = in_memory_instance()
    assert run_asset(instance, resources, YOUNG, DAY).success
    answered = control.respond_records(day=DAY, count=3)  # they leave non-responses

    assert run_asset(instance, resources, OLD, DAY).success

    assert_file_equals(tmp_path / "lake", DAY, truth(control, DAY), "answered rows stayed")
    md = latest_metadata(instance, DAY)
    assert md is not None and md["rows_removed"] == len(answered) == 3
    assert md["end_rechecks"] == 1 and md["false_ends"] == 0


# -- a table whose rows never leave (responses): a shrink is checked by a second fetch --


SMALL_PAGES = 5  # a day's responses are a few dozen: small pages, so they cross several


@pytest.fixture
def small_pages(simulator: SimulatorServer, tmp_path) -> dict[str, Any]:
    return {"customergauge": make_resource(simulator, per_page=SMALL_PAGES), "lake": lake(tmp_path)}


def sync_responses(
    instance: Any, resources: dict[str, Any], settings: LoadSettings, full_refresh: bool = False
) -> Any:
    return sync(
        instance,
        resources,
        DAY,
        settings=settings,
        endpoint=RESPONSES,
        full_refresh=full_refresh,
        raise_on_error=False,
    )


def responses_md(instance: Any) -> dict[str, Any]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key_for(RESPONSES), asset_partitions=[DAY.isoformat()]),
        limit=1,
    ).records
    return metadata_values(records[0].asset_materialization.metadata)


def shrink_check(instance: Any) -> LakeVerdict:
    """no_unexplained_shrink as the settle sensor (or a run by hand) judges it: from a scan
    of the days, not inside the sync run."""
    key = asset_key_for(RESPONSES)
    now = clock.utc_now()
    scan = full_scan(instance, [key], OLD, now)
    verdicts = lake_verdicts(key, table_report(scan, key, OLD, now), scan.state.closed_through)
    return next(v for v in verdicts if v.check_name == NO_UNEXPLAINED_SHRINK)


def test_a_response_missing_from_one_fetch_fails_the_day_and_keeps_its_file(
    control: SimulatorControl, small_pages, tmp_path
):
    instance = in_memory_instance()
    control.respond_records(day=DAY, count=12)
    assert sync_responses(instance, small_pages, YOUNG).success
    before = day_file(tmp_path / "lake", DAY, "responses").read_bytes()
    rows = len(response_truth_rows(control, DAY))
    assert rows > SMALL_PAGES
    control.inject({"kind": "missing_record"})  # page 1 of the settle, not of the second fetch

    result = sync_responses(instance, small_pages, OLD)

    assert not result.success
    text = failure_text(result)
    assert "1 row(s) of the day's file were missing from one whole fetch" in text, text
    assert day_file(tmp_path / "lake", DAY, "responses").read_bytes() == before
    assert sync_responses(instance, small_pages, OLD).success  # the next run heals it
    assert assert_responses_day_equals_truth(tmp_path / "lake", control, DAY) == rows


def test_a_response_gone_from_both_fetches_is_published_and_flagged(
    control: SimulatorControl, small_pages, tmp_path
):
    instance = in_memory_instance()
    control.respond_records(day=DAY, count=12)
    assert sync_responses(instance, small_pages, YOUNG).success
    rows = len(response_truth_rows(control, DAY))
    pages = -(-rows // SMALL_PAGES)
    # The settle's pages, its empty page and the end asked again, then the second fetch's
    # first page: the same record is missing from both fetches.
    control.inject({"kind": "missing_record"}, *[PASS] * (pages + 1), {"kind": "missing_record"})

    result = sync_responses(instance, small_pages, OLD)

    assert result.success
    md = responses_md(instance)
    assert md["unexplained_removals"] == 1 and md["rows_removed"] == 1
    check = shrink_check(instance)
    assert not check.passed and DAY.isoformat() in check.description
    # The day is closed (past its window): it stays flagged until it is fetched again.
    assert sync_responses(instance, small_pages, OLD).success
    assert not shrink_check(instance).passed
    assert sync_responses(instance, small_pages, OLD, full_refresh=True).success
    assert shrink_check(instance).passed
    assert assert_responses_day_equals_truth(tmp_path / "lake", control, DAY) == rows
