"""One empty page served by mistake mid-day ("done" too early, issue 21) must not cut a day:
a whole fetch asks again where its end is doubtful and pages on when records come after
all. Real runs of the asset against the simulator's `empty_page` fault."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from cg_assets.defs.resources import LakeResource
from cg_assets.settings import LoadSettings
from cg_assets.simulator import SimulatorControl, SimulatorServer
from cg_assets_tests.conftest import SIM_START, TEST_PER_PAGE, in_memory_instance, make_resource
from cg_assets_tests.test_reliability.helpers import (
    assert_file_equals,
    latest_metadata,
    run_asset,
    truth,
)

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
