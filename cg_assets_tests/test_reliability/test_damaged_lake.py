"""A day file damaged outside the sync (a disk error, a half-copied backup, a truncation by
hand) is not trusted: the next run fetches the day whole and replaces it, and a range
run carries on with the other days."""

from __future__ import annotations

import datetime as dt

import pytest

from cg_assets.defs.resources import LakeResource
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, in_memory_instance, make_resource
from cg_assets_tests.test_reliability.helpers import (
    assert_file_equals,
    assert_lake_tidy,
    days_between,
    file_cursor,
    latest_metadata,
    run_asset,
    truth,
)
from cg_assets_tests.truth import day_file
from cg_simulator import SimulatorControl, SimulatorServer

DAYS = days_between(SIM_START, SIM_START + dt.timedelta(days=2))
DAMAGED = DAYS[1]
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0, answer_window_days=366)

DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "not-parquet": lambda data: b"<html>502 Bad Gateway</html>",
    "footer-cut": lambda data: data[:-9],
}


@pytest.mark.parametrize("settle", [False, True], ids=["catch-up", "settle"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_day_file_is_fetched_again_and_replaced(
    simulator: SimulatorServer, control: SimulatorControl, tmp_path, damage, settle
):
    instance = in_memory_instance()
    lake_root = tmp_path / "lake"
    resources = {
        "customergauge": make_resource(simulator),
        "lake": LakeResource(root=str(lake_root)),
    }
    assert run_asset(instance, resources, YOUNG, DAYS[0], DAYS[-1]).success
    path = day_file(lake_root, DAMAGED)
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    control.add_records(DAMAGED, 4)

    result = run_asset(instance, resources, OLD if settle else YOUNG, DAYS[0], DAYS[-1])

    assert result.success
    for day in DAYS:
        assert_file_equals(lake_root, day, truth(control, day))
        assert latest_metadata(instance, day)["cursor"] == file_cursor(lake_root, day)
    md = latest_metadata(instance, DAMAGED)
    assert md["fetch"] == "full"
    if not settle:
        assert "missing" in md["reason"]
    assert_lake_tidy(lake_root)
